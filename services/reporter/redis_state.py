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
from typing import NamedTuple

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
from phonebank.leases.relay import dead_letter_key
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


class StreamState(NamedTuple):
    """What one scrape read of a region's outcome stream and leases."""

    #: outcome events not yet relayed
    pending: int
    #: deadline (epoch ms) of the oldest live lease, None without leases
    oldest_deadline_ms: float | None
    #: entries of the region's dead-letter stream
    dead_letters: int


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

    def _streams_and_oldest(self, regions: list[str]) -> dict[str, StreamState]:
        """region → its outcome stream's backlog, oldest lease deadline and dead letters."""
        pipe = self.redis.pipeline(transaction=False)
        for region in regions:
            keys = self.scheme.region(region)
            pipe.xlen(keys.outcomes)
            pipe.zrange(keys.leases, 0, 0, withscores=True)
            pipe.xlen(dead_letter_key(keys))
        replies = pipe.execute()
        found: dict[str, StreamState] = {}
        for index, region in enumerate(regions):
            pending, first, dead = replies[3 * index : 3 * index + 3]
            found[region] = StreamState(
                int(pending), float(first[0][1]) if first else None, int(dead)
            )
        return found

    def _stream_families(self, streams: dict[str, StreamState], now_ms: int) -> Iterator[Metric]:
        """The oldest lease's age (since its grant or latest renew), the relay backlog and
        the dead-letter streams' lengths."""
        oldest = GaugeMetricFamily(
            names.LEASE_OLDEST_AGE,
            "Seconds since the oldest live lease was granted or renewed.",
            labels=["region"],
        )
        dead = GaugeMetricFamily(
            names.OUTCOMES_DEAD_LETTERED,
            "Entries in the region's dead-letter stream (bounded).",
            labels=["region"],
        )
        for region, state in streams.items():
            deadline_ms = state.oldest_deadline_ms
            age_ms = 0.0 if deadline_ms is None else now_ms - (deadline_ms - self.lease_ttl_ms)
            oldest.add_metric([region], max(0.0, age_ms / MS_PER_SECOND))
            dead.add_metric([region], state.dead_letters)
        yield oldest
        yield dead
        yield GaugeMetricFamily(
            names.OUTCOMES_RELAY_PENDING,
            "Outcome events in Redis streams not yet relayed.",
            value=sum(state.pending for state in streams.values()),
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
