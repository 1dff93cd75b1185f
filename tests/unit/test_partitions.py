"""The region → partition table is stable and complete."""

from __future__ import annotations

from phonebank.domain.partitions import PARTITION_ORDER, partition_for_region
from phonebank.domain.regions import REGIONS


def test_every_region_is_in_the_table() -> None:
    # A new region must be appended to PARTITION_ORDER (never inserted) to keep others put.
    assert set(REGIONS) <= set(PARTITION_ORDER)
    assert len(set(PARTITION_ORDER)) == len(PARTITION_ORDER)


def test_each_region_has_its_own_partition_by_default() -> None:
    partitions = {partition_for_region(code, 96) for code in REGIONS}
    assert len(partitions) == len(REGIONS)


def test_partition_is_stable_and_in_range() -> None:
    assert partition_for_region("RU-MOW", 96) == PARTITION_ORDER.index("RU-MOW")
    assert partition_for_region("XX-NEW", 7) == partition_for_region("XX-NEW", 7)
    assert all(0 <= partition_for_region(code, 5) < 5 for code in (*REGIONS, "XX-NEW"))
