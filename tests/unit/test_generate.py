"""Generate: random-digit dialing inside allocated ranges."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebank.domain.numbering import NumberingPlan
from phonebank.ingest.generate import FeistelPermutation, quotas
from tests.helpers import iter_generated

PLAN = NumberingPlan.default()


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.binary(max_size=8))
def test_feistel_is_a_permutation(size: int, key: bytes) -> None:
    images = FeistelPermutation(size, key)(np.arange(size))
    assert sorted(images.tolist()) == list(range(size))


def test_generated_numbers_are_unique_allocated_and_in_their_region() -> None:
    # Given a draw of 20,000 numbers
    drawn = list(iter_generated(PLAN, 20_000, None, seed=11))
    numbers = [n for _, n in drawn]
    # Then they are distinct and each lies in the region it is reported with
    assert len(set(numbers)) == 20_000
    assert all(PLAN.region_of(n) == region for region, n in drawn[::97])
    assert (PLAN.registry.lookup(np.array(numbers)) >= 0).all()


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    first = list(iter_generated(PLAN, 500, ["RU-TA"], seed=1))
    assert first == list(iter_generated(PLAN, 500, ["RU-TA"], seed=1))
    assert first != list(iter_generated(PLAN, 500, ["RU-TA"], seed=2))


def test_a_region_can_be_drawn_to_exhaustion() -> None:
    # Given a region of 10,000 numbers, When all are drawn, Then each appears once
    drawn = [n for _, n in iter_generated(PLAN, 10_000, ["RU-CHU"], seed=3)]
    assert sorted(drawn) == list(range(9246600000, 9246610000))


def test_capacity_stratification_is_proportional() -> None:
    shares = quotas({"A": 300, "B": 100}, 100, "capacity")
    assert shares == {"A": 75, "B": 25}


def test_equal_stratification_caps_small_regions_and_shares_the_rest() -> None:
    shares = quotas({"A": 1000, "B": 10, "C": 1000}, 300, "equal")
    assert shares == {"A": 145, "B": 10, "C": 145}


def test_more_than_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        list(iter_generated(PLAN, 10_001, ["RU-CHU"], seed=0))


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="no allocated ranges"):
        list(iter_generated(PLAN, 1, ["RU-MOW"], seed=0))


def test_generation_streams_without_drawing_everything_first() -> None:
    # Given a draw of the whole fixture capacity, When only the first numbers are taken,
    # Then they come at once (the generator is lazy)
    total = sum(PLAN.capacity_by_region().values())
    head = list(itertools.islice(iter_generated(PLAN, total, None, seed=5), 10))
    assert len(head) == 10


def test_uniform_within_region() -> None:
    # Given 50,000 draws from a region of 11,100,000 numbers split over two ranges
    drawn = np.array([n for _, n in iter_generated(PLAN, 50_000, ["RU-MOW_MOS"], seed=9)])
    # Then the share drawn from the small range matches its share of capacity (1.1 M of 11.1 M)
    share = np.mean(drawn < 9160000000)
    assert abs(share - 1_100_000 / 11_100_000) < 0.01
