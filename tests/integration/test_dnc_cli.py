"""`phonebank dnc`: the operator's do-not-call commands against the real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonebank.cli import main
from phonebank.domain.records import DncRecord
from phonebank.infra.kafka import read_topic
from phonebank.settings import Settings
from tests.conftest import use_settings

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
