"""The reporter's compact per-number states: a dict's behaviour, segments stored and read."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebank.reporter import number_states
from phonebank.reporter.number_states import NumberStates, SegmentFormatError, number_key

FIRST = 9_000_000_000
KEYS = st.builds(number_key, st.integers(0, 3), st.integers(FIRST, FIRST + 5_000_000))
WRITES = st.lists(st.tuples(KEYS, st.integers(1, 2**32 - 1)), max_size=200)


@settings(max_examples=80, deadline=None)
@given(WRITES, st.integers(1, 50))
def test_states_behave_like_a_dict_across_merges(writes: list[tuple[int, int]], every: int) -> None:
    """Given any writes, with merges into the arrays every few writes
    When states are read back
    Then each equals what a dict holds, unknown keys read 0, and the length matches."""
    states, truth = NumberStates(), {}
    for step, (key, state) in enumerate(writes):
        states.set(key, state)
        truth[key] = state
        if step % every == 0:
            states.merge()
    assert all(states.get(k) == v for k, v in truth.items())
    assert states.get(number_key(9, 9_999_999_999)) == 0
    assert len(states) == len(truth)
    assert dict(states.items()) == truth


def stored(states: NumberStates) -> dict[int, bytes]:
    states.mark_all_dirty()
    compressor = zstandard.ZstdCompressor()
    return {s: states.encode_segment(s, compressor) for s in states.take_dirty()}


@settings(max_examples=40, deadline=None)
@given(WRITES)
def test_segments_store_and_load_every_state(writes: list[tuple[int, int]]) -> None:
    """Given any states
    When every segment is encoded and loaded into a fresh store
    Then the fresh store holds exactly the same states."""
    states = NumberStates()
    for key, state in writes:
        states.set(key, state)
    loaded = NumberStates()
    loaded.load_segments(stored(states))
    assert dict(loaded.items()) == dict(states.items())


def test_only_changed_segments_are_dirty() -> None:
    """Given states in two segments, both taken as checkpointed
    When one number of one segment changes
    Then only that segment is dirty."""
    states = NumberStates()
    far = number_key(0, 9_000_000_000 + (5 << number_states.SEGMENT_SHIFT))
    states.set(number_key(0, 9_000_000_000), 1)
    states.set(far, 1)
    assert len(states.take_dirty()) == 2
    states.set(far, 2)
    assert states.take_dirty() == [far >> number_states.SEGMENT_SHIFT]
    assert states.take_dirty() == []


def good_segment() -> tuple[int, bytes]:
    states = NumberStates()
    states.set(number_key(0, 9_000_000_001), 5)
    states.set(number_key(0, 9_000_000_007), 6)
    return next(iter(stored(states).items()))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:2], "truncated"),
        (lambda b: b"\x00\x00\x00\x00" + b[4:], "claims 0 numbers"),
        (lambda b: b"\x03\x00\x00\x00" + b[4:], "holds 12 bytes, not 18"),
        (lambda b: b[:4] + b"junk", "corrupt"),
    ],
)
def test_a_damaged_segment_is_refused(damage: object, reason: str) -> None:
    """Given a stored segment that was cut, altered or overwritten
    When it is loaded
    Then SegmentFormatError names the reason and the store is unchanged."""
    segment, blob = good_segment()
    states = NumberStates()
    with pytest.raises(SegmentFormatError, match=reason):
        states.load_segments({segment: damage(blob)})  # type: ignore[operator]
    assert len(states) == 0


@settings(max_examples=40, deadline=None)
@given(WRITES, WRITES)
def test_set_many_equals_one_set_per_key(
    first: list[tuple[int, int]], bulk: list[tuple[int, int]]
) -> None:
    """Given states set one by one
    When more distinct states are set at once with set_many
    Then the store equals a dict updated the same way, and their segments are dirty."""
    states, truth = NumberStates(), {}
    for key, state in first:
        states.set(key, state)
        truth[key] = state
    states.take_dirty()
    many = dict(bulk)
    states.set_many(np.array(list(many), np.int64), np.array(list(many.values()), np.uint32))
    truth.update(many)
    assert dict(states.items()) == truth
    assert states.take_dirty() == sorted({k >> number_states.SEGMENT_SHIFT for k in many})


def test_merges_and_encodings_cut_into_blocks_keep_every_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given blocks of at most 3 stored numbers, and states over many segments (some
    holding more numbers than a block)
    When states are merged in several rounds, then encoded and loaded
    Then the store equals a dict, and the loaded copy equals the store."""
    monkeypatch.setattr(number_states, "BLOCK_NUMBERS", 3)
    rng = np.random.default_rng(5)
    states, truth = NumberStates(), {}
    for _ in range(4):
        for number in rng.integers(FIRST, FIRST + 40 * 65_536, size=60).tolist():
            key = number_key(int(number) % 3, int(number))
            truth[key] = int(rng.integers(1, 2**32))
            states.set(key, truth[key])
        states.merge()
    assert dict(states.items()) == truth
    loaded = NumberStates()
    loaded.load_segments(stored(states))
    assert dict(loaded.items()) == truth


def test_set_never_merges_merge_if_large_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a merge threshold of 3 changed numbers
    When 3 numbers are set, then merge_if_large is called
    Then set left them in the change dict, and merge_if_large merged them."""
    monkeypatch.setattr(number_states, "MERGE_THRESHOLD", 3)
    states = NumberStates()
    for offset in range(3):
        states.set(number_key(0, FIRST + offset), 1)
    assert states.segments == 0
    states.merge_if_large()
    assert states.segments == 1
    assert states.get(number_key(0, FIRST + 2)) == 1
