"""The bulk RESP encoder writes exactly what hiredis writes, argument by argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonebank.leases.resp import pack_with_integers
from phonebank.leases.scripts import pack_command

values = st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=60)
arguments = st.lists(
    st.one_of(
        st.text(max_size=12), st.binary(max_size=12), st.integers(min_value=0, max_value=10**12)
    ),
    max_size=4,
)


@given(numbers=values, head=arguments, before=arguments, after=arguments)
def test_same_bytes_as_hiredis(
    numbers: list[int],
    head: list[str | bytes | int],
    before: list[str | bytes | int],
    after: list[str | bytes | int],
) -> None:
    # Given a command head and a group of arguments around each integer
    command: list[str | bytes | int] = ["CMD", *head]
    for number in numbers:
        command += [*before, number, *after]
    # When it is encoded in bulk, Then the bytes are hiredis's
    packed = pack_with_integers(("CMD", *head), np.array(numbers, dtype=np.int64), before, after)
    assert packed == pack_command(tuple(command))


def test_every_digit_count_and_the_edges() -> None:
    # Given the values at each power-of-ten edge
    edges = sorted({0, 2**63 - 1} | {10**k + d for k in range(19) for d in (-1, 0)})
    # When encoded as BITFIELD offsets, Then as hiredis
    command: list[str | int] = ["BITFIELD", "key"]
    for offset in edges:
        command += ["SET", "u1", offset, 1]
    assert pack_with_integers(
        ("BITFIELD", "key"), np.array(edges, dtype=np.int64), ("SET", "u1"), (1,)
    ) == pack_command(tuple(command))


def test_a_negative_value_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        pack_with_integers(("CMD",), np.array([1, -1], dtype=np.int64))
