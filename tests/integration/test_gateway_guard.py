"""Who may call: rate limits per token and per address (429), failed auths, the ban list
(403, and a ban ends the open lease), the refusal to start with the default secret, CORS."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import redis

from phonebank.cli import main
from phonebank.ops.volunteers import ban, unban
from phonebank.settings import Settings, child_env
from tests.conftest import use_settings
from tests.integration.gateway_helpers import Running, running_gateway
from tests.integration.lease_helpers import FIRST, fill, local_instant

pytestmark = pytest.mark.integration

MOSCOW = "RU-MOW"
#: seconds the real command may take to refuse
COMMAND_TIMEOUT_SECONDS = 30


@pytest.mark.on_cluster
def test_every_call_of_a_token_counts_204s_included(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a limit of 3 requests a minute per token and nothing queued (every answer 204)
    limited = settings.model_copy(update={"gateway_rate_per_token": "3/minute"})
    with running_gateway(limited, redis_client, local_instant(12)) as gateway:
        # When alice asks 4 times
        answers = [gateway.acquire("alice") for _ in range(4)]
        # Then the fourth is 429 with Retry-After, and bob is not affected
        other = gateway.acquire("bob")
    assert [a.status for a in answers] == [204, 204, 204, 429]
    refused = answers[-1]
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["retry_after_ms"] >= 1000
    assert other.status == 204


@pytest.mark.on_cluster
def test_one_address_is_limited_across_tokens_and_probes(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a limit of 4 requests a minute per client address
    limited = settings.model_copy(update={"gateway_rate_per_address": "4/minute"})
    with running_gateway(limited, redis_client, local_instant(12)) as gateway:
        # When four volunteers and then a fifth ask from the same address
        statuses = [gateway.acquire(f"v{n}").status for n in range(5)]
        # And a request without a token comes too
        anonymous = gateway.request("GET", "/api/v1/me")
    # Then the fifth and the anonymous one are refused
    assert statuses == [204, 204, 204, 204, 429]
    assert anonymous.status == 429


def _from(gateway: Running, volunteer: str, forwarded_for: str) -> int:
    """An acquire whose X-Forwarded-For names ``forwarded_for``; its status."""
    headers = {"X-Forwarded-For": forwarded_for}
    return gateway.request(
        "POST", "/api/v1/leases", {}, volunteer=volunteer, headers=headers
    ).status


def test_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_address_limit(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a limit of 2 requests a minute per address and no trusted proxy
    limited = settings.model_copy(update={"gateway_rate_per_address": "2/minute"})
    with running_gateway(limited, redis_client, local_instant(12)) as gateway:
        # When one peer sends 4 requests, each claiming another client address
        statuses = [_from(gateway, f"v{n}", f"203.0.113.{n}") for n in range(4)]
    # Then they all count against the peer: the claim is ignored
    assert statuses == [204, 204, 429, 429]


def test_a_trusted_proxys_x_forwarded_for_names_the_client(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a limit of 2 requests a minute per address, behind a trusted proxy on loopback
    limited = settings.model_copy(
        update={"gateway_rate_per_address": "2/minute", "gateway_trusted_proxies": ["127.0.0.1"]}
    )
    with running_gateway(limited, redis_client, local_instant(12)) as gateway:
        # When two clients behind it ask twice each, and the first a third time
        statuses = [_from(gateway, f"v{n}", f"203.0.113.{n % 2}") for n in range(5)]
    # Then each client has its own budget
    assert statuses == [204, 204, 204, 204, 429]


def test_failed_auths_are_limited_and_logged_once_a_minute(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="phonebank")
    # Given a limit of 2 failed authentications a minute per address
    limited = settings.model_copy(update={"gateway_auth_failures_per_address": "2/minute"})
    with running_gateway(limited, redis_client, local_instant(12)) as gateway:
        # When bad tokens come 3 times
        statuses = [gateway.request("GET", "/api/v1/me", bearer="forged").status for _ in range(3)]
    # Then 2 are 401 and the third 429; and the log says so once
    assert statuses == [401, 401, 429]
    assert caplog.text.count("volunteer token refused") == 1


def test_a_ban_refuses_the_token_and_ends_the_open_lease(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given alice holds a lease
    fill(settings, redis_client, MOSCOW, [FIRST])
    with running_gateway(settings, redis_client, local_instant(12)) as gateway:
        lease = gateway.acquire("alice").json()
        # When an operator bans her
        ended = ban(settings, redis_client, ["alice"], gateway.leases)
        # Then every call of hers is 403 banned
        me = gateway.me("alice")
        renew = gateway.on_lease("renew", "alice", lease)
        # And her number went back to the queue: bob gets it
        bob = gateway.acquire("bob")
        # When she is unbanned, Then she may call again
        assert unban(settings, redis_client, ["alice"]) == 1
        after = gateway.me("alice")
    assert ended == 1
    assert (me.status, me.json()["error"]) == (403, "banned")
    assert renew.status == 403
    assert bob.json()["number"] == lease["number"]
    assert after.status == 204


def test_the_ban_command_names_counts_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_settings(monkeypatch, settings)
    assert main(["volunteers", "ban", "alice", "bob"]) == 0
    assert capsys.readouterr().out.strip() == "banned 2 volunteer(s); ended 0 open lease(s)"
    assert main(["volunteers", "unban", "alice"]) == 0
    assert capsys.readouterr().out.strip() == "unbanned 1 volunteer(s)"
    assert main(["volunteers", "ban", "a:b"]) == 2


@pytest.mark.parametrize(
    ("secret", "problem"), [(None, "public default"), ("short-secret", "shorter than 32 bytes")]
)
def test_the_gateway_refuses_to_start_with_the_default_or_a_short_secret(
    settings: Settings, secret: str | None, problem: str
) -> None:
    # Given the volunteer secret unset, or too short
    env = child_env(settings.model_copy(update={"gateway_port": 0}))
    del env["PHONEBANK_VOLUNTEER_SECRET"]
    if secret is not None:
        env["PHONEBANK_VOLUNTEER_SECRET"] = secret
    # When the gateway is started, Then it exits at once naming the variable
    done = subprocess.run(
        [sys.executable, "-m", "phonebank.cli", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 2
    assert "PHONEBANK_VOLUNTEER_SECRET" in done.stderr and problem in done.stderr


def test_config_says_default_for_an_unset_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PHONEBANK_VOLUNTEER_SECRET")
    assert main(["config"]) == 0
    assert '"volunteer_secret": "default"' in capsys.readouterr().out
    monkeypatch.setenv("PHONEBANK_VOLUNTEER_SECRET", "x" * 40)
    assert main(["config"]) == 0
    assert '"volunteer_secret": "***"' in capsys.readouterr().out


def test_cors_only_for_configured_origins(settings: Settings, redis_client: redis.Redis) -> None:
    allowed = settings.model_copy(update={"gateway_cors_origins": ["https://campaign.example"]})
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    with running_gateway(allowed, redis_client, local_instant(12)) as gateway:
        good = gateway.request(
            "OPTIONS", "/api/v1/leases", headers={"Origin": "https://campaign.example", **preflight}
        )
        bad = gateway.request(
            "OPTIONS", "/api/v1/leases", headers={"Origin": "https://evil.example", **preflight}
        )
    assert good.headers["access-control-allow-origin"] == "https://campaign.example"
    assert "access-control-allow-origin" not in bad.headers
    with running_gateway(settings, redis_client, local_instant(12)) as gateway:
        none = gateway.request("GET", "/healthz", headers={"Origin": "https://campaign.example"})
    assert "access-control-allow-origin" not in none.headers
