"""Figures of the shared Redis state, exported once for the whole deployment.

Queue depths, live leases, parked numbers, expiries, remaining numbers, the oldest lease's
age, the relay backlog and which regions are open are facts about Redis (and the clock),
not about any one process. If every assigner exported them, ``sum()`` over replicas
would multiply them by the replica count (the issue's "expiry ratio 196%"). The reporter
runs as one replica, so it exports them here, read from Redis at scrape time; on a Redis
error it exports none of them (their ``absent()`` companions alert), never stale values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from phonebank.domain import clock
from phonebank.domain.calling_hours import CallingPolicy, is_open
from phonebank.infra import metrics as names
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.client import campaign_region_zones
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import QueueDepths, known_regions, queue_depths
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: milliseconds in a second
MS_PER_SECOND = 1000
#: QueueDepths field → (gauge name, help) of the per-region queue gauges
_DEPTH_GAUGES = {
    "ready": (names.QUEUE_READY, "Numbers in the ready list."),
    "due": (names.QUEUE_DUE, "Numbers waiting for a retry or callback."),
    "parked": (names.NUMBERS_PARKED, "Numbers parked after expiries."),
    "leased": (names.LEASES_ACTIVE, "Live leases."),
}


def remaining(depth: QueueDepths) -> int:
    """Distinct numbers of a region still to be finished: ready, due or leased.

    Duplicates never enter the queue (the assigner's dedupe), do-not-call numbers are
    skipped by the enqueue script or retired on their outcome, and done, retired and
    parked numbers are finished, so none of them counts."""
    return depth.ready + depth.due + depth.leased


class RedisStateCollector(Collector):
    """Per-region queue figures and the relay backlog, read from Redis at scrape time."""

    def __init__(self, client: RedisClient, settings: Settings) -> None:
        self.redis = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.lease_ttl_ms = settings.lease_ttl_seconds * MS_PER_SECOND
        self.policy = CallingPolicy.from_settings(settings)
        self.region_zones = campaign_region_zones(settings)

    def collect(self) -> Iterator[Metric]:
        now_ms = clock.now_ms()
        try:
            regions = known_regions(self.redis, self.scheme)
            depths = queue_depths(self.redis, self.scheme, regions, now_ms)
            streams = self._streams_and_oldest(regions)
        except redis.RedisError as exc:
            log.warning("Redis state not exported this scrape: %s", exc)
            yield self._open_regions(now_ms)
            return
        yield from self._depth_families(depths)
        yield from self._stream_families(streams, now_ms)
        yield self._open_regions(now_ms)

    def _depth_families(self, depths: dict[str, QueueDepths]) -> Iterator[Metric]:
        families = {
            field: GaugeMetricFamily(name, text, labels=["region"])
            for field, (name, text) in _DEPTH_GAUGES.items()
        }
        left = GaugeMetricFamily(
            names.QUEUE_REMAINING, "Distinct numbers not finished.", labels=["region"]
        )
        expiries = CounterMetricFamily(
            names.LEASE_EXPIRIES, "Leases that ran out without an outcome.", labels=["region"]
        )
        for region, depth in depths.items():
            for field, family in families.items():
                family.add_metric([region], getattr(depth, field))
            left.add_metric([region], remaining(depth))
            expiries.add_metric([region], depth.counter("expired"))
        yield from families.values()
        yield left
        yield expiries

    def _streams_and_oldest(self, regions: list[str]) -> dict[str, tuple[int, float | None]]:
        """region → (unrelayed outcome events, deadline in ms of its oldest live lease)."""
        pipe = self.redis.pipeline(transaction=False)
        for region in regions:
            keys = self.scheme.region(region)
            pipe.xlen(keys.outcomes)
            pipe.zrange(keys.leases, 0, 0, withscores=True)
        replies = pipe.execute()
        found: dict[str, tuple[int, float | None]] = {}
        for index, region in enumerate(regions):
            first = replies[2 * index + 1]
            found[region] = (int(replies[2 * index]), float(first[0][1]) if first else None)
        return found

    def _stream_families(
        self, streams: dict[str, tuple[int, float | None]], now_ms: int
    ) -> Iterator[Metric]:
        """The oldest lease's age (since its grant or latest renew) and the relay backlog."""
        oldest = GaugeMetricFamily(
            names.LEASE_OLDEST_AGE,
            "Seconds since the oldest live lease was granted or renewed.",
            labels=["region"],
        )
        for region, (_, deadline_ms) in streams.items():
            age_ms = 0.0 if deadline_ms is None else now_ms - (deadline_ms - self.lease_ttl_ms)
            oldest.add_metric([region], max(0.0, age_ms / MS_PER_SECOND))
        yield oldest
        yield GaugeMetricFamily(
            names.OUTCOMES_RELAY_PENDING,
            "Outcome events in Redis streams not yet relayed.",
            value=sum(pending for pending, _ in streams.values()),
        )

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
