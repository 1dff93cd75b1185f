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

from phonebank.core.calling_hours import Interval
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
    """Orders the open regions with work for one acquire; thread-safe.

    The draw weights are computed once per snapshot of the queues. When a snapshot is
    stale, one caller reads the queues again while the others keep drawing from the
    old one (only the very first snapshot is waited for).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: KeyScheme,
        region_zones: Mapping[str, Sequence[str]],
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._region_zones = region_zones
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        #: region with leasable numbers → 1 / its coverage weight (the draw exponent)
        self._exponents: dict[str, float] = {}
        self._snapshot_at_ms: int | None = None
        self._drained: set[str] = set()

    def order(self, open_now: Mapping[str, Interval], now_ms: int) -> list[str]:
        """The open regions that have work, heaviest coverage deficit most likely first
        (Efraimidis–Spirakis: the largest ``random() ** (1 / weight)`` first)."""
        exponents = self._current(now_ms)
        draw = self._rng.random
        drained = self._drained
        weighted = [(draw() ** exponents[region], region) for region in open_now
                    if region in exponents and region not in drained]
        weighted.sort(reverse=True)
        return [region for _, region in weighted]

    def mark_drained(self, region: str) -> None:
        """An acquire found ``region`` empty: skip it until the next snapshot."""
        with self._lock:
            self._drained = self._drained | {region}

    def invalidate(self) -> None:
        """Forget the snapshot: the next :meth:`order` reads the queues again."""
        with self._lock:
            self._snapshot_at_ms = None
            self._drained = set()

    def _current(self, now_ms: int) -> dict[str, float]:
        taken = self._snapshot_at_ms
        if taken is not None and 0 <= now_ms - taken < STATS_TTL_MS:
            return self._exponents
        if not self._refreshing.acquire(blocking=taken is None):
            return self._exponents  # another caller is reading the queues
        try:
            exponents = self._read_exponents(now_ms)
            with self._lock:
                self._exponents, self._snapshot_at_ms, self._drained = exponents, now_ms, set()
        finally:
            self._refreshing.release()
        return exponents

    def _read_exponents(self, now_ms: int) -> dict[str, float]:
        depths = queue_depths(self._client, self._keys, self._region_zones, now_ms)
        counts = self._client.hgetall(self._keys.ingested)
        ingested = {reply_text(region): int(count) for region, count in counts.items()}
        return {region: 1.0 / coverage_weight(known, ingested.get(region, 0))
                for region, known in depths.items() if known.leasable > 0}
