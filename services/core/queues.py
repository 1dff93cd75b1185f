"""A region's queues from outside the lease protocol: fill them, and measure them.

:func:`enqueue_chunk` is what the assigner calls per chunk of (already deduplicated)
numbers; :func:`queue_depths` gives ready / due / leased / parked depths and the region
counters, for metrics, backpressure, coverage weighting and the conservation check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

import redis

from phonebank.core.keys import KeyScheme, RegionKeys
from phonebank.core.scripts import ReturnCode, Scripts

#: Most numbers one ``enqueue-3.lua`` call takes (``MAX_NUMBERS`` in that script).
ENQUEUE_BATCH = 5000


def enqueue_chunk(
    client: redis.Redis, keys: KeyScheme, region: str, numbers: Sequence[int]
) -> int:
    """Append ``numbers`` to the back of ``region``'s ready list; returns how many were queued.

    Do-not-call numbers are skipped (and counted in the region's ``dnc`` counter). The
    caller has deduplicated them: a number must not be offered twice.
    """
    scripts = Scripts(client)
    region_keys = keys.region(region)
    script_keys = [region_keys.ready, region_keys.dnc, region_keys.counters]
    queued = 0
    for start in range(0, len(numbers), ENQUEUE_BATCH):
        batch: list[str | int] = [int(number) for number in numbers[start : start + ENQUEUE_BATCH]]
        reply = scripts.run("enqueue", script_keys, batch)
        if reply[0] != ReturnCode.OK:
            raise RuntimeError(f"enqueue refused: {ReturnCode(reply[0]).name}")
        queued += int(reply[1])
    client.sadd(keys.regions, region)
    return queued


@dataclass(frozen=True)
class QueueDepths:
    """One region's queues at one instant (counts)."""

    region: str
    ready: int
    due: int
    due_now: int
    leased: int
    parked: int
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def leasable(self) -> int:
        """Numbers an acquire could take now."""
        return self.ready + self.due_now

    def counter(self, name: str) -> int:
        """A region counter (``keys.REGION_COUNTERS``), 0 when never incremented."""
        return self.counters.get(name, 0)

    @property
    def accounted(self) -> int:
        """Numbers in some state: conservation says this equals ``counter('enqueued')``."""
        finished = sum(self.counter(name) for name in ("done", "retired", "dnc"))
        return (
            self.ready + self.due + self.leased + self.parked + finished
            + self.counter("dropped_duplicates")
        )


def known_regions(client: redis.Redis, keys: KeyScheme) -> list[str]:
    """The regions that have ever had numbers queued, sorted."""
    members = cast(Iterable[bytes | str], client.smembers(keys.regions))
    return sorted(_text(member) for member in members)


def queue_depths(
    client: redis.Redis, keys: KeyScheme, regions: Iterable[str], now_ms: int
) -> dict[str, QueueDepths]:
    """The depths of every region in ``regions`` at ``now_ms``, read in one pipeline."""
    region_list = list(regions)
    pipe = client.pipeline(transaction=False)
    for region in region_list:
        _queue_commands(pipe, keys.region(region), now_ms)
    replies = pipe.execute()
    depths = {}
    width = len(replies) // max(len(region_list), 1)
    for index, region in enumerate(region_list):
        ready, due, due_now, leased, parked, counters = replies[index * width : (index + 1) * width]
        depths[region] = QueueDepths(
            region=region,
            ready=int(ready),
            due=int(due),
            due_now=int(due_now),
            leased=int(leased),
            parked=int(parked),
            counters={_text(name): int(value) for name, value in counters.items()},
        )
    return depths


def _queue_commands(pipe: redis.client.Pipeline, region: RegionKeys, now_ms: int) -> None:
    pipe.llen(region.ready)
    pipe.zcard(region.due)
    pipe.zcount(region.due, "-inf", now_ms)
    pipe.zcard(region.leases)
    pipe.scard(region.parked)
    pipe.hgetall(region.counters)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
