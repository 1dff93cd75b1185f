"""The assigner's Prometheus metrics: only this process's own figures.

Throughput counters, paused partitions and the lag of the partitions it holds are kept
by the worker; every replica's values add up (``sum()`` over replicas). Figures of the
shared Redis state (queue depths, leases, expiries, region open, relay backlog) are not
here: the reporter exports them once (:mod:`phonebank.reporter.redis_state`), so that
they do not multiply with the number of assigners.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry, Counter, Gauge

from phonebank.infra import metrics as names
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.retry import DEPENDENCY_ERRORS, FailureMetrics, reason_of
from phonebank.settings import Settings

log = logging.getLogger(__name__)
#: seconds between two consumer-lag measurements (each asks the broker for end offsets)
LAG_INTERVAL_SECONDS = 5.0
#: milliseconds one lag measurement may wait for the broker (a Kafka outage must not
#: hold the worker loop, nor end it)
LAG_TIMEOUT_MS = 2_000


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
            names.ASSIGNER_LAG,
            "Records behind the end of the partitions this process holds.",
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
        # ``settings`` and ``client`` stay in the signature for the callers; the shared
        # Redis state is exported by the reporter.
        del settings, client

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
