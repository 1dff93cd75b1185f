"""Dedupe of accepted numbers: one bit per possible national number, in Redis bitmaps.

A bitmap per 3-digit prefix (10^7 bits, 1.25 MB) under :meth:`KeyScheme.seen`. A chunk
costs one script call per prefix it touches (``unseen-1.lua`` / ``markseen-1.lua``,
one ``BITFIELD`` per 250 numbers inside), all in one pipeline.

Order matters for conservation. The assigner first *reads* the bits (:func:`unseen`),
queues the unseen numbers, and only then *sets* them (:func:`mark_seen`), counting the
bits that flipped. A crash between the two steps re-queues the chunk on redelivery
(at least once; the lease scripts drop a queue entry whose number is already leased)
instead of losing it, which a test-and-set before queueing would do.
"""

from __future__ import annotations

import sys
from array import array
from collections import defaultdict
from collections.abc import Sequence

import redis

from phonebank.core.keys import DEDUPE_BITS_PER_PREFIX, KeyScheme
from phonebank.core.scripts import ReturnCode, Scripts


def _by_prefix(numbers: Sequence[int]) -> dict[int, list[int]]:
    """``prefix → [numbers]`` keeping the chunk's order; prefix = first 3 national digits."""
    groups: dict[int, list[int]] = defaultdict(list)
    for number in numbers:
        groups[number // DEDUPE_BITS_PER_PREFIX].append(number)
    return groups


def _bits(client: redis.Redis, scripts: Scripts, scheme: KeyScheme, operation: str,
          groups: dict[int, list[int]]) -> list[list[int]]:
    """Run ``operation`` (unseen | markseen) per prefix group; the bits per group."""
    pipe = scripts.pipeline(client)
    for prefix, members in groups.items():
        offsets = array("I", [number % DEDUPE_BITS_PER_PREFIX for number in members])
        if sys.byteorder != "little":
            offsets.byteswap()
        pipe.script(operation, [scheme.seen(str(prefix))], [offsets.tobytes()])
    replies = pipe.execute()
    for reply in replies:
        if reply[0] != ReturnCode.OK:
            raise ValueError(f"{operation} refused: {ReturnCode(reply[0]).name}")
    return [reply[1:] for reply in replies]


def unseen(client: redis.Redis, scripts: Scripts, scheme: KeyScheme,
           numbers: Sequence[int]) -> list[int]:
    """The numbers of the chunk not seen before, in chunk order, each once."""
    groups = _by_prefix(numbers)
    fresh: list[int] = []
    taken: set[int] = set()
    for members, bits in zip(groups.values(), _bits(client, scripts, scheme, "unseen", groups),
                             strict=True):
        for number, bit in zip(members, bits, strict=True):
            if bit == 0 and number not in taken:
                taken.add(number)
                fresh.append(number)
    return fresh


def mark_seen(client: redis.Redis, scripts: Scripts, scheme: KeyScheme,
              numbers: Sequence[int]) -> int:
    """Set the bits of ``numbers``; returns how many were not set before (newly seen)."""
    groups = _by_prefix(numbers)
    return sum(bits.count(0) for bits in _bits(client, scripts, scheme, "markseen", groups))
