"""The number chunk wire format: round trip, size, the old JSON form, refusals."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonebank.domain import chunk_codec
from phonebank.domain.chunk_codec import ChunkFormatError
from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import NumberChunk
from phonebank.leases.queues import batch_id, pack_numbers

NATIONALS = st.integers(chunk_codec.NATIONAL_MIN, chunk_codec.NATIONAL_MAX)


def chunk(numbers: list[int], seq: int = 7) -> NumberChunk:
    return NumberChunk(campaign="default", region="RU-MOW", source="src", seq=seq, numbers=numbers)


@given(st.lists(NATIONALS, min_size=1, max_size=300), st.integers(0, 2**63))
def test_a_chunk_decodes_to_its_numbers_sorted(numbers: list[int], seq: int) -> None:
    """Given any chunk of 10-digit numbers (duplicates allowed)
    When it is encoded and decoded
    Then every field comes back and the numbers come back sorted, none lost."""
    decoded = NumberChunk.decode(chunk(numbers, seq).encode())
    assert decoded == chunk(sorted(numbers), seq)


def test_the_batch_id_does_not_depend_on_the_order_numbers_came_in() -> None:
    """Given one chunk's numbers in two orders (a re-ingest of a shuffled file)
    When each is encoded and decoded
    Then the numbers, and so enqueue's idempotency hash of them, are the same."""
    numbers = [9161234569, 9161234567, 9211234567, 9161234568]
    first = NumberChunk.decode(chunk(numbers).encode()).numbers
    second = NumberChunk.decode(chunk(numbers[::-1]).encode()).numbers
    assert first == second
    assert batch_id(pack_numbers(first)) == batch_id(pack_numbers(second))


def test_a_chunk_of_one_region_takes_under_four_bytes_a_number() -> None:
    """Given 1,000 numbers of one region drawn from the numbering plan
    When they are encoded
    Then the record takes at most 4 bytes a number (the issue's target), header included."""
    plan = NumberingPlan.default()
    numbers = plan.random_allocated(np.random.default_rng(1), 400_000)
    regions = plan.region_index(numbers)
    busiest = np.bincount(regions[regions >= 0]).argmax()
    sample = numbers[regions == busiest][:1000]
    assert len(sample) == 1000
    value = chunk(sample.tolist()).encode()
    assert len(value) / 1000 <= 4.0


def test_a_version_one_json_chunk_still_decodes() -> None:
    """Given a record as ingest wrote it before the compact format (pydantic JSON)
    When it is decoded
    Then it reads as before, its order kept."""
    old = chunk([9161234569, 9161234567]).model_dump_json().encode()
    assert NumberChunk.decode(old).numbers == [9161234569, 9161234567]


def good() -> bytes:
    return chunk([9161234567, 9161234568, 9161234999]).encode()


def with_header(**fields: int) -> bytes:
    value = good()
    magic, version, seq, count, first = struct.unpack_from("<3sBQIQ", value)
    header = {"version": version, "seq": seq, "count": count, "first": first} | fields
    packed = struct.pack(
        "<3sBQIQ", magic, header["version"], header["seq"], header["count"], header["first"]
    )
    return packed + value[24:]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "shorter than a chunk header"),
        (b"PBN\x02", "shorter than a chunk header"),
        (b"XYZ" + good()[3:], "not a number chunk"),
        (with_header(version=3), "unknown version 3"),
        (with_header(count=0), "claims 0 numbers"),
        (with_header(count=2), "expected 16"),
        (with_header(count=10**7), "claims 10000000 numbers"),
        (with_header(first=10), "outside the 10-digit range"),
        (with_header(first=9_999_999_990), "outside the 10-digit range"),
        (good()[:-3], "corrupt"),
        (good()[:30], "truncated"),
        (good()[:-9] + bytes(9), "corrupt"),
    ],
)
def test_a_bad_record_is_refused_with_its_reason(value: bytes, reason: str) -> None:
    """Given a record that is truncated, corrupt, of another version or out of range
    When it is decoded
    Then ChunkFormatError (a ValueError) names the reason."""
    with pytest.raises(ChunkFormatError, match=reason):
        NumberChunk.decode(value)


def test_a_record_without_value_and_bad_json_are_value_errors() -> None:
    """Given a tombstone and a JSON record that is not a chunk
    When they are decoded
    Then both raise ValueError, which the assigner counts and skips."""
    with pytest.raises(ValueError, match="without a bytes value"):
        NumberChunk.decode(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="validation error"):
        NumberChunk.decode(b'{"campaign": 1}')


@pytest.mark.parametrize("numbers", [[], [123], [10_000_000_000]])
def test_a_chunk_that_cannot_be_written_is_refused(numbers: list[int]) -> None:
    """Given no numbers, or a number that is not 10 digits
    When the chunk is encoded
    Then ChunkFormatError says so and nothing is written."""
    with pytest.raises(ChunkFormatError):
        chunk(numbers).encode()
