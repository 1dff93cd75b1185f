"""The wire format of a number chunk (a record of ``phonebank.numbers``), versioned.

Version 2 (what ingest writes): a fixed header, the chunk's text fields, then the
numbers sorted ascending, as 64-bit deltas split into eight byte planes (all the high
bytes of every delta first, then the next, …) and compressed with zstd (level 1, with
the frame's checksum). Sorting and byte planes let zstd store a chunk of 1,000 numbers
of one region in about 2.5 bytes a number (JSON took 11). Layout, little-endian:

=======  ========  ==================================================================
offset   size      field
=======  ========  ==================================================================
0        3         magic ``PBN``
3        1         version (2)
4        8         ``seq`` (u64)
12       4         ``count``: numbers in the chunk (u32, 1 … :data:`MAX_CHUNK_NUMBERS`)
16       8         ``first``: the smallest number (u64)
24       2+n ×3    ``campaign``, ``region``, ``source``: u16 byte length + UTF-8 each
…        rest      zstd frame of ``count × 8`` bytes: the byte planes of the deltas
=======  ========  ==================================================================

Version 1 (what ingest wrote before) is the JSON object of the pydantic model; a value
starting with ``{`` is read as version 1, so old topics still decode. Anything else,
and any version-2 value that is truncated, corrupt, too large, or holds a number that
is not a 10-digit national number, raises :class:`ChunkFormatError` (a ``ValueError``)
with the reason, before a number of it is used.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import zstandard

#: first bytes of a version-2 chunk
MAGIC: Final = b"PBN"
#: the version ingest writes
VERSION: Final = 2
#: first byte of a version-1 (JSON) chunk
JSON_START: Final = b"{"
#: most numbers one chunk may hold (count); bounds the memory a record can claim
MAX_CHUNK_NUMBERS: Final = 1_000_000
#: most bytes of one text field (campaign, region, source)
MAX_FIELD_BYTES: Final = 1024
#: zstd level: the fastest, which already finds what the byte planes expose
ZSTD_LEVEL: Final = 1
#: bytes of one delta (and number planes)
DELTA_BYTES: Final = 8
#: lowest and highest 10-digit Russian national significant number
NATIONAL_MIN: Final = 1_000_000_000
NATIONAL_MAX: Final = 9_999_999_999
#: largest gap between two numbers of a chunk
MAX_DELTA: Final = NATIONAL_MAX - NATIONAL_MIN

_HEADER = struct.Struct("<3sBQIQ")
_FIELD_LENGTH = struct.Struct("<H")

Int64Array = npt.NDArray[np.int64]


class ChunkFormatError(ValueError):
    """A record value that is not a number chunk of a known version; says why."""


@dataclass(frozen=True)
class DecodedChunk:
    """The fields of a version-2 chunk; ``numbers`` sorted ascending."""

    campaign: str
    region: str
    source: str
    seq: int
    numbers: Int64Array


def is_json(value: bytes) -> bool:
    """Whether ``value`` is a version-1 (JSON) chunk by its first byte."""
    return value[:1] == JSON_START


def encode(campaign: str, region: str, source: str, seq: int, numbers: Int64Array) -> bytes:
    """The version-2 record value of a chunk; its numbers go in sorted."""
    count = len(numbers)
    if not 0 < count <= MAX_CHUNK_NUMBERS:
        raise ChunkFormatError(f"a chunk holds 1 … {MAX_CHUNK_NUMBERS} numbers, not {count}")
    ordered = np.sort(np.asarray(numbers, dtype=np.int64))
    if ordered[0] < NATIONAL_MIN or ordered[-1] > NATIONAL_MAX:
        raise ChunkFormatError("a chunk holds 10-digit national numbers only")
    deltas = np.zeros(count, dtype="<i8")
    np.subtract(ordered[1:], ordered[:-1], out=deltas[1:])
    planes = deltas.view(np.uint8).reshape(count, DELTA_BYTES).T.tobytes()
    fields = b"".join(_field(text) for text in (campaign, region, source))
    header = _HEADER.pack(MAGIC, VERSION, seq, count, int(ordered[0]))
    return header + fields + _CONTEXTS.compressor.compress(planes)


def decode(value: bytes) -> DecodedChunk:
    """The chunk in a version-2 ``value``; raises :class:`ChunkFormatError` on a bad one."""
    if len(value) < _HEADER.size:
        raise ChunkFormatError(f"record of {len(value)} bytes is shorter than a chunk header")
    magic, version, seq, count, first = _HEADER.unpack_from(value)
    if magic != MAGIC:
        raise ChunkFormatError(f"not a number chunk (starts with {value[:4]!r})")
    if version != VERSION:
        raise ChunkFormatError(f"number chunk of unknown version {version}")
    if not 0 < count <= MAX_CHUNK_NUMBERS:
        raise ChunkFormatError(f"number chunk claims {count} numbers")
    position = _HEADER.size
    texts = []
    for _ in range(3):
        text, position = _read_field(value, position)
        texts.append(text)
    deltas = _planes_to_deltas(_decompress(value[position:], count * DELTA_BYTES), count)
    # bounded before summing: count × MAX_DELTA stays far below 2**63
    if int(deltas.max()) > MAX_DELTA:
        raise ChunkFormatError("number chunk holds numbers outside the 10-digit range")
    numbers = np.cumsum(deltas.view(np.int64))
    numbers += first
    if first < NATIONAL_MIN or int(numbers[-1]) > NATIONAL_MAX:
        raise ChunkFormatError("number chunk holds numbers outside the 10-digit range")
    campaign, region, source = texts
    return DecodedChunk(campaign, region, source, seq, numbers)


def _field(text: str) -> bytes:
    data = text.encode()
    if len(data) > MAX_FIELD_BYTES:
        raise ChunkFormatError(f"chunk field of {len(data)} bytes (at most {MAX_FIELD_BYTES})")
    return _FIELD_LENGTH.pack(len(data)) + data


def _read_field(value: bytes, position: int) -> tuple[str, int]:
    end = position + _FIELD_LENGTH.size
    if end > len(value):
        raise ChunkFormatError("number chunk truncated in its header")
    (length,) = _FIELD_LENGTH.unpack_from(value, position)
    if length > MAX_FIELD_BYTES or end + length > len(value):
        raise ChunkFormatError("number chunk truncated in its header")
    try:
        return value[end : end + length].decode(), end + length
    except UnicodeDecodeError as exc:
        raise ChunkFormatError("number chunk header field is not UTF-8") from exc


def _decompress(frame: bytes, expected: int) -> bytes:
    try:
        size = zstandard.frame_content_size(frame)
        if size != expected:
            raise ChunkFormatError(f"number chunk payload of {size} bytes, expected {expected}")
        data = _CONTEXTS.decompressor.decompress(frame, max_output_size=expected)
    except zstandard.ZstdError as exc:
        raise ChunkFormatError(f"number chunk payload is corrupt: {exc}") from exc
    if len(data) != expected:
        raise ChunkFormatError(f"number chunk payload of {len(data)} bytes, expected {expected}")
    return data


def _planes_to_deltas(data: bytes, count: int) -> npt.NDArray[np.uint64]:
    planes = np.frombuffer(data, dtype=np.uint8).reshape(DELTA_BYTES, count)
    return np.ascontiguousarray(planes.T).view("<u8").reshape(count)


class _Contexts(threading.local):
    """One zstd compressor and decompressor per thread (they are not thread-safe, and
    making one costs more than compressing a chunk)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        self.decompressor = zstandard.ZstdDecompressor()


_CONTEXTS = _Contexts()
