"""Which region an acquire tries first: follow the sun, balance coverage.

Only regions open now (callee-local calling window) and with something leasable are
candidates. Among them the order is a weighted random draw without replacement
(Efraimidis–Spirakis), the weight being how far the region is behind on coverage:
``1 - attempted / numbers``, where numbers is what ingest stored for the region (the
Kafka backlog included) or, if more, what was queued; never below
:data:`MIN_COVERAGE_WEIGHT` so that no open region starves. Queue depths and ingested
counts are read at most once per :data:`STATS_TTL_MS` per client.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence

import redis

from phonebank.core.calling_hours import CallingPolicy, Interval, window_at
from phonebank.core.keys import KeyScheme
from phonebank.core.queues import QueueDepths, queue_depths
from phonebank.core.replies import reply_text

#: milliseconds a snapshot of region queue depths is reused
STATS_TTL_MS = 1000
#: smallest draw weight of an open region with work (fraction of 1)
MIN_COVERAGE_WEIGHT = 0.05


def coverage_weight(depths: QueueDepths, ingested: int = 0) -> float:
    """How far behind the region is: 1 for untouched, down to the floor when covered."""
    numbers = max(depths.counter("enqueued"), ingested)
    if numbers <= 0:
        return 1.0
    covered = min(depths.counter("attempted") / numbers, 1.0)
    return max(1.0 - covered, MIN_COVERAGE_WEIGHT)


class RegionChooser:
    """Orders the open regions with work for one acquire; thread-safe."""

    def __init__(
        self,
        client: redis.Redis,
        keys: KeyScheme,
        region_zones: Mapping[str, Sequence[str]],
        policy: CallingPolicy,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._region_zones = region_zones
        self._policy = policy
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._snapshot: dict[str, QueueDepths] = {}
        self._ingested: dict[str, int] = {}
        self._snapshot_at_ms = -STATS_TTL_MS
        self._drained: set[str] = set()

    def open_windows(self, regions: Sequence[str], now_ms: int) -> dict[str, Interval]:
        """The regions of ``regions`` open at ``now_ms``, with their current window."""
        windows = {}
        for region in regions:
            window = window_at(self._region_zones[region], self._policy, now_ms)
            if window is not None:
                windows[region] = window
        return windows

    def order(self, open_now: Mapping[str, Interval], now_ms: int) -> list[str]:
        """The open regions that have work, heaviest coverage deficit most likely first."""
        depths, ingested = self._depths(now_ms)
        weighted = []
        for region in open_now:
            known = depths.get(region)
            if known is None or known.leasable <= 0 or region in self._drained:
                continue
            weight = coverage_weight(known, ingested.get(region, 0))
            weighted.append((self._rng.random() ** (1.0 / weight), region))
        weighted.sort(reverse=True)
        return [region for _, region in weighted]

    def mark_drained(self, region: str) -> None:
        """An acquire found ``region`` empty: skip it until the next snapshot."""
        with self._lock:
            self._drained.add(region)

    def invalidate(self) -> None:
        """Forget the snapshot: the next :meth:`order` reads the queues again."""
        with self._lock:
            self._snapshot_at_ms = -STATS_TTL_MS
            self._drained.clear()

    def _depths(self, now_ms: int) -> tuple[dict[str, QueueDepths], dict[str, int]]:
        with self._lock:
            if 0 <= now_ms - self._snapshot_at_ms < STATS_TTL_MS:
                return self._snapshot, self._ingested
        fresh = queue_depths(self._client, self._keys, self._region_zones, now_ms)
        counts = self._client.hgetall(self._keys.ingested)
        ingested = {reply_text(region): int(count) for region, count in counts.items()}
        with self._lock:
            self._snapshot, self._ingested, self._snapshot_at_ms = fresh, ingested, now_ms
            self._drained.clear()
        return fresh, ingested
