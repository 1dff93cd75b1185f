"""The assigner's Prometheus metrics: its own counters plus Redis state read at scrape time.

Queue depths, live leases, lease age, expiries and parked numbers are read from Redis
when Prometheus scrapes (never cached, never a number or volunteer in a label);
throughput counters and consumer lag are kept by the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from phonebank.domain import clock
from phonebank.domain.calling_hours import CallingPolicy, is_open
from phonebank.infra import metrics as names
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.retry import DEPENDENCY_ERRORS, FailureMetrics, reason_of
from phonebank.leases.client import campaign_region_zones
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import known_regions, queue_depths
from phonebank.leases.relay import dead_letter_key
from phonebank.settings import Settings

log = logging.getLogger(__name__)
#: seconds between two consumer-lag measurements (each asks the broker for end offsets)
LAG_INTERVAL_SECONDS = 5.0
#: milliseconds one lag measurement may wait for the broker (a Kafka outage must not
#: hold the worker loop, nor end it)
LAG_TIMEOUT_MS = 2_000


class RedisStateCollector(Collector):
    """Per-region queue depths and lease counters, read from Redis at scrape time."""

    def __init__(
        self, client: RedisClient, settings: Settings, failures: FailureMetrics | None = None
    ) -> None:
        self.redis = client
        self.failures = failures
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.lease_ttl_ms = settings.lease_ttl_seconds * 1000
        self.policy = CallingPolicy.from_settings(settings)
        self.region_zones = campaign_region_zones(settings)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The Redis state; nothing (a failure counted and logged) while Redis is down, so
        a scrape in an outage still returns the process's own metrics."""
        try:
            families = list(self._collect())
        except DEPENDENCY_ERRORS as exc:
            if self.failures is not None:
                self.failures.failures.labels("metrics", reason_of(exc)).inc()
            log.warning("Redis state not scraped (%s: %s)", type(exc).__name__, exc)
            return
        yield from families

    def _collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now_ms = clock.now_ms()
        regions = known_regions(self.redis, self.scheme)
        depths = queue_depths(self.redis, self.scheme, regions, now_ms)
        families = {
            "ready": GaugeMetricFamily(
                names.QUEUE_READY, "Numbers in the ready list.", labels=["region"]
            ),
            "due": GaugeMetricFamily(
                names.QUEUE_DUE, "Numbers waiting for a retry or callback.", labels=["region"]
            ),
            "parked": GaugeMetricFamily(
                names.NUMBERS_PARKED, "Numbers parked after expiries.", labels=["region"]
            ),
            "leased": GaugeMetricFamily(names.LEASES_ACTIVE, "Live leases.", labels=["region"]),
        }
        expiries = CounterMetricFamily(
            names.LEASE_EXPIRIES, "Leases that ran out without an outcome.", labels=["region"]
        )
        for region, depth in depths.items():
            for field, family in families.items():
                family.add_metric([region], getattr(depth, field))
            expiries.add_metric([region], depth.counter("expired"))
        yield from families.values()
        yield expiries
        yield from self._stream_and_age(regions, now_ms)
        yield self._open_regions(now_ms)

    def _open_regions(self, now_ms: int) -> GaugeMetricFamily:
        """1 for each campaign region inside its calling window now, else 0."""
        family = GaugeMetricFamily(
            names.REGION_OPEN,
            "1 while the region's local time is inside the calling window.",
            labels=["region"],
        )
        for region, zones in self.region_zones.items():
            family.add_metric([region], 1.0 if is_open(zones, self.policy, now_ms) else 0.0)
        return family

    def _stream_and_age(self, regions: list[str], now_ms: int) -> Iterator[GaugeMetricFamily]:
        """Unrelayed outcome events, dead-lettered entries per region, and the time since
        the oldest live lease's last deadline was set (its grant or latest renew)."""
        pipe = self.redis.pipeline(transaction=False)
        for region in regions:
            keys = self.scheme.region(region)
            pipe.xlen(keys.outcomes)
            pipe.zrange(keys.leases, 0, 0, withscores=True)
            pipe.xlen(dead_letter_key(keys))
        replies = pipe.execute()
        dead = GaugeMetricFamily(
            names.OUTCOMES_DEAD_LETTERED,
            "Entries in the region's dead-letter stream (bounded).",
            labels=["region"],
        )
        oldest = GaugeMetricFamily(
            names.LEASE_OLDEST_AGE,
            "Seconds since the oldest live lease was granted or renewed.",
            labels=["region"],
        )
        pending = 0
        for index, region in enumerate(regions):
            pending += int(replies[3 * index])
            first = replies[3 * index + 1]
            age_ms = now_ms - (first[0][1] - self.lease_ttl_ms) if first else 0
            oldest.add_metric([region], max(0.0, age_ms / 1000))
            dead.add_metric([region], int(replies[3 * index + 2]))
        yield oldest
        yield dead
        yield GaugeMetricFamily(
            names.OUTCOMES_RELAY_PENDING,
            "Outcome events in Redis streams not yet relayed.",
            value=pending,
        )


class AssignerMetrics:
    """The assigner's registry; one per worker process (tests make several)."""

    def __init__(self, settings: Settings, client: RedisClient | None = None) -> None:
        self.registry = CollectorRegistry()
        self.numbers_consumed = Counter(
            names.ASSIGNER_NUMBERS,
            "Numbers read from Kafka by result (queued, duplicate, dnc).",
            ["region", "result"],
            registry=self.registry,
        )
        self.malformed_records = Counter(
            names.ASSIGNER_MALFORMED,
            "Kafka records that were not a valid number chunk.",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            names.CONSUMER_LAG,
            "Records behind the end of the topic, summed over partitions.",
            registry=self.registry,
        )
        self.partitions_paused = Gauge(
            names.PARTITIONS_PAUSED,
            "Partitions paused because their region's queue is full.",
            registry=self.registry,
        )
        self._lag_measured_at = 0.0
        self.reclaim_lag = Gauge(
            names.LEASE_RECLAIM_LAG,
            "Seconds the oldest expired lease waited for the reaper.",
            registry=self.registry,
        )
        self.failures = FailureMetrics(self.registry)
        if client is not None:
            self.registry.register(RedisStateCollector(client, settings, self.failures))

    def chunk_done(self, region: str, read: int, fresh: int, queued: int) -> None:
        """Count one chunk: ``read`` numbers, ``fresh`` of them new, ``queued`` of those."""
        self.numbers_consumed.labels(region, "duplicate").inc(read - fresh)
        self.numbers_consumed.labels(region, "do_not_call").inc(fresh - queued)
        self.numbers_consumed.labels(region, "queued").inc(queued)

    def observe_consumer(self, consumer: KafkaConsumer, paused: int) -> None:
        """Update paused partitions, and the lag at most every ``LAG_INTERVAL_SECONDS``."""
        self.partitions_paused.set(paused)
        now = time.monotonic()
        if now - self._lag_measured_at < LAG_INTERVAL_SECONDS:
            return
        self._lag_measured_at = now
        assignment = consumer.assignment()
        if not assignment:
            return
        try:
            ends = consumer.end_offsets(list(assignment), timeout_ms=LAG_TIMEOUT_MS)
            lag = 0
            for partition, end in ends.items():
                position = consumer.position(partition, timeout_ms=LAG_TIMEOUT_MS)
                lag += max(0, end - (position or 0))
        except DEPENDENCY_ERRORS as exc:  # the gauge keeps its last value
            self.failures.failures.labels("lag", reason_of(exc)).inc()
            log.warning("consumer lag not measured (%s: %s)", type(exc).__name__, exc)
            return
        self.consumer_lag.set(lag)
