"""Follow the sun, balance coverage: how far behind a region is sets its draw weight."""

from __future__ import annotations

import random

import pytest

from phonebank.domain.region_weights import (
    MIN_COVERAGE_WEIGHT,
    coverage_weight,
    cumulative_weights,
    draw_without_replacement,
)


@pytest.mark.parametrize(
    ("enqueued", "attempted", "ingested", "weight"),
    [
        (0, 0, 0, 1.0),  # nothing known yet: as far behind as can be
        (100, 0, 0, 1.0),  # untouched
        (100, 50, 0, 0.5),  # half of what was queued has been called
        (5_000, 500, 100_000, 0.995),  # the backlog in Kafka counts: 0.5 % covered
        (100, 100, 0, MIN_COVERAGE_WEIGHT),  # fully covered keeps a floor: no starvation
    ],
)
def test_weight_is_the_coverage_deficit(
    enqueued: int, attempted: int, ingested: int, weight: float
) -> None:
    assert coverage_weight(enqueued, attempted, ingested) == pytest.approx(weight)


def test_a_region_with_its_backlog_in_kafka_is_further_behind() -> None:
    # Given two regions with the same queue and calls, one with a large backlog in Kafka
    # Then the one with more numbers left is weighted higher
    assert coverage_weight(5_000, 500, 200_000) > coverage_weight(5_000, 500, 5_000)


def test_a_draw_is_distinct_and_follows_the_weights() -> None:
    # Given three regions, one with a tenth of the others' weight
    regions = ["MOW", "SPE", "NVS"]
    table = cumulative_weights([0.1, 1.0, 1.0])
    rng = random.Random(7)
    # When many picks of two are drawn
    picks = [draw_without_replacement(regions, table, 2, rng) for _ in range(4000)]
    # Then every pick is two distinct regions, and the light one comes first rarely
    assert all(len(set(pick)) == 2 for pick in picks)
    first_light = sum(pick[0] == "MOW" for pick in picks) / len(picks)
    assert 0.02 < first_light < 0.09  # 0.1 / 2.1 ≈ 4.8 %


def test_a_draw_asks_for_more_than_there_are() -> None:
    assert sorted(draw_without_replacement(["A", "B"], [1.0, 2.0], 5, random.Random(1))) == [
        "A",
        "B",
    ]
    assert draw_without_replacement([], [], 3, random.Random(1)) == []
