"""Which region an acquire tries first: follow the sun, balance coverage (the Redis half).

Only regions open now (callee-local calling window) and with something leasable are
candidates; among them the regions to try are drawn by coverage deficit
(:mod:`phonebank.domain.region_weights`). Queue depths and ingested counts are read at
most once per :data:`STATS_TTL_MS` per client, and the cumulative weights of the
candidates are kept until the snapshot, the open set or the drained set changes, so that
one draw is a few binary searches.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from phonebank.domain.calling_hours import Interval
from phonebank.domain.region_weights import (
    coverage_weight,
    cumulative_weights,
    draw_without_replacement,
)
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme
from phonebank.leases.scripts import Scripts

#: milliseconds a snapshot of region queue depths is reused
STATS_TTL_MS = 1000


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
        return draw_without_replacement(table.regions, table.cumulative, count, self._rng)

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
        cumulative = cumulative_weights(snapshot.weights[r] for r in regions)
        table = _DrawTable(open_now, snapshot, drained, regions, cumulative)
        self._table = table
        return table

    def _current(self, now_ms: int) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and 0 <= now_ms - snapshot.taken_ms < STATS_TTL_MS:
            return snapshot
        # never wait for another reader: a caller waiting on a lock would block the
        # gateway's event loop, whose requests share one thread (infra/loop_bridge.py)
        if not self._refreshing.acquire(blocking=False):
            if snapshot is not None:
                return snapshot  # another caller is reading the queues
            return _Snapshot(now_ms, self._read_weights(now_ms))  # nothing to draw from yet
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
