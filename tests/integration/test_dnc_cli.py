"""`phonebank dnc`: the operator's do-not-call commands against the real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from phonebank.cli import main
from phonebank.domain.records import DncRecord
from phonebank.infra.kafka import read_topic
from phonebank.settings import Settings
from tests.conftest import use_settings
from tests.integration.lease_helpers import MOSCOW_ONLY, fill, lease_client, local_instant, scheme

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_settings(monkeypatch, settings)
    return settings


def test_add_then_check_in_any_format(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a number added in one written form
    assert main(["dnc", "add", "+7 (900) 000-12-34"]) == 0
    # When it is checked in another form, Then it is listed (exit 0), shown masked
    assert main(["dnc", "check", "89000001234"]) == 0
    out = capsys.readouterr().out
    assert "+7900*****34: listed" in out
    assert "9000001234" not in out
    # And a number never added is not listed (exit 1)
    assert main(["dnc", "check", "9000005678"]) == 1


def test_import_counts_every_line(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file with a valid number, a repeat, junk and an empty line
    listing = tmp_path / "dnc.txt"
    listing.write_text("9000001234\n8 900 000 12 34\nnot a number\n\n")
    # When it is imported
    assert main(["dnc", "import", str(listing)]) == 0
    # Then one is added, one is a repeat, one is unparseable
    assert "added 1, already listed 1, unplaced 0, unparseable 1" in capsys.readouterr().out
    # And Kafka, the system of record, holds the number (compacted topic)
    assert [DncRecord.decode(r.value).number for r in read_topic(env, env.dnc_topic)] == [
        9000001234,
        9000001234,
    ]


def test_bad_number_is_a_clear_error(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dnc", "add", "hello"]) == 2
    assert "not a Russian number (letters)" in capsys.readouterr().err


#: placed by the Rossvyaz registry (Moscow region) but not by the shipped fixture plan
REGISTRY_ONLY = 9771234567
#: an unallocated range: no plan places it
NO_PLAN = 9401234567


@pytest.mark.parametrize("with_registry", [False, True], ids=["fixture-plan", "registry"])
def test_a_listed_number_is_never_leased_with_or_without_the_registry(
    env: Settings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    with_registry: bool,
) -> None:
    """Given two numbers queued in a region (one only the registry places, one no plan
    places), When `phonebank dnc add` lists them, with the registry configured or not,
    Then `dnc check` finds both and no volunteer is ever given either."""
    if with_registry:
        registry = request.getfixturevalue("shared_registry")
        monkeypatch.setenv("PHONEBANK_NUMBERING_PLAN", str(registry))
    else:
        monkeypatch.delenv("PHONEBANK_NUMBERING_PLAN", raising=False)
    fill(env, redis_client, "RU-MOW", [REGISTRY_ONLY, NO_PLAN])
    assert main(["dnc", "add", str(REGISTRY_ONLY), str(NO_PLAN)]) == 0
    assert main(["dnc", "check", str(REGISTRY_ONLY), str(NO_PLAN)]) == 0
    leases = lease_client(env, redis_client, local_instant(12), MOSCOW_ONLY)
    assert leases.acquire("alice") is None
    assert redis_client.hget(scheme(env).region("RU-MOW").counters, "dnc") == b"2"
