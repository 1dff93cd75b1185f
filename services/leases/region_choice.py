"""Which region an acquire tries first: follow the sun, balance coverage.

Only regions open now (callee-local calling window) and with something leasable are
candidates. Among them the regions to try are a weighted random draw without
replacement (successive draws, each proportional to weight among the regions not yet
drawn), the weight being how far the region is behind on coverage:
``1 - attempted / numbers``, where numbers is what ingest stored for the region (the
Kafka backlog included) or, if more, what was queued; never below
:data:`MIN_COVERAGE_WEIGHT` so that no open region starves. Queue depths and ingested
counts are read at most once per :data:`STATS_TTL_MS` per client, and the cumulative
weights of the candidates are kept until the snapshot, the open set or the drained set
changes, so that one draw is a few binary searches.
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from phonebank.domain.calling_hours import Interval
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme
from phonebank.leases.scripts import Scripts

#: milliseconds a snapshot of region queue depths is reused
STATS_TTL_MS = 1000
#: smallest draw weight of an open region with work (fraction of 1)
MIN_COVERAGE_WEIGHT = 0.05
#: random draws per region wanted before a pick settles for fewer (draws that hit a
#: region already picked are repeated; this bounds them)
DRAWS_PER_PICK = 16


def coverage_weight(enqueued: int, attempted: int, ingested: int = 0) -> float:
    """How far behind the region is: 1 for untouched, down to the floor when covered
    (``enqueued`` and ``attempted``: the region's counters; ``ingested``: what ingest
    stored in Kafka for it)."""
    numbers = max(enqueued, ingested)
    if numbers <= 0:
        return 1.0
    covered = min(attempted / numbers, 1.0)
    return max(1.0 - covered, MIN_COVERAGE_WEIGHT)


@dataclass(frozen=True)
class _Snapshot:
    """Coverage weights of the regions with leasable numbers, read at ``taken_ms``."""

    taken_ms: int
    weights: dict[str, float]


@dataclass(frozen=True)
class _DrawTable:
    """The candidates of one open set, one snapshot and one drained set."""

    open_now: Mapping[str, Interval]
    snapshot: _Snapshot
    drained: frozenset[str]
    regions: list[str]
    #: running sum of the candidates' weights
    cumulative: list[float]


class RegionChooser:
    """Picks the regions one acquire tries; thread-safe (state is replaced, not changed).

    When a snapshot is stale, one caller reads the queues again while the others keep
    drawing from the old one (only the very first snapshot is waited for).
    """

    def __init__(
        self,
        client: RedisClient,
        keys: KeyScheme,
        region_zones: Mapping[str, Sequence[str]],
        rng: random.Random | None = None,
        scripts: Scripts | None = None,
    ) -> None:
        self._client = client
        self._scripts = scripts or Scripts(client)
        self._keys = keys
        self._region_zones = region_zones
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._drained: frozenset[str] = frozenset()
        self._table: _DrawTable | None = None

    def pick(self, open_now: Mapping[str, Interval], now_ms: int, count: int) -> list[str]:
        """Up to ``count`` open regions with work, in the order to try them: drawn without
        replacement, each draw proportional to coverage deficit. Pass the same
        ``open_now`` object while it is unchanged: the draw table is kept per object."""
        table = self._draw_table(open_now, self._current(now_ms))
        wanted = min(count, len(table.regions))
        picked: list[str] = []
        if not wanted:
            return picked
        last, total = len(table.regions) - 1, table.cumulative[-1]
        for _ in range(wanted * DRAWS_PER_PICK):
            spot = bisect.bisect_right(table.cumulative, self._rng.random() * total)
            region = table.regions[min(spot, last)]
            if region not in picked:
                picked.append(region)
                if len(picked) == wanted:
                    break
        return picked

    def mark_drained(self, region: str) -> None:
        """An acquire found ``region`` empty: skip it until the next snapshot."""
        with self._lock:
            self._drained = self._drained | {region}

    def invalidate(self) -> None:
        """Forget the snapshot: the next :meth:`pick` reads the queues again."""
        with self._lock:
            self._snapshot = None
            self._drained = frozenset()

    def _draw_table(self, open_now: Mapping[str, Interval], snapshot: _Snapshot) -> _DrawTable:
        table, drained = self._table, self._drained
        if (
            table is not None
            and table.open_now is open_now
            and table.snapshot is snapshot
            and table.drained is drained
        ):
            return table
        regions = [
            region for region in open_now if region in snapshot.weights and region not in drained
        ]
        cumulative = list(itertools.accumulate(snapshot.weights[r] for r in regions))
        table = _DrawTable(open_now, snapshot, drained, regions, cumulative)
        self._table = table
        return table

    def _current(self, now_ms: int) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            self._refreshing.acquire()  # nothing to draw from yet: wait for the reader
        elif 0 <= now_ms - snapshot.taken_ms < STATS_TTL_MS:
            return snapshot
        elif not self._refreshing.acquire(blocking=False):
            return snapshot  # another caller is reading the queues
        try:
            fresh = _Snapshot(now_ms, self._read_weights(now_ms))
            with self._lock:
                self._snapshot, self._drained = fresh, frozenset()
        finally:
            self._refreshing.release()
        return fresh

    def _read_weights(self, now_ms: int) -> dict[str, float]:
        """Weights of the regions with leasable numbers: three commands per region and
        the ingested counts, in one round trip (the refresh holds the GIL while it
        parses; it is kept small, as every acquire of the process waits meanwhile)."""
        batch = self._scripts.pipeline(self._client)
        regions = list(self._region_zones)
        for region in regions:
            keys = self._keys.region(region)
            batch.llen(keys.ready)
            batch.zcount(keys.due, "-inf", now_ms)
            batch.hmget(keys.counters, "enqueued", "attempted")
        batch.hgetall(self._keys.ingested)
        replies = batch.execute()
        ingested = _count_map(replies[-1])
        weights = {}
        for index, region in enumerate(regions):
            ready, due_now, (enqueued, attempted) = replies[3 * index : 3 * index + 3]
            if int(ready) + int(due_now) > 0:
                weights[region] = coverage_weight(
                    int(enqueued or 0), int(attempted or 0), ingested.get(region, 0)
                )
        return weights


def _count_map(reply: list[bytes] | dict[bytes, bytes]) -> dict[str, int]:
    """An HGETALL reply of counts (RESP2: field, value, field, value …; RESP3: a map)."""
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {reply_text(field): int(value) for field, value in pairs}
