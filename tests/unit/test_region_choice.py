"""Follow the sun, balance coverage: how far behind a region is sets its draw weight."""

from __future__ import annotations

import pytest

from phonebank.leases.region_choice import MIN_COVERAGE_WEIGHT, coverage_weight


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
