"""The assigner's background loops outlive their dependencies' outages.

The sweep (reaper) and the relay run in threads of their own: a relay that hangs on
Kafka never holds the reaper; a dead broker or a killed Redis is counted in
``phonebank_background_failures_total`` and retried until it comes back; the worker
survives a Redis outage and ends only on its stop event. Waits are on counters and
events (:func:`~tests.integration.outage_helpers.wait_until`), never fixed sleeps.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry, generate_latest

from phonebank.assigner import app as assigner_app
from phonebank.assigner.app import start_worker
from phonebank.assigner.housekeeping import QUIET_LOOK_SECONDS, RelayLoop, Sweeper
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.clock import MINUTE_MS
from phonebank.domain.records import Outcome
from phonebank.infra import metrics as names
from phonebank.infra.kafka import ensure_topics, make_admin, make_producer
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.leases import relay as relay_module
from phonebank.leases.client import LeaseClient
from phonebank.leases.reaper import Reaper
from phonebank.leases.scripts import ReturnCode, Scripts
from phonebank.reporter.redis_state import RedisStateCollector
from phonebank.settings import Settings
from tests.integration.assigner_helpers import chunk, produce, ready
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    fill,
    lease_client,
    local_instant,
    numbers_from,
    reaper,
    scheme,
)
from tests.integration.outage_helpers import DEADLINE_SECONDS, PrivateRedis, wait_until

pytestmark = pytest.mark.integration

#: a port nothing listens on (a broker that is down)
DEAD_BROKER = "127.0.0.1:1"
#: seconds a command to a frozen Redis waits before it fails, in the hang test
HANG_TIMEOUT_SECONDS = 0.5
#: seconds a start against a dead broker may take to fail (its bootstrap timeout is 30 s)
STARTUP_SECONDS = 120.0
#: milliseconds the producer waits for a dead broker (bootstrap, metadata) before it fails
DEAD_BROKER_WAIT_MS = 300


class HangingProducer:
    """A producer whose first send hangs until :attr:`release` is set (a broker that
    accepts connections and never answers), then every send fails as timed out."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed = False

    def send(self, *args: Any, **kwargs: Any) -> None:
        self.entered.set()
        self.release.wait(DEADLINE_SECONDS)
        raise KafkaTimeoutError("stub broker: no answer")

    def flush(self, timeout: float | None = None) -> None:
        """Nothing is ever buffered."""

    def close(self) -> None:
        self.closed = True


class Housekeeping:
    """A sweep thread and a relay thread on one stop event, as the assigner starts them."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        reap: Reaper,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self.stop = threading.Event()
        self.metrics = AssignerMetrics(settings, client)
        self.relay = RelayLoop(
            settings, client, self.metrics, self.stop, producer_factory=producer_factory
        )
        self.sweeper = Sweeper(settings, client, self.metrics, self.relay, self.stop, reaper=reap)
        self.threads = [
            threading.Thread(target=self.sweeper.run, name="sweeper"),
            threading.Thread(target=self.relay.run, name="relay"),
        ]

    def __enter__(self) -> Housekeeping:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(DEADLINE_SECONDS)
        assert not any(thread.is_alive() for thread in self.threads), "a loop ignored stop"

    def failures(self, operation: str, reason: str) -> float:
        labels = {"operation": operation, "reason": reason}
        return self.metrics.registry.get_sample_value(names.BACKGROUND_FAILURES, labels) or 0.0

    def relayed(self) -> float:
        return self.metrics.registry.get_sample_value(names.OUTCOMES_RELAYED) or 0.0

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self.threads)


def call_one(leases: LeaseClient, volunteer: str) -> None:
    """``volunteer`` leases a number and reaches the callee: one event in the stream."""
    lease = leases.acquire(volunteer)
    assert lease is not None
    leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)


@pytest.mark.on_cluster
def test_the_reaper_reaps_while_the_relay_hangs_on_kafka(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given bob's outcome waiting in the stream and alice holding a live lease,
    When the relay hangs in a send to a broker that never answers, and alice's lease
    runs out meanwhile,
    Then the sweep reaps alice's lease while the relay still hangs; once the send fails
    it is counted as a relay failure, and both events stay in the stream for a retry."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 3))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    call_one(leases, "bob")
    assert leases.acquire("alice") is not None
    stub = HangingProducer()
    reap = reaper(settings, redis_client, leases.clock_offset_ms)
    with Housekeeping(settings, redis_client, reap, lambda: cast(KafkaProducer, stub)) as loops:
        wait_until(stub.entered.is_set, "the relay to hang in a send")
        reap.clock_offset_ms += settings.lease_ttl_seconds * 1000 + MINUTE_MS
        wait_until(lambda: loops.sweeper.reaped == 1, "alice's lease to be reaped")
        assert loops.failures("relay", "kafka") == 0  # the relay still hangs
        stub.release.set()
        wait_until(lambda: loops.failures("relay", "kafka") >= 2, "relay failures")
        assert loops.alive()
    outcomes = scheme(settings).region("RU-MOW").outcomes
    assert redis_client.xlen(outcomes) == 2  # bob's conversation, alice's expiry
    assert stub.closed


def test_a_dead_broker_is_retried_with_backoff_and_counted(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given an outcome waiting in the stream and a relay whose broker is down,
    When housekeeping runs,
    Then each failed relay round is counted (reason kafka), the sweep keeps sweeping,
    nothing leaves the stream, and the stop event still ends both loops."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    call_one(leases, "bob")
    dead = settings.model_copy(update={"kafka_bootstrap_servers": DEAD_BROKER})

    def producer() -> KafkaProducer:
        return make_producer(
            dead, max_block_ms=DEAD_BROKER_WAIT_MS, bootstrap_timeout_ms=DEAD_BROKER_WAIT_MS
        )

    reap = reaper(settings, redis_client, leases.clock_offset_ms)
    with Housekeeping(settings, redis_client, reap, producer) as loops:
        wait_until(lambda: loops.failures("relay", "kafka") >= 3, "three relay failures")
        rounds = loops.sweeper.rounds
        wait_until(lambda: loops.sweeper.rounds > rounds, "another sweep")
        assert loops.alive()
    assert redis_client.xlen(scheme(settings).region("RU-MOW").outcomes) == 1


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_sweep_and_relay_survive_a_redis_outage(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    """Given housekeeping on a private Redis, which has relayed one outcome to Kafka,
    When that Redis is killed, and later started again (empty),
    Then the sweep's failures are counted (reason redis) while it is down, /metrics still
    renders (the shared Redis gauges are the reporter's, docs/metrics.md), and once it is
    back a new outcome is relayed and an expired lease reaped: both loops came through."""
    local = private_redis.settings(settings)
    ensure_topics(local)
    client = connect(local)
    fill(local, client, "RU-MOW", numbers_from(FIRST, 2))
    leases = lease_client(local, client, local_instant(12), MOSCOW_ONLY)
    call_one(leases, "bob")
    reap = reaper(local, client, leases.clock_offset_ms)
    with Housekeeping(local, client, reap) as loops:
        wait_until(lambda: loops.relayed() == 1, "bob's outcome relayed")
        private_redis.stop()
        wait_until(lambda: loops.failures("sweep", "redis") >= 2, "sweep failures")
        # the assigner's /metrics reads no Redis (the reporter exports the shared state),
        # so it answers in full during the outage
        assert b"phonebank_background_failures_total" in generate_latest(loops.metrics.registry)
        private_redis.start()
        fill(local, client, "RU-MOW", numbers_from(FIRST + 10, 2))
        call_one(leases, "carol")
        assert leases.acquire("dave") is not None
        reap.clock_offset_ms += local.lease_ttl_seconds * 1000 + MINUTE_MS
        wait_until(lambda: loops.sweeper.reaped == 1, "dave's lease reaped")
        wait_until(lambda: loops.relayed() == 3, "carol's outcome and dave's expiry relayed")
        assert loops.alive()
    client.close()


def committed(settings: Settings) -> int:
    """The assigner group's committed offsets, summed over the numbers topic."""
    admin = make_admin(settings)
    try:
        groups = admin.list_group_offsets(settings.assigner_group)
    finally:
        admin.close()
    offsets = groups.get(settings.assigner_group, {})
    return sum(o.offset for tp, o in offsets.items() if tp.topic == settings.numbers_topic)


def test_the_worker_survives_a_redis_outage_and_stops_only_when_told(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    """Given a worker loop on a private Redis that has queued a first chunk,
    When that Redis is killed while a second chunk arrives, and later started again,
    Then the worker counts its failures (reason redis) and keeps running, queues the
    second chunk once Redis is back, and ends when its stop event is set."""
    local = private_redis.settings(settings)
    ensure_topics(local)
    client = redis.Redis.from_url(local.redis_url)
    metrics = AssignerMetrics(local, client)
    worker = AssignerWorker(local, client, metrics)
    loop = threading.Thread(target=worker.run, name="worker")
    loop.start()
    try:
        produce(local, [chunk("RU-MOW", 0, [FIRST, FIRST + 1])])
        wait_until(lambda: committed(local) == 1, "chunk 0 queued and committed")
        assert ready(client, local, "RU-MOW") == [FIRST, FIRST + 1]
        private_redis.stop()
        produce(local, [chunk("RU-MOW", 1, [FIRST + 2])])

        def worker_failures() -> float:
            labels = {"operation": "worker", "reason": "redis"}
            return metrics.registry.get_sample_value(names.BACKGROUND_FAILURES, labels) or 0.0

        wait_until(lambda: worker_failures() >= 2, "worker failures")
        assert loop.is_alive()
        private_redis.start()
        wait_until(lambda: ready(client, local, "RU-MOW") == [FIRST + 2], "chunk 1 queued")
        assert loop.is_alive()
    finally:
        worker.stop.set()
        loop.join(DEADLINE_SECONDS)
        client.close()
    assert not loop.is_alive()


#: dead-letter bound in the test (the shipped one is 10,000)
TEST_DEAD_LETTER_MAX = 3


@pytest.mark.on_cluster
def test_the_dead_letter_stream_is_bounded_and_exported(
    settings: Settings, redis_client: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given five entries in a region's outcome stream that are not valid events, and a
    dead-letter bound of three,
    When the relay runs,
    Then all five leave the outcome stream, the dead-letter stream keeps the newest three,
    and the reporter's /metrics reports three dead-lettered entries for the region."""
    monkeypatch.setattr(relay_module, "DEAD_LETTER_MAX_ENTRIES", TEST_DEAD_LETTER_MAX)
    keys = scheme(settings).region("RU-MOW")
    redis_client.sadd(scheme(settings).regions, "RU-MOW")
    written = [redis_client.xadd(keys.outcomes, {"garbage": str(i)}) for i in range(5)]
    ensure_topics(settings)
    metrics = AssignerMetrics(settings, redis_client)
    producer = make_producer(settings)
    try:
        relay = relay_module.OutcomeRelay(
            settings, redis_client, producer, relay_module.RelayMetrics(metrics.registry)
        )
        assert relay.relay_all() == 0
    finally:
        producer.close()
    dead = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        redis_client.xrange(relay_module.dead_letter_key(keys)),
    )
    assert redis_client.xlen(keys.outcomes) == 0
    assert [fields[b"garbage"] for _, fields in dead] == [b"2", b"3", b"4"]
    assert len(written) == 5
    shared = CollectorRegistry()
    shared.register(RedisStateCollector(redis_client, settings))
    gauge = shared.get_sample_value(names.OUTCOMES_DEAD_LETTERED, {"region": "RU-MOW"})
    assert gauge == TEST_DEAD_LETTER_MAX
    assert metrics.registry.get_sample_value(names.OUTCOMES_DEAD) == 5


@pytest.mark.on_cluster
def test_unlock_deletes_only_its_own_lock(settings: Settings, redis_client: RedisClient) -> None:
    """Given a region's relay lock held by relay B (relay A's lock having expired),
    When A unlocks, Then B's lock stays (NOT_FOUND); when B unlocks, it is deleted (OK);
    and a malformed owner id is refused (BAD_ARGUMENT) without touching the lock."""
    scripts = Scripts(redis_client)
    keys = scheme(settings).region("RU-MOW")
    mine, theirs = "a" * 32, "b" * 32
    redis_client.set(keys.relay_lock, theirs, px=60_000)
    assert scripts.run("unlock", keys, [mine]) == [ReturnCode.NOT_FOUND]
    assert scripts.run("unlock", keys, ["not-an-owner"]) == [ReturnCode.BAD_ARGUMENT, b"owner"]
    assert redis_client.get(keys.relay_lock) == theirs.encode()
    assert scripts.run("unlock", keys, [theirs]) == [ReturnCode.OK]
    assert redis_client.exists(keys.relay_lock) == 0


#: quiet regions of the round-robin test
QUIET_REGIONS = 40


@pytest.mark.on_cluster
def test_quiet_regions_are_looked_at_round_robin_and_active_ones_every_sweep(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given 40 regions without leases or events, and one region with a live lease,
    When the sweep runs 20 times (one 20 s quiet cycle at one sweep a second),
    Then each sweep looks at the active region and at 2 quiet ones, and every quiet region
    was looked at exactly once, longest unseen first."""
    quiet = [f"XX-{index:02d}" for index in range(QUIET_REGIONS)]
    redis_client.sadd(scheme(settings).regions, *quiet)
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    redis_client.sadd(scheme(settings).regions, "RU-MOW")
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    assert leases.acquire("alice") is not None
    stop = threading.Event()
    metrics = AssignerMetrics(settings)
    relay = RelayLoop(settings, redis_client, metrics, stop)
    now = [0.0]
    sweeper = Sweeper(
        settings,
        redis_client,
        metrics,
        relay,
        stop,
        reaper=reaper(settings, redis_client, leases.clock_offset_ms),
        clock=lambda: now[0],
    )
    looks: list[set[str]] = []
    for second in range(int(QUIET_LOOK_SECONDS)):
        now[0] = float(second)
        before = dict(sweeper.looked_at)
        sweeper.round()
        looks.append({r for r, at in sweeper.looked_at.items() if before.get(r) != at})
    assert all("RU-MOW" in looked for looked in looks[1:])  # active from its first look
    quiet_looks = [sorted(set(looked) - {"RU-MOW"}) for looked in looks]
    assert all(len(looked) == 2 for looked in quiet_looks[1:])
    assert sorted(r for looked in quiet_looks for r in looked if r in quiet) == quiet


@pytest.mark.slow
def test_an_assigner_started_while_kafka_is_down_waits_for_it(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given a broker that is down,
    When an assigner starts,
    Then creating its topics and worker fails, is counted (operation startup) and retried
    instead of ending the process, and the stop event still ends the wait."""
    dead = settings.model_copy(update={"kafka_bootstrap_servers": DEAD_BROKER})
    metrics = AssignerMetrics(dead, redis_client)
    stop = threading.Event()
    started: list[AssignerWorker | None] = []
    waiting = threading.Thread(
        target=lambda: started.append(start_worker(dead, redis_client, metrics, stop))
    )
    waiting.start()
    try:
        labels = {"operation": "startup", "reason": "kafka"}
        wait_until(
            lambda: (
                (metrics.registry.get_sample_value(names.BACKGROUND_FAILURES, labels) or 0) >= 1
            ),
            "a failed start",
            STARTUP_SECONDS,
        )
        assert waiting.is_alive()
    finally:
        stop.set()
        waiting.join(STARTUP_SECONDS)
    assert started == [None]


def test_a_hanging_redis_is_an_outage_not_a_hang(
    settings: Settings, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given housekeeping on the assigner's Redis client (commands bounded in time),
    When the private redis-server is frozen (SIGSTOP: it accepts nothing, answers nothing),
    Then sweeps fail on the timeout and are counted (reason redis) instead of blocking the
    loop for good; once it is thawed (SIGCONT) an expired lease is reaped."""
    monkeypatch.setattr(assigner_app, "REDIS_TIMEOUT_SECONDS", HANG_TIMEOUT_SECONDS)
    local = private_redis.settings(settings)
    client = assigner_app.connect_redis(local)
    fill(local, client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(local, client, local_instant(12), MOSCOW_ONLY)
    assert leases.acquire("alice") is not None
    reap = reaper(local, client, leases.clock_offset_ms)
    process = private_redis.process
    assert process is not None
    with Housekeeping(local, client, reap) as loops:
        wait_until(lambda: loops.sweeper.rounds >= 1, "a first sweep")
        process.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: loops.failures("sweep", "redis") >= 2, "sweeps timing out")
        finally:
            process.send_signal(signal.SIGCONT)
        reap.clock_offset_ms += local.lease_ttl_seconds * 1000 + MINUTE_MS
        wait_until(lambda: loops.sweeper.reaped == 1, "alice's lease reaped")
    client.close()
