"""Dedupe of accepted numbers: one bit per possible national number, in Redis bitmaps.

A bitmap per 3-digit prefix (10^7 bits, 1.25 MB) under :meth:`KeyScheme.seen` is the
authority. Each worker reads it through a :class:`SeenMirror`: a local copy of the
bitmaps of the prefixes it meets, loaded once (one ``GET``) and kept up to date with
the bits it sets itself. The mirror is exact for the numbers of the partitions the
worker owns, because a number's region fixes its partition and only the partition's
owner sets those bits; it is dropped at every rebalance, when ownership moves.

Order matters for conservation. The worker reads the bits (:meth:`SeenMirror.unseen`),
queues the unseen numbers (idempotent per batch, ``enqueue-4.lua``), and only then sets
them in Redis (one ``BITFIELD`` per prefix of a chunk, one pipeline per batch),
counting the bits that flipped. A worker that dies between queueing and marking
redelivers the chunk to a successor, whose fresh mirror still sees the numbers unseen;
the batch id makes the second enqueue queue nothing. A test-and-set before queueing
would lose that chunk instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import DEDUPE_BITS_PER_PREFIX, KeyScheme
from phonebank.leases.scripts import Scripts

#: bytes of one prefix's bitmap when every bit exists (10^7 bits)
BITMAP_BYTES = DEDUPE_BITS_PER_PREFIX // 8
#: offsets one ``BITFIELD`` call sets at most (four arguments each: bounds one command)
BITFIELD_MAX_OFFSETS = 5000
#: bits in a byte
BYTE_BITS = 8

Numbers = npt.NDArray[np.int64]


def _bit_positions(numbers: Numbers) -> tuple[Numbers, npt.NDArray[np.uint8]]:
    """Byte index and bit mask of each number in its prefix's bitmap (Redis: MSB first)."""
    offsets = numbers % DEDUPE_BITS_PER_PREFIX
    masks = (np.uint8(0x80) >> (offsets % BYTE_BITS).astype(np.uint8)).astype(np.uint8)
    return offsets // BYTE_BITS, masks


def _batches(positions: Numbers) -> list[Numbers]:
    """``positions`` cut into runs one ``BITFIELD`` call sets."""
    return [
        positions[start : start + BITFIELD_MAX_OFFSETS]
        for start in range(0, len(positions), BITFIELD_MAX_OFFSETS)
    ]


def _set_bits(bitmap: npt.NDArray[np.uint8], numbers: Numbers) -> None:
    """Set the bits of ``numbers`` in a local bitmap (several may share a byte)."""
    index, mask = _bit_positions(numbers)
    order = np.argsort(index, kind="stable")
    index, mask = index[order], mask[order]
    unique, starts = np.unique(index, return_index=True)
    bitmap[unique] |= np.bitwise_or.reduceat(mask, starts)


class SeenMirror:
    """This worker's copy of the seen bitmaps (see the module docstring)."""

    def __init__(self, client: RedisClient, scripts: Scripts, scheme: KeyScheme) -> None:
        self.redis = client
        self.scripts = scripts
        self.scheme = scheme
        self._bitmaps: dict[int, npt.NDArray[np.uint8]] = {}
        #: numbers this worker queued that Redis already had marked (another owner)
        self.races = 0

    def clear(self) -> None:
        """Forget every bitmap (after a rebalance)."""
        self._bitmaps.clear()

    def _bitmap(self, prefix: int) -> npt.NDArray[np.uint8]:
        bitmap = self._bitmaps.get(prefix)
        if bitmap is None:
            stored = self.redis.get(self.scheme.seen(str(prefix)))
            bitmap = np.zeros(BITMAP_BYTES, dtype=np.uint8)
            if isinstance(stored, bytes) and stored:
                length = min(len(stored), BITMAP_BYTES)
                bitmap[:length] = np.frombuffer(stored, dtype=np.uint8, count=length)
            self._bitmaps[prefix] = bitmap
        return bitmap

    def claim(self, numbers: list[int]) -> list[int]:
        """The numbers of the chunk not seen before (chunk order, each once), marked seen in
        this mirror at once so a later chunk of the same batch does not queue them again.
        A batch that fails before :meth:`mark_seen` must :meth:`clear` the mirror."""
        fresh = self.unseen(numbers)
        if fresh:
            chunk = np.asarray(fresh, dtype=np.int64)
            for prefix in np.unique(chunk // DEDUPE_BITS_PER_PREFIX).tolist():
                members = chunk[chunk // DEDUPE_BITS_PER_PREFIX == prefix]
                _set_bits(self._bitmap(int(prefix)), members)
        return fresh

    def unseen(self, numbers: list[int]) -> list[int]:
        """The numbers of the chunk not seen before, in chunk order, each once."""
        if not numbers:
            return []
        chunk = np.asarray(numbers, dtype=np.int64)
        prefixes = chunk // DEDUPE_BITS_PER_PREFIX
        index, mask = _bit_positions(chunk)
        fresh = np.zeros(len(chunk), dtype=bool)
        for prefix in np.unique(prefixes).tolist():
            members = prefixes == prefix
            fresh[members] = (self._bitmap(int(prefix))[index[members]] & mask[members]) == 0
        _, first = np.unique(chunk, return_index=True)
        once = np.zeros(len(chunk), dtype=bool)
        once[first] = True
        return [int(n) for n in chunk[fresh & once].tolist()]

    def mark_seen(self, numbers: list[int]) -> list[bool]:
        """Set the bits in Redis (one pipeline) and here; per number, in order, whether it
        was new to Redis (False: another owner had queued it, a race)."""
        if not numbers:
            return []
        chunk = np.asarray(numbers, dtype=np.int64)
        positions = np.arange(len(chunk))
        prefixes = chunk // DEDUPE_BITS_PER_PREFIX
        groups = [
            (int(prefix), part)
            for prefix in np.unique(prefixes).tolist()
            for part in _batches(positions[prefixes == prefix])
        ]
        pipe = self.scripts.pipeline(self.redis)
        for prefix, where in groups:
            pipe.set_bits(self.scheme.seen(str(prefix)), chunk[where] % DEDUPE_BITS_PER_PREFIX)
        new = np.zeros(len(chunk), dtype=bool)
        for (prefix, where), reply in zip(groups, pipe.execute(), strict=True):
            new[where] = np.asarray(reply) == 0
            bitmap = self._bitmaps.get(prefix)
            if bitmap is not None:  # a bitmap not loaded yet will be read with these bits
                _set_bits(bitmap, chunk[where])
        self.races += int(len(chunk) - new.sum())
        return [bool(flag) for flag in new.tolist()]


def mark_seen(client: RedisClient, scheme: KeyScheme, numbers: list[int]) -> int:
    """Set the bits of ``numbers`` in Redis (no mirror); how many were not set before."""
    return sum(SeenMirror(client, Scripts(client), scheme).mark_seen(numbers))
