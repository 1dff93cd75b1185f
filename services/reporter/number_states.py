"""The reporter's per-number state, compact: small sorted arrays per segment, plus a dict
of changes.

Every number ever called has a state (calls, expiries, flags: one ``uint32``, see
:mod:`phonebank.reporter.aggregate`). A number's key is ``region index << 34 | national
number``; the key space is cut into segments of 2**16 consecutive keys (65,536 numbers
of one region). Each segment that holds numbers keeps two sorted arrays: the numbers'
offsets in the segment (``uint16``) and their states (``uint32``), 6 bytes a number — 60
MB at 10 M numbers called, where a Python ``dict`` cost ~100 bytes a number. Numbers
changed since the last merge sit in a dict; :meth:`NumberStates.merge` folds it into the
segments it touches only (at a checkpoint, or when the dict grows large), so nothing is
ever proportional to the whole state but a full checkpoint.

Incremental checkpoints store one Redis hash field per segment: :meth:`take_dirty` names
the segments changed since the last checkpoint, :meth:`encode_segment` gives a segment's
stored form — a ``uint32`` count, then zstd of the offset deltas and the states as byte
planes (``2 + 4`` bytes a number before compression) — and :meth:`load_segments` reads
them back, refusing a damaged one (:class:`SegmentFormatError`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import zstandard

#: bits of a key below its segment id (a segment spans 2**16 consecutive keys)
SEGMENT_SHIFT = 16
#: mask of a key's offset in its segment
SEGMENT_MASK = (1 << SEGMENT_SHIFT) - 1
#: bits of a key holding the national number (10 digits < 2**34)
NUMBER_BITS = 34
#: changed numbers held in the dict before :meth:`NumberStates.merge_if_large` merges
#: them into the segments (count)
MERGE_THRESHOLD = 200_000
#: numbers of stored segments one merge or encoding pass takes at most: bounds its
#: temporary arrays (~50 bytes a number) whatever the size of the state
BLOCK_NUMBERS = 1 << 20
#: most numbers one stored segment may claim (2**16: every key of the segment)
MAX_SEGMENT_NUMBERS = 1 << SEGMENT_SHIFT
#: zstd level of stored segments: -1 (fast mode) compresses a segment's planes to ~34 %
#: at twice level 1's speed (level 1: ~29 %)
ZSTD_LEVEL = -1
#: largest state stored (a ``uint32``)
_STATE_MAX = 0xFFFF_FFFF
#: bytes a number takes in a stored segment before compression (offset delta + state)
_STORED_BYTES = 6

_COUNT = struct.Struct("<I")

Keys = npt.NDArray[np.int64]
Offsets = npt.NDArray[np.uint16]
States = npt.NDArray[np.uint32]


class SegmentFormatError(ValueError):
    """A stored segment that cannot be read; says why."""


def number_key(region_index: int, number: int) -> int:
    """The key of a number in a region (region index in the high bits)."""
    return (region_index << NUMBER_BITS) | number


class NumberStates:
    """State per number: ``get``/``set`` per event, small sorted arrays per segment."""

    def __init__(self) -> None:
        self._segments: dict[int, tuple[Offsets, States]] = {}
        self._changed: dict[int, int] = {}
        self._dirty: set[int] = set()
        self._count = 0

    def __len__(self) -> int:
        """Numbers with a state (merges first)."""
        self.merge()
        return self._count

    @property
    def nbytes(self) -> int:
        """Bytes of the segments' arrays."""
        return sum(int(o.nbytes + s.nbytes) for o, s in self._segments.values())

    @property
    def segments(self) -> int:
        """Segments holding numbers."""
        return len(self._segments)

    def get(self, key: int) -> int:
        """The state of ``key`` (0 when never seen)."""
        state = self._changed.get(key)
        if state is not None:
            return state
        entry = self._segments.get(key >> SEGMENT_SHIFT)
        if entry is None:
            return 0
        offsets, states = entry
        offset = key & SEGMENT_MASK
        index = int(offsets.searchsorted(offset))
        if index < len(offsets) and int(offsets[index]) == offset:
            return int(states[index])
        return 0

    def set(self, key: int, state: int) -> None:
        """Store the state of ``key`` (in the change dict: never a merge, so that the
        caller's lock is held for the set alone)."""
        self._changed[key] = min(state, _STATE_MAX)
        self._dirty.add(key >> SEGMENT_SHIFT)

    def merge_if_large(self) -> None:
        """Merge when the change dict holds :data:`MERGE_THRESHOLD` numbers or more (the
        consumer calls it between batches, outside readers' lock)."""
        if len(self._changed) >= MERGE_THRESHOLD:
            self.merge()

    def merge(self) -> None:
        """Fold the change dict into the segments it touches."""
        if not self._changed:
            return
        count = len(self._changed)
        keys = np.fromiter(self._changed.keys(), dtype=np.int64, count=count)
        states = np.fromiter(self._changed.values(), dtype=np.uint32, count=count)
        self._changed.clear()
        self._merge_arrays(keys, states)

    def set_many(self, keys: Keys, states: States) -> None:
        """Store the states of many distinct ``keys`` at once (vectorised; for bulk loads)."""
        self.merge()
        self._dirty.update(np.unique(keys >> SEGMENT_SHIFT).tolist())
        self._merge_arrays(keys.astype(np.int64), np.minimum(states, _STATE_MAX).astype(np.uint32))

    def _merge_arrays(self, keys: Keys, states: States) -> None:
        """Merge distinct ``keys`` into their segments, block by block of touched
        segments (:data:`BLOCK_NUMBERS` stored numbers at most each)."""
        if not len(keys):
            return
        order = np.argsort(keys, kind="stable")
        keys, states = keys[order], states[order]
        touched = np.unique(keys >> SEGMENT_SHIFT)
        sizes = np.fromiter(
            (len(self._segments.get(s, _EMPTY)[0]) for s in touched.tolist()),
            dtype=np.int64,
            count=len(touched),
        )
        for block in _blocks(sizes):
            first, last = int(touched[block.start]), int(touched[block.stop - 1])
            low, high = np.searchsorted(
                keys, [first << SEGMENT_SHIFT, (last + 1) << SEGMENT_SHIFT]
            ).tolist()
            self._merge_block(touched[block], keys[low:high], states[low:high])

    def _merge_block(self, touched: Keys, keys: Keys, states: States) -> None:
        """Whole-array passes: the new (sorted, distinct) keys located in the touched
        segments' old entries (sorted too) by binary search; a new state replaces the old
        one of the same key, the other new entries are inserted in place (linear, where
        sorting old and new together cost ``n log n`` over every old entry); the result
        cut back into one copy per segment."""
        olds = [self._segments.get(segment, _EMPTY) for segment in touched.tolist()]
        sizes = np.fromiter((len(o) for o, _ in olds), dtype=np.int64, count=len(olds))
        bases = np.repeat(touched << SEGMENT_SHIFT, sizes)
        old_keys = np.concatenate([o for o, _ in olds]).astype(np.int64) + bases
        old_states = np.concatenate([v for _, v in olds])
        places = np.searchsorted(old_keys, keys)
        if len(old_keys):
            known = old_keys[np.minimum(places, len(old_keys) - 1)] == keys
        else:
            known = np.zeros(len(keys), dtype=bool)
        old_states[places[known]] = states[known]
        fresh = ~known
        every = np.insert(old_keys, places[fresh], keys[fresh])
        merged = np.insert(old_states, places[fresh], states[fresh])
        offsets = (every & SEGMENT_MASK).astype(np.uint16)
        bounds = np.searchsorted(every >> SEGMENT_SHIFT, touched, side="right").tolist()
        start = 0
        for segment, end in zip(touched.tolist(), bounds, strict=True):
            self._segments[segment] = (offsets[start:end].copy(), merged[start:end].copy())
            start = end
        self._count += len(every) - int(sizes.sum())

    def take_dirty(self, limit: int | None = None) -> list[int]:
        """The segments changed since the last call, sorted (the first ``limit`` of them,
        if given); forgets them (merges first, so that they can be encoded)."""
        self.merge()
        dirty = sorted(self._dirty)
        if limit is not None and len(dirty) > limit:
            dirty = dirty[:limit]
            self._dirty.difference_update(dirty)
        else:
            self._dirty = set()
        return dirty

    @property
    def dirty_segments(self) -> int:
        """Segments changed and not yet taken (count)."""
        return len(self._dirty)

    def restore_dirty(self, segments: list[int]) -> None:
        """Count ``segments`` as changed again (their write failed)."""
        self._dirty.update(segments)

    def mark_all_dirty(self) -> None:
        """Every segment counts as changed (after a load: the next checkpoint rewrites all)."""
        self.merge()
        self._dirty.update(self._segments)

    def segment(self, segment: int) -> tuple[Keys, States]:
        """The keys and states of one segment (merges first)."""
        self.merge()
        offsets, states = self._segments.get(segment, _EMPTY)
        return offsets.astype(np.int64) + (segment << SEGMENT_SHIFT), states

    def encode_segment(self, segment: int, compressor: zstandard.ZstdCompressor) -> bytes:
        """The stored form of one segment (see :meth:`encode_segments`)."""
        return self.encode_segments([segment], compressor)[segment]

    def encode_segments(
        self, segments: list[int], compressor: zstandard.ZstdCompressor
    ) -> dict[int, bytes]:
        """The stored form of each of ``segments``: a ``uint32`` count, then zstd of the
        offset deltas (``uint16``) and the states (``uint32``) as byte planes. The planes
        are cut from whole-array passes over all the segments at once. Call after
        :meth:`take_dirty` (which merges). Works block by block of segments
        (:data:`BLOCK_NUMBERS` numbers at most each)."""
        sizes = np.fromiter(
            (len(self._segments.get(s, _EMPTY)[0]) for s in segments),
            dtype=np.int64,
            count=len(segments),
        )
        blobs: dict[int, bytes] = {}
        for block in _blocks(sizes):
            blobs.update(self._encode_block(segments[block], compressor))
        return blobs

    def _encode_block(
        self, segments: list[int], compressor: zstandard.ZstdCompressor
    ) -> dict[int, bytes]:
        parts = [self._segments.get(segment, _EMPTY) for segment in segments]
        sizes = [len(o) for o, _ in parts]
        offsets = np.concatenate([o for o, _ in parts]).astype(np.int32)
        states = np.concatenate([v for _, v in parts]).astype("<u4")
        firsts = np.cumsum([0, *sizes[:-1]], dtype=np.int64)
        deltas = np.diff(offsets, prepend=np.int32(0))
        starts = firsts[np.asarray(sizes, dtype=np.int64) > 0]
        deltas[starts] = offsets[starts]
        columns = [deltas.astype("<u2").view(np.uint8).reshape(-1, 2)]
        columns.append(states.view(np.uint8).reshape(-1, 4))
        planes = np.ascontiguousarray(np.concatenate(columns, axis=1).T)
        # a (6, size) slice copied in C order is the segment's planes one after another
        bodies: list[bytes | bytearray | memoryview[int]] = [
            planes[:, first : first + size].tobytes()
            for first, size in zip(firsts.tolist(), sizes, strict=True)
        ]
        # one call compresses every body, outside the interpreter lock
        frames = compressor.multi_compress_to_buffer(bodies, threads=0)
        return {
            segment: _COUNT.pack(size) + frames[i].tobytes()
            for i, (segment, size) in enumerate(zip(segments, sizes, strict=True))
        }

    def load_segments(self, blobs: dict[int, bytes]) -> None:
        """Replace everything by the stored segments ``blobs`` (segment id → blob); on a
        damaged one raise :class:`SegmentFormatError` and change nothing."""
        decompressor = zstandard.ZstdDecompressor()
        loaded = {s: _decode_segment(s, blob, decompressor) for s, blob in blobs.items()}
        self._changed.clear()
        self._dirty.clear()
        self._segments = loaded
        self._count = sum(len(o) for o, _ in loaded.values())

    def items(self) -> Iterable[tuple[int, int]]:
        """Every (key, state), by key (merges first)."""
        self.merge()
        for segment in sorted(self._segments):
            keys, states = self.segment(segment)
            yield from zip(keys.tolist(), states.tolist(), strict=True)


_EMPTY: tuple[Offsets, States] = (np.empty(0, np.uint16), np.empty(0, np.uint32))


def _blocks(sizes: npt.NDArray[np.int64]) -> list[slice]:
    """Consecutive runs of ``sizes`` holding :data:`BLOCK_NUMBERS` numbers or fewer each
    (a single larger one stands alone)."""
    if not len(sizes):
        return []
    block = (np.cumsum(sizes) - 1) // BLOCK_NUMBERS
    starts = [0, *(np.flatnonzero(np.diff(block)) + 1).tolist()]
    return [slice(a, b) for a, b in zip(starts, [*starts[1:], len(sizes)], strict=True)]


def _unplanes(data: npt.NDArray[np.uint8], count: int, width: int) -> npt.NDArray[np.generic]:
    return np.ascontiguousarray(data.reshape(width, count).T).view(f"<u{width}").reshape(count)


def _decode_segment(
    segment: int, blob: bytes, decompressor: zstandard.ZstdDecompressor
) -> tuple[Offsets, States]:
    if len(blob) < _COUNT.size:
        raise SegmentFormatError(f"segment {segment} is truncated")
    (count,) = _COUNT.unpack_from(blob)
    if not 0 < count <= MAX_SEGMENT_NUMBERS:
        raise SegmentFormatError(f"segment {segment} claims {count} numbers")
    expected = count * _STORED_BYTES
    try:
        data = decompressor.decompress(blob[_COUNT.size :], max_output_size=expected)
    except zstandard.ZstdError as exc:
        raise SegmentFormatError(f"segment {segment} is corrupt: {exc}") from exc
    if len(data) != expected:
        raise SegmentFormatError(f"segment {segment} holds {len(data)} bytes, not {expected}")
    raw = np.frombuffer(data, dtype=np.uint8)
    deltas = _unplanes(raw[: count * 2], count, 2).astype(np.int64)
    offsets = np.cumsum(deltas)
    if np.any(deltas[1:] == 0) or int(offsets[-1]) > SEGMENT_MASK:
        raise SegmentFormatError(f"segment {segment} is not sorted or overflows")
    states = _unplanes(raw[count * 2 :], count, 4).astype(np.uint32)
    return offsets.astype(np.uint16), states
