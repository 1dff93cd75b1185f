"""The reporter's per-number state, compact: sorted numpy arrays plus a dict of changes.

Every number ever called has a state (calls, expiries, flags: one ``uint32``, see
:mod:`phonebank.reporter.aggregate`). A Python ``dict`` of them cost ~100 bytes a
number (1 GB at 10 M); here the bulk lives in two sorted arrays, 12 bytes a number —
``int64`` keys (region index << 34 | national number) and ``uint32`` states — and only
the numbers changed since the last merge sit in a dict. :meth:`NumberStates.prefetch`
loads a batch's states from the arrays in one ``searchsorted``; :meth:`merge` folds the
dict into the arrays (one pass, at a checkpoint or when the dict grows large).

For incremental checkpoints the key space is cut into segments of 2**20 keys (a block of
about a million consecutive numbers of one region); :meth:`take_dirty` names the
segments changed since the last checkpoint and :meth:`encode_segment` gives one
segment's stored form: a count, then its key deltas and states as byte planes, zstd.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import zstandard

#: bits of a key below its segment id (a segment spans 2**20 consecutive keys)
SEGMENT_SHIFT = 20
#: bits of a key holding the national number (10 digits < 2**34)
NUMBER_BITS = 34
#: changed numbers held in the dict before they are merged into the arrays (count)
MERGE_THRESHOLD = 500_000
#: most numbers one stored segment may claim (2**20: every key of the segment)
MAX_SEGMENT_NUMBERS = 1 << SEGMENT_SHIFT
#: zstd level of stored segments
ZSTD_LEVEL = 1
#: calls counted per number at most (the state's high 16 bits)
_STATE_MAX = 0xFFFF_FFFF

_COUNT = struct.Struct("<I")

Keys = npt.NDArray[np.int64]
States = npt.NDArray[np.uint32]


class SegmentFormatError(ValueError):
    """A stored segment that cannot be read; says why."""


def number_key(region_index: int, number: int) -> int:
    """The key of a number in a region (region index in the high bits)."""
    return (region_index << NUMBER_BITS) | number


class NumberStates:
    """State per number: ``get``/``set`` per event, bulk arrays underneath."""

    def __init__(self) -> None:
        self._keys: Keys = np.empty(0, dtype=np.int64)
        self._states: States = np.empty(0, dtype=np.uint32)
        self._changed: dict[int, int] = {}
        self._dirty: set[int] = set()

    def __len__(self) -> int:
        """Numbers with a state (merges first)."""
        self.merge()
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        """Bytes of the bulk arrays."""
        return int(self._keys.nbytes + self._states.nbytes)

    def prefetch(self, keys: Iterable[int]) -> None:
        """Load the stored states of ``keys`` into the change dict (one vectorised lookup),
        so the following :meth:`get` calls are dict lookups."""
        wanted = np.fromiter((k for k in keys if k not in self._changed), dtype=np.int64)
        if not len(wanted) or not len(self._keys):
            return
        index = np.searchsorted(self._keys, wanted)
        index[index == len(self._keys)] = 0
        found = self._keys[index] == wanted
        self._changed.update(
            zip(wanted[found].tolist(), self._states[index[found]].tolist(), strict=True)
        )

    def get(self, key: int) -> int:
        """The state of ``key`` (0 when never seen)."""
        state = self._changed.get(key)
        if state is not None:
            return state
        index = int(np.searchsorted(self._keys, key))
        if index < len(self._keys) and int(self._keys[index]) == key:
            return int(self._states[index])
        return 0

    def set(self, key: int, state: int) -> None:
        """Store the state of ``key``; merges when the change dict is large."""
        self._changed[key] = min(state, _STATE_MAX)
        self._dirty.add(key >> SEGMENT_SHIFT)
        if len(self._changed) >= MERGE_THRESHOLD:
            self.merge()

    def merge(self) -> None:
        """Fold the change dict into the sorted arrays (one pass over them)."""
        if not self._changed:
            return
        count = len(self._changed)
        keys = np.fromiter(self._changed.keys(), dtype=np.int64, count=count)
        states = np.fromiter(self._changed.values(), dtype=np.uint32, count=count)
        self._changed.clear()
        order = np.argsort(keys)
        keys, states = keys[order], states[order]
        index = np.searchsorted(self._keys, keys)
        inside = index < len(self._keys)
        known = np.zeros(count, dtype=bool)
        known[inside] = self._keys[index[inside]] == keys[inside]
        self._states[index[known]] = states[known]
        new = ~known
        if new.any():
            self._keys = np.insert(self._keys, index[new], keys[new])
            self._states = np.insert(self._states, index[new], states[new])

    def take_dirty(self) -> list[int]:
        """The segments changed since the last call, sorted; forgets them."""
        dirty = sorted(self._dirty)
        self._dirty = set()
        return dirty

    def restore_dirty(self, segments: list[int]) -> None:
        """Count ``segments`` as changed again (their write failed)."""
        self._dirty.update(segments)

    def mark_all_dirty(self) -> None:
        """Every segment counts as changed (after a load: the next checkpoint rewrites all)."""
        self.merge()
        self._dirty.update(np.unique(self._keys >> SEGMENT_SHIFT).tolist())

    def segment(self, segment: int) -> tuple[Keys, States]:
        """The keys and states of one segment (merges first)."""
        self.merge()
        low, high = np.searchsorted(
            self._keys, [segment << SEGMENT_SHIFT, (segment + 1) << SEGMENT_SHIFT]
        )
        return self._keys[low:high], self._states[low:high]

    def encode_segment(self, segment: int, compressor: zstandard.ZstdCompressor) -> bytes:
        """The stored form of one segment: count, then key deltas and states as byte planes."""
        keys, states = self.segment(segment)
        offsets = keys - (segment << SEGMENT_SHIFT)
        deltas = np.diff(offsets, prepend=0).astype("<u4")
        planes = np.concatenate([_planes(deltas), _planes(states.astype("<u4"))])
        return _COUNT.pack(len(keys)) + compressor.compress(planes.tobytes())

    def load_segments(self, blobs: dict[int, bytes]) -> None:
        """Replace everything by the stored segments ``blobs`` (segment id → blob)."""
        decompressor = zstandard.ZstdDecompressor()
        parts = [_decode_segment(s, blobs[s], decompressor) for s in sorted(blobs)]
        self._changed.clear()
        self._dirty.clear()
        self._keys = np.concatenate([k for k, _ in parts] or [np.empty(0, np.int64)])
        self._states = np.concatenate([v for _, v in parts] or [np.empty(0, np.uint32)])

    def items(self) -> Iterable[tuple[int, int]]:
        """Every (key, state), by key (merges first)."""
        self.merge()
        return zip(self._keys.tolist(), self._states.tolist(), strict=True)


def _planes(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
    return values.view(np.uint8).reshape(-1, 4).T.ravel()


def _unplanes(data: npt.NDArray[np.uint8], count: int) -> npt.NDArray[np.uint32]:
    return np.ascontiguousarray(data.reshape(4, count).T).view("<u4").reshape(count)


def _decode_segment(
    segment: int, blob: bytes, decompressor: zstandard.ZstdDecompressor
) -> tuple[Keys, States]:
    if len(blob) < _COUNT.size:
        raise SegmentFormatError(f"segment {segment} is truncated")
    (count,) = _COUNT.unpack_from(blob)
    if not 0 < count <= MAX_SEGMENT_NUMBERS:
        raise SegmentFormatError(f"segment {segment} claims {count} numbers")
    expected = count * 8
    try:
        data = decompressor.decompress(blob[_COUNT.size :], max_output_size=expected)
    except zstandard.ZstdError as exc:
        raise SegmentFormatError(f"segment {segment} is corrupt: {exc}") from exc
    if len(data) != expected:
        raise SegmentFormatError(f"segment {segment} holds {len(data)} bytes, not {expected}")
    raw = np.frombuffer(data, dtype=np.uint8)
    deltas = _unplanes(raw[: count * 4], count).astype(np.int64)
    offsets = np.cumsum(deltas)  # count × 2**32 stays far below 2**63
    if np.any(deltas[1:] == 0) or int(offsets[-1]) >= MAX_SEGMENT_NUMBERS:
        raise SegmentFormatError(f"segment {segment} is not sorted or overflows")
    keys = offsets + (segment << SEGMENT_SHIFT)
    return keys, _unplanes(raw[count * 4 :], count).astype(np.uint32)
