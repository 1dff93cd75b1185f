"""Every dashboard figure equals the truth with two assigners (issue 12, "figures true at N
replicas"): a real Prometheus scrapes two assigner processes, the reporter and a lease
client, evaluates every query of deploy/grafana/phonebank.json, and each answer is
compared with the truth read from Redis and Kafka (not from any exporter).

Before issue 12 every assigner exported the shared Redis state, so with two of them the
queue, lease, parked and expiry panels read double and the lag panel one replica's share.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from phonebank.domain import clock
from phonebank.domain.calling_hours import CallingPolicy, is_open
from phonebank.domain.records import NumberChunk, Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_producer, partition_for_region, read_topic
from phonebank.infra.metrics import start_metrics_server
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.client import LeaseClient, campaign_region_zones
from phonebank.leases.dnc import add_numbers
from phonebank.leases.keys import KeyScheme, ReporterKeys
from phonebank.leases.metrics import LeaseMetrics
from phonebank.leases.queues import known_regions, queue_depths
from phonebank.local.demo import ANYTIME_WINDOW
from phonebank.reporter.app import Reporter
from phonebank.reporter.volunteers import ActiveVolunteers
from phonebank.settings import Settings, child_env
from tests.integration.prometheus_helpers import (
    POLL_SECONDS,
    Prometheus,
    Series,
    free_port,
    running_prometheus,
)

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "phonebank.json"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
#: seconds the figures may take to settle (consume, reap, relay, report, scrape)
SETTLE_SECONDS = 90.0
#: seconds a region must stay open for the test's leases (acquired up to a minute ago)
OPEN_MARGIN_MS = 10 * 60 * 1000
#: the lease lifetime (the default: live leases outlive the test), and how far back the
#: lease that must expire is taken: its deadline is a minute past when the reapers look
LEASE_TTL_SECONDS = 900
EXPIRED_OFFSET_MS = -(LEASE_TTL_SECONDS + 60) * 1000
#: queues fill to 4 numbers: the first region's third chunk stays in Kafka (a backlog)
HIGH_WATERMARK = 4
LOW_WATERMARK = 1
#: dashboard queries that read no Redis state: what the test checks instead is in
#: ``test_dashboard_queries_are_all_checked``
NOT_REDIS_STATE = {
    # latency histograms of the lease client: timings, no truth to compare with
    "histogram_quantile(0.5, sum by (le, operation) "
    "(rate(phonebank_lease_operation_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (le, operation) "
    "(rate(phonebank_lease_operation_seconds_bucket[5m])))",
    # ingest is a batch job, not running here
    'sum by (reason) (rate(phonebank_ingest_numbers_total{result="rejected"}[5m]))',
    # a projection from the 24 h rate, not a count
    'max by (region) (phonebank_coverage_projected_remaining_seconds{region=~"$region"}) / 86400',
}


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def instant(expr: str) -> str:
    """``expr`` for an instant check: ``$region`` is every region, and a counter's
    ``rate``/``increase`` over a window is its value (every counter here started at 0)."""
    expr = expr.replace("$region", ".*")
    return re.sub(r"\b(?:rate|increase)\(([^()\[]+)\[\w+\]\)", r"\1", expr)


# --- the truth, read from Redis and Kafka ----------------------------------------------


@dataclass
class Truth:
    """What Redis and Kafka say, per region where it applies."""

    ready: dict[str, int]
    due: dict[str, int]
    leased: dict[str, int]
    parked: dict[str, int]
    remaining: dict[str, int]
    counters: dict[str, dict[str, int]]
    ingested: dict[str, int]
    pending: int
    lag: dict[str, int]
    backlog: dict[str, int]
    outcomes: dict[str, int]
    volunteers: tuple[int, int]
    open_regions: int


def committed_lag(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """Partition → end offset minus the group's committed offset (a plain consumer)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        return {tp.partition: end - (consumer.committed(tp) or 0) for tp, end in ends.items()}
    finally:
        consumer.close(autocommit=False)


def read_truth(settings: Settings, client: RedisClient) -> Truth:
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    now = clock.now_ms()
    depths = queue_depths(client, scheme, known_regions(client, scheme), now)
    counters = {r: d.counters for r, d in depths.items()}
    # conservation (DESIGN.md invariant 1): what is neither finished nor a duplicate
    finished = ("done", "retired", "dnc", "dropped_duplicates")
    remaining = {
        r: d.counter("enqueued") - sum(d.counter(n) for n in finished) - d.parked
        for r, d in depths.items()
    }
    numbers_lag = committed_lag(settings, settings.assigner_group, settings.numbers_topic)
    zones = campaign_region_zones(settings)
    policy = CallingPolicy.from_settings(settings)
    events = [OutcomeEvent.decode(r.value) for r in read_topic(settings, settings.outcomes_topic)]
    pending = sum(int(client.xlen(scheme.region(r).outcomes)) for r in depths)
    ingested = {reply_text(k): int(v) for k, v in client.hgetall(scheme.ingested).items()}
    volunteers = ActiveVolunteers(client, ReporterKeys(settings.key_prefix, settings.campaign))
    return Truth(
        ready={r: d.ready for r, d in depths.items()},
        due={r: d.due for r, d in depths.items()},
        leased={r: d.leased for r, d in depths.items()},
        parked={r: d.parked for r, d in depths.items()},
        remaining=remaining,
        counters=counters,
        ingested=ingested,
        pending=pending,
        lag={
            "assigner": sum(numbers_lag.values()),
            "reporter": sum(
                committed_lag(settings, settings.reporter_group, settings.outcomes_topic).values()
            ),
        },
        backlog={r: numbers_lag[partition_for_region(r, len(numbers_lag))] for r in sorted(zones)},
        outcomes=dict(Counter(str(e.outcome) for e in events)),
        volunteers=volunteers.counts(now),
        open_regions=sum(is_open(z, policy, now) for z in zones.values()),
    )


def by_region(values: dict[str, int]) -> Series:
    return {(("region", r),): float(v) for r, v in values.items()}


def total(value: float) -> Series:
    return {(): float(value)}


def count(truth: Truth, name: str) -> dict[str, int]:
    return {r: c.get(name, 0) for r, c in truth.counters.items()}


def coverage(truth: Truth) -> Series:
    attempted = count(truth, "attempted")
    return by_region(
        {r: attempted.get(r, 0) / n for r, n in truth.ingested.items() if n}  # type: ignore[misc]
    )


#: dashboard query → its truth
EXPECTED: dict[str, Callable[[Truth], Series]] = {
    "sum(phonebank_coverage_attempted_numbers) / "
    "clamp_min(sum(phonebank_coverage_ingested_numbers), 1)": lambda t: total(
        sum(count(t, "attempted").values()) / max(sum(t.ingested.values()), 1)
    ),
    "sum(phonebank_coverage_reached_numbers)": lambda t: total(sum(count(t, "reached").values())),
    "max(phonebank_volunteers_active_15m)": lambda t: total(t.volunteers[0]),
    "max(phonebank_volunteers_active_24h)": lambda t: total(t.volunteers[1]),
    'sort_desc(max by (region) (phonebank_coverage_ratio{region=~"$region"}))': coverage,
    'sum by (outcome) (increase(phonebank_outcomes_total{region=~"$region"}[1h]))': lambda t: {
        (("outcome", o),): float(n) for o, n in t.outcomes.items()
    },
    'sum by (region) (phonebank_queue_ready_numbers{region=~"$region"})': lambda t: by_region(
        t.ready
    ),
    'sum(phonebank_queue_due_numbers{region=~"$region"})': lambda t: total(sum(t.due.values())),
    'sum(phonebank_leases_active{region=~"$region"})': lambda t: total(sum(t.leased.values())),
    'sum(phonebank_queue_parked_numbers{region=~"$region"})': lambda t: total(
        sum(t.parked.values())
    ),
    'sum by (region) (increase(phonebank_lease_expiries_total{region=~"$region"}[1h]))': (
        lambda t: by_region(count(t, "expired"))
    ),
    'sum(rate(phonebank_lease_expiries_total{region=~"$region"}[30m])) / '
    'clamp_min(sum(rate(phonebank_leases_granted_total{region=~"$region"}[30m])), 1e-9)': (
        lambda t: total(sum(count(t, "expired").values()) / sum(count(t, "leased").values()))
    ),
    "sum by (group) (phonebank_consumer_lag_records)": lambda t: {
        (("group", g),): float(n) for g, n in t.lag.items()
    },
    "sum(phonebank_outcomes_relay_pending_events)": lambda t: total(t.pending),
    'sum by (region) (phonebank_queue_remaining_numbers{region=~"$region"})': lambda t: by_region(
        t.remaining
    ),
    'max by (region) (phonebank_queue_backlog_records{region=~"$region"})': lambda t: by_region(
        t.backlog
    ),
    "sum(phonebank_region_open)": lambda t: total(t.open_regions),
}
#: alerts about a process or a figure gone
OUTAGE_ALERTS = {
    "PhonebankServiceDown",
    "PhonebankAssignersAbsent",
    "PhonebankReporterAbsent",
    "PhonebankGatewaysAbsent",
    "PhonebankConsumerLagUnmeasured",
    "PhonebankRedisStateUnexported",
}
#: queries checked by a bound rather than an equality (see the test)
BOUNDED = {
    'up{job=~"phonebank-.*"}',
    "time() - max(phonebank_outcomes_relay_last_success_timestamp_seconds)",
}


def test_dashboard_queries_are_all_checked() -> None:
    """Given the dashboard, Then each of its queries has a truth here, a bound, or is
    declared to read no Redis state (so a new panel cannot skip the N-replica check)."""
    unchecked = set(dashboard_queries()) - set(EXPECTED) - BOUNDED - NOT_REDIS_STATE
    assert sorted(unchecked) == []


# --- the deployment under test ---------------------------------------------------------


def open_regions_on_distinct_partitions(settings: Settings, wanted: int) -> list[str]:
    """``wanted`` regions open now and for the next minutes, on different partitions."""
    zones = campaign_region_zones(settings)
    policy = CallingPolicy.from_settings(settings)
    now = clock.now_ms()
    chosen: dict[int, str] = {}
    for region, zone in sorted(zones.items()):
        partition = partition_for_region(region, settings.numbers_partitions)
        stays_open = all(
            is_open(zone, policy, now + delta) for delta in (EXPIRED_OFFSET_MS, OPEN_MARGIN_MS)
        )
        if stays_open and partition not in chosen:
            chosen[partition] = region
    if len(chosen) < wanted:
        pytest.skip("not enough regions inside their calling window now")
    return list(chosen.values())[:wanted]


def start_assigner(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    """``phonebank assigner`` in its own process, on the test's namespace and ``port``."""
    assigner = settings.model_copy(
        update={
            "kafka_session_timeout_ms": 6000,
            "assigner_metrics_port": port,
            "bind_address": "127.0.0.1",
        }
    )
    env = child_env(assigner)
    return subprocess.Popen(
        [sys.executable, "-m", "phonebank.cli", "assigner"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def small(settings: Settings) -> Settings:
    """Tiny queues; parked after one expiry; every region open at any hour (the demo's
    window), so the test runs at night too instead of skipping."""
    tuned = Settings.model_validate(
        {
            **settings.model_dump(),
            "queue_high_watermark": HIGH_WATERMARK,
            "queue_low_watermark": LOW_WATERMARK,
            "lease_ttl_seconds": LEASE_TTL_SECONDS,
            "lease_max_expiries": 1,
            "calling_window_start": ANYTIME_WINDOW[0],
            "calling_window_end": ANYTIME_WINDOW[1],
        }
    )
    ensure_topics(tuned)
    return tuned


@dataclass
class Assigners:
    """The assigner processes of a test and their metrics ports."""

    processes: list[subprocess.Popen[bytes]]
    ports: list[int]

    def stop(self) -> None:
        """SIGTERM each, then wait for each to end."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(timeout=60)


@pytest.fixture
def two_assigners(small: Settings) -> Iterator[Assigners]:
    """Two assigner processes, stopped at the end."""
    ports = [free_port(), free_port()]
    assigners = Assigners([start_assigner(small, port) for port in ports], ports)
    yield assigners
    assigners.stop()


def produce(settings: Settings, client: RedisClient, chunks: list[NumberChunk]) -> None:
    """Chunks into the numbers topic, counted as ingested (what ``phonebank ingest`` does)."""
    producer = make_producer(settings)
    ingested = KeyScheme(settings.key_prefix, settings.campaign).ingested
    for chunk in chunks:
        partition = partition_for_region(chunk.region, settings.numbers_partitions)
        producer.send(settings.numbers_topic, value=chunk.encode(), partition=partition)
        client.hincrby(ingested, chunk.region, len(chunk.numbers))
    producer.flush()
    producer.close()


def chunk(region: str, seq: int, numbers: list[int]) -> NumberChunk:
    return NumberChunk(campaign="default", region=region, source="t", seq=seq, numbers=numbers)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(POLL_SECONDS)


def ready_counts(settings: Settings, client: RedisClient, regions: list[str]) -> list[int]:
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    return [int(client.llen(scheme.region(r).ready)) for r in regions]


def make_calls(settings: Settings, client: RedisClient, regions: list[str]) -> CollectorRegistry:
    """Live leases in A and B, one lease in B that expired a minute ago, and two calls in
    C (a conversation, a no-answer due again later); returns the lease metrics."""
    zones = campaign_region_zones(settings)
    registry = CollectorRegistry()
    metrics = LeaseMetrics(registry)
    a, b, c = regions

    def client_of(region: str, offset_ms: int = 0) -> LeaseClient:
        lease_client = LeaseClient(
            settings, client, {region: zones[region]}, clock_offset_ms=offset_ms
        )
        lease_client.metrics = metrics
        return lease_client

    assert client_of(a).acquire("vol-a") is not None
    assert client_of(b).acquire("vol-b") is not None
    assert client_of(b, EXPIRED_OFFSET_MS).acquire("vol-late") is not None
    calls = client_of(c)
    for volunteer, outcome in (("vol-c1", Outcome.CONVERSATION), ("vol-c2", Outcome.NO_ANSWER)):
        lease = calls.acquire(volunteer)
        assert lease is not None
        calls.complete(lease.lease_id, lease.token, outcome)
    return registry


def mismatches(server: Prometheus, truth: Truth) -> dict[str, tuple[Series, Series]]:
    """Dashboard queries whose Prometheus answer differs from the truth."""
    wrong = {}
    for expr, expected in EXPECTED.items():
        got = server.query(instant(expr))
        want = expected(truth)
        if {k: round(v, 9) for k, v in got.items()} != {k: round(v, 9) for k, v in want.items()}:
            wrong[expr] = (got, want)
    return wrong


def test_every_dashboard_query_equals_the_truth_with_two_assigners(
    small: Settings, redis_client: RedisClient, two_assigners: Assigners, tmp_path: Path
) -> None:
    """Given two assigner processes, the reporter and a lease client on one namespace:
    chunks of three open regions (a duplicate, a do-not-call number, and a third chunk of
    region A left in Kafka by the full queue), live leases, an expired (parked) lease and
    two completed calls
    When a real Prometheus scrapes every process
    Then each dashboard query's value equals the truth read from Redis and Kafka
    And when every assigner is stopped and more chunks arrive, the lag still reads the
    truth (from Kafka), the series the outage alerts watch are absent, and the shipped
    rules' companions (assigners absent, service down) go pending."""
    settings = small
    a, b, c = open_regions_on_distinct_partitions(settings, 3)
    add_numbers(redis_client, settings.key_prefix, [9000000202], lambda _: b)
    produce(
        settings,
        redis_client,
        [
            chunk(a, 0, [9000000101, 9000000102, 9000000103]),
            chunk(a, 1, [9000000103, 9000000104, 9000000105]),  # one duplicate
            chunk(a, 2, [9000000106, 9000000107, 9000000108]),  # waits: A is full
            chunk(b, 0, [9000000201, 9000000202, 9000000203]),  # 202 is do-not-call
            chunk(c, 0, [9000000301, 9000000302]),
        ],
    )
    wait_for(
        lambda: ready_counts(settings, redis_client, [a, b, c]) == [5, 2, 2],
        "the assigners did not queue the chunks",
    )
    lease_registry = make_calls(settings, redis_client, [a, b, c])
    gateway = start_metrics_server(0, lease_registry, "127.0.0.1")
    reporter = Reporter(settings, port=0).start()
    try:
        assert reporter.wait_ready(SETTLE_SECONDS)
        jobs = {
            "phonebank-assigner": two_assigners.ports,
            "phonebank-reporter": [int(reporter.url.rsplit(":", 1)[1])],
            "phonebank-gateway": [gateway.port],
        }
        with running_prometheus(tmp_path, jobs, RULES) as server:
            check_figures(settings, redis_client, server, list(jobs))
            check_assigners_outage(settings, redis_client, server, two_assigners, c)
    finally:
        reporter.stop()
        gateway.stop()


def settled(truth: Truth) -> bool:
    """The expired lease is parked, every outcome is relayed and read by the reporter."""
    return (
        sum(truth.parked.values()) == 1
        and truth.pending == 0
        and sum(truth.outcomes.values()) == 3
        and truth.lag["reporter"] == 0
        and truth.lag["assigner"] == 1
    )


def check_figures(
    settings: Settings, client: RedisClient, server: Prometheus, jobs: list[str]
) -> None:
    wait_for(lambda: settled(read_truth(settings, client)), "the deployment did not settle")
    wrong: dict[str, tuple[Series, Series]] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        read_at = time.time()
        truth = read_truth(settings, client)
        wait_for(partial(server.scraped_since, jobs, read_at), "prometheus did not scrape")
        wrong = mismatches(server, truth)
        if not wrong:
            break
        assert time.monotonic() < deadline, f"dashboard != truth: {wrong}"
    up = server.query('up{job=~"phonebank-.*"}')
    assert len(up) == 4 and set(up.values()) == {1.0}
    # the healthy deployment: no outage alert of the shipped rules even pending
    assert not alerting(server) & OUTAGE_ALERTS
    relay_age = server.query(
        "time() - max(phonebank_outcomes_relay_last_success_timestamp_seconds)"
    )
    assert 0 <= next(iter(relay_age.values())) < SETTLE_SECONDS


def alerting(server: Prometheus) -> set[str]:
    """Alerts of the shipped rules pending or firing now."""
    return {dict(labels)["alertname"] for labels in server.query("ALERTS")}


def check_assigners_outage(
    settings: Settings,
    client: RedisClient,
    server: Prometheus,
    assigners: Assigners,
    region: str,
) -> None:
    """Every assigner stopped, two more chunks produced: the lag (read from Kafka by the
    reporter) grows to the truth, the queue figures stay the truth, and the series the
    outage companions watch are absent."""
    assigners.stop()
    produce(settings, client, [chunk(region, 1, [9000000303]), chunk(region, 2, [9000000304])])
    lag = 'sum(phonebank_consumer_lag_records{group="assigner"})'
    ready = 'sum by (region) (phonebank_queue_ready_numbers{region=~"$region"})'

    def outage_seen() -> bool:
        truth = read_truth(settings, client)
        return (
            truth.lag["assigner"] == 3
            and server.query(lag) == total(truth.lag["assigner"])
            and server.query(instant(ready)) == by_region(truth.ready)
            and server.query('absent(up{job="phonebank-assigner"} == 1)') == total(1)
            and server.query("absent(phonebank_outcomes_relay_last_success_timestamp_seconds)")
            == total(1)
            and alerting(server) >= {"PhonebankAssignersAbsent", "PhonebankServiceDown"}
        )

    wait_for(outage_seen, "the figures did not survive the assigners' outage")
