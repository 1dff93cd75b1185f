"""A region's queues from outside the lease protocol: fill them, and measure them.

:func:`enqueue_chunk` is what the assigner calls per chunk of (already deduplicated)
numbers; :func:`queue_depths` gives ready / due / leased / parked depths and the region
counters, for metrics, backpressure, coverage weighting and the conservation check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from phonebank.domain.lease_types import BadArgumentError
from phonebank.infra.redis_client import RedisClient, RedisPipeline
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.leases.resp import Integers
from phonebank.leases.scripts import ReturnCode, ScriptPipeline, Scripts, refused_argument

#: Most numbers one ``enqueue-4.lua`` call takes (``MAX_NUMBERS`` in that script).
ENQUEUE_BATCH = 5000
#: bytes of a batch's content id (96 bits: no collision among billions of batches)
BATCH_ID_BYTES = 12


def enqueue_chunk(
    client: RedisClient,
    keys: KeyScheme,
    region: str,
    numbers: Sequence[int],
    *,
    scripts: Scripts | None = None,
) -> int:
    """Append ``numbers`` to the back of ``region``'s ready list; returns how many were queued.

    Do-not-call numbers are skipped (and counted in the region's ``dnc`` counter). The
    caller has deduplicated them: a number must not be offered twice. Each batch is
    named by a hash of its numbers: the same batch offered again (a chunk redelivered
    after a crash between queueing and marking seen) queues nothing the second time.
    """
    pipe = (scripts or Scripts(client)).pipeline(client)
    calls = queue_numbers(pipe, keys, region, numbers)
    pipe.sadd(keys.regions, region)
    return queued_count(pipe.execute()[:calls])


def queue_numbers(
    pipe: ScriptPipeline, keys: KeyScheme, region: str, numbers: Sequence[int]
) -> int:
    """Add the ``enqueue`` calls for ``numbers`` to ``pipe``; returns how many calls."""
    region_keys = keys.region(region)
    calls = 0
    for start in range(0, len(numbers), ENQUEUE_BATCH):
        batch = np.asarray(numbers[start : start + ENQUEUE_BATCH], dtype=np.int64)
        pipe.script("enqueue", region_keys, [batch_id(pack_numbers(batch))], batch)
        calls += 1
    return calls


def pack_numbers(numbers: Sequence[int] | Integers) -> bytes:
    """Numbers as the batch id hashes them: little-endian signed 64-bit integers."""
    return np.asarray(numbers, dtype="<i8").tobytes()


def queued_count(replies: Sequence[list[Any]]) -> int:
    """Numbers queued by these ``enqueue`` replies; raises on a refusal."""
    queued = 0
    for reply in replies:
        if reply[0] not in (ReturnCode.OK, ReturnCode.ALREADY_RECORDED):
            argument = refused_argument(reply)
            if argument is not None:
                raise BadArgumentError("enqueue", argument)
            raise RuntimeError(f"enqueue refused: {ReturnCode(reply[0]).name}")
        queued += int(reply[1])
    return queued


def batch_id(packed: bytes) -> str:
    """The content id of a packed batch of numbers (BLAKE2b, 96 bits)."""
    return hashlib.blake2b(packed, digest_size=BATCH_ID_BYTES).hexdigest()


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
            self.ready
            + self.due
            + self.leased
            + self.parked
            + finished
            + self.counter("dropped_duplicates")
        )


def known_regions(client: RedisClient, keys: KeyScheme) -> list[str]:
    """The regions that have ever had numbers queued, sorted."""
    members = cast(Iterable[bytes | str], client.smembers(keys.regions))
    return sorted(reply_text(member) for member in members)


def queue_depths(
    client: RedisClient, keys: KeyScheme, regions: Iterable[str], now_ms: int
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
            counters={reply_text(name): int(value) for name, value in counters.items()},
        )
    return depths


def _queue_commands(pipe: RedisPipeline, region: RegionKeys, now_ms: int) -> None:
    pipe.llen(region.ready)
    pipe.zcard(region.due)
    pipe.zcount(region.due, "-inf", now_ms)
    pipe.zcard(region.leases)
    pipe.scard(region.parked)
    pipe.hgetall(region.counters)
