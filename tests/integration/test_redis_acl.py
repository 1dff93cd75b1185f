"""deploy/redis/users.acl on a real redis-server started with ``--aclfile``: every service
works with its own user, and no user gets the dangerous commands or a script of its own."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

from phonebank.assigner.dedupe import mark_seen
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_producer
from phonebank.infra.redis_client import connect
from phonebank.leases import dnc
from phonebank.leases.keys import KeyScheme, ReporterKeys
from phonebank.leases.queues import queue_depths
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.leases.scripts import ScriptsNotLoadedError, load_all
from phonebank.ops.redis_acl import TEMPLATE, USERS, render
from phonebank.ops.volunteers import ban, unban
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.checkpoint import Checkpoint, CheckpointStore
from phonebank.reporter.redis_state import RedisStateCollector
from phonebank.reporter.volunteers import ActiveVolunteers
from phonebank.settings import Settings
from tests.integration.gateway_helpers import running_gateway
from tests.integration.lease_helpers import FIRST, fill, local_instant, reaper

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MOSCOW = "RU-MOW"
#: seconds redis-server may take to say it is ready
START_TIMEOUT_SECONDS = 20
#: what redis-server prints once it accepts connections
READY_LINE = "Ready to accept connections"
#: commands no phonebank user may run (issue 10, item 8), with harmless arguments
REFUSED = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "maxmemory"),
    ("DEBUG", "SLEEP", "0"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("MODULE", "LIST"),
    ("EVAL", "return redis.call('LPOP', KEYS[1])", "1", "x"),
    ("FUNCTION", "LIST"),
]


@dataclass(frozen=True)
class AclRedis:
    """A private redis-server with the rendered ACL file, and each user's password."""

    port: int
    passwords: dict[str, str]

    def settings_of(self, base: Settings, user: str) -> Settings:
        """``base`` pointed at this server as ``user``."""
        url = f"redis://{user}:{self.passwords[user]}@127.0.0.1:{self.port}/0"
        return base.model_copy(update={"redis_url": url, "redis_cluster": False})

    def client(self, base: Settings, user: str) -> redis.Redis:
        """A one-node client logged in as ``user``."""
        client = connect(self.settings_of(base, user))
        assert isinstance(client, redis.Redis)
        return client


def send(client: redis.Redis, command: tuple[str, ...]) -> Any:
    """One raw command (redis-py leaves ``execute_command`` untyped)."""
    execute: Callable[..., Any] = client.execute_command
    return execute(*command)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(server: subprocess.Popen[str]) -> None:
    """Read the server's log until it accepts connections (no sleeping)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    assert server.stdout is not None
    for line in server.stdout:
        if READY_LINE in line:
            return
        assert time.monotonic() < deadline, "redis-server did not get ready"
    raise AssertionError(f"redis-server exited with {server.wait()}")


@pytest.fixture
def acl_redis(settings: Settings, tmp_path: Path) -> Iterator[AclRedis]:
    """A redis-server on a free port loading users.acl rendered for this test's prefix."""
    passwords = {user: secrets.token_hex(16) for user in USERS}
    acl = tmp_path / "users.acl"
    acl.write_text(render((REPO / TEMPLATE).read_text(), settings.key_prefix, passwords))
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path), "--aclfile", str(acl)]
    # DEBUG and MODULE enabled, so that only the ACL stands between a user and them
    command += ["--enable-debug-command", "yes", "--enable-module-command", "yes"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(server)
        running = AclRedis(port, passwords)
        assert running.client(settings, "operator").ping()
        yield running
    finally:
        server.terminate()
        server.wait()


def test_the_gateway_serves_leases_with_its_user_once_the_assigner_loaded_the_scripts(
    settings: Settings, acl_redis: AclRedis
) -> None:
    """Given a fresh Redis and numbers queued by the assigner's user, When volunteers go
    through a gateway logged in as ``gateway``, Then before the assigner loads the
    scripts a lease call answers 503; after, acquire, /me, renew, complete and release
    work, rate limits included."""
    assigner = acl_redis.client(settings, "assigner")
    gateway_client = acl_redis.client(settings, "gateway")
    on_gateway = acl_redis.settings_of(settings, "gateway")
    with pytest.raises(ScriptsNotLoadedError):
        load_all(gateway_client)
    with running_gateway(on_gateway, gateway_client, local_instant(12)) as gateway:
        assert gateway.acquire("alice").status == 503
        load_all(assigner)
        fill(settings, assigner, MOSCOW, [FIRST, FIRST + 1, FIRST + 2])
        first = gateway.acquire("alice")
        assert first.status == 201, first.body
        lease = first.json()
        assert gateway.me("alice").json()["lease_id"] == lease["lease_id"]
        assert gateway.on_lease("renew", "alice", lease).status == 200
        done = gateway.on_lease("complete", "alice", lease, {"outcome": "no_answer"})
        assert done.status == 200, done.body
        other = gateway.acquire("bob").json()
        assert gateway.on_lease("release", "bob", other).status == 200
        assert gateway.request("GET", "/readyz").status == 200


def test_the_back_ends_work_with_their_users(settings: Settings, acl_redis: AclRedis) -> None:
    """Given the rendered ACL file, When the assigner, the reporter, ingest and the
    operator commands run their Redis operations as their own users, Then all succeed."""
    assigner = acl_redis.client(settings, "assigner")
    on_assigner = acl_redis.settings_of(settings, "assigner")
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    assert load_all(assigner) > 0
    assert fill(settings, assigner, MOSCOW, [FIRST, FIRST + 1]) == 2
    assert mark_seen(assigner, scheme, [FIRST + 5]) == 1
    reaper(on_assigner, assigner, 0).reap_all()
    ensure_topics(settings)
    producer = make_producer(settings)
    try:
        OutcomeRelay(on_assigner, assigner, producer, RelayMetrics(CollectorRegistry())).relay_all()
    finally:
        producer.close()
    assert b"phonebank" in generate_latest(AssignerMetrics(on_assigner, assigner).registry)

    ingest = acl_redis.client(settings, "ingest")
    assert ingest.hincrby(scheme.ingested, MOSCOW, 2) == 2

    reporter = acl_redis.client(settings, "reporter")
    volunteers = ActiveVolunteers(reporter, ReporterKeys(settings.key_prefix, settings.campaign))
    now_ms = int(time.time() * 1000)
    volunteers.record([outcome_event(settings, now_ms)], now_ms)
    assert volunteers.counts(now_ms) == (1, 1)
    assert reporter.hgetall(scheme.ingested) == {MOSCOW.encode(): b"2"}
    store = CheckpointStore(reporter, ReporterKeys(settings.key_prefix, settings.campaign))
    store.save(Checkpoint("outcomes", Aggregator(), {0: 7}))
    loaded = store.load("outcomes")
    assert loaded is not None and loaded.offsets == {0: 7}
    store.clear()
    on_reporter = acl_redis.settings_of(settings, "reporter")
    state = generate_latest(registry_of(RedisStateCollector(reporter, on_reporter))).decode()
    assert f'phonebank_queue_ready_numbers{{region="{MOSCOW}"}} 2.0' in state
    assert "phonebank_outcomes_relay_pending_events" in state

    operator = acl_redis.client(settings, "operator")
    on_operator = acl_redis.settings_of(settings, "operator")
    assert ban(on_operator, operator, ["mallory"]) == 0
    assert unban(on_operator, operator, ["mallory"]) == 1
    assert dnc.add_numbers(operator, settings.key_prefix, [FIRST + 9], lambda _: MOSCOW).added == 1
    assert queue_depths(operator, scheme, [MOSCOW], now_ms)[MOSCOW].ready == 2


def registry_of(collector: Collector) -> CollectorRegistry:
    """A registry holding ``collector`` only."""
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def outcome_event(settings: Settings, now_ms: int) -> OutcomeEvent:
    """One outcome of a volunteer, completed now."""
    return OutcomeEvent(
        event_id="ev-1",
        campaign=settings.campaign,
        region=MOSCOW,
        number=FIRST,
        outcome=Outcome.NO_ANSWER,
        attempt=1,
        lease_id="lease-1",
        volunteer="vh1",
        guideline="calm@1",
        leased_at_ms=now_ms - 1000,
        completed_at_ms=now_ms,
    )


@pytest.mark.parametrize("user", USERS)
def test_no_user_may_run_dangerous_commands_or_scripts_of_its_own(
    settings: Settings, acl_redis: AclRedis, user: str
) -> None:
    """Given any phonebank user, When it sends FLUSHALL, KEYS, EVAL … Then each is refused
    (NOPERM) and the server still runs; and the anonymous default user is off."""
    client = acl_redis.client(settings, user)
    for command in REFUSED:
        with pytest.raises(redis.exceptions.NoPermissionError):
            send(client, command)
    assert client.ping()
    anonymous = redis.Redis(port=acl_redis.port, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.get("x")


def test_the_gateway_user_cannot_load_scripts_or_reach_back_end_keys(
    settings: Settings, acl_redis: AclRedis
) -> None:
    """Given the gateway's user, When it tries SCRIPT LOAD, to unban, to write ingest's
    counts or read the reporter's checkpoint or a key outside the prefix, Then Redis
    refuses each."""
    client = acl_redis.client(settings, "gateway")
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    report = ReporterKeys(settings.key_prefix, settings.campaign)
    for command in (
        ("SCRIPT", "LOAD", "return 1"),
        ("SREM", scheme.banned, "x"),
        ("HINCRBY", scheme.ingested, "RU-MOW", "1"),
        ("GET", report.checkpoint),
        ("GET", "elsewhere"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            send(client, command)
