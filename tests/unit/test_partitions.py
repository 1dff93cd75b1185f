"""The region → partition table is stable and complete."""

from __future__ import annotations

import hashlib

from phonebank.domain.partitions import PARTITION_ORDER, partition_for_region
from phonebank.domain.regions import REGIONS
from phonebank.settings import Settings

#: regions in the pinned table
PINNED_REGIONS = 95
#: sha256 of the pinned table's lines ``CODE PARTITION`` at the default partition count
PINNED_SHA256 = "8d10df4a37d637d5d6de7e2312d27836cdb9a4ddfa2b5652ddada82be1a500c6"
#: how to change the pin, said by the test when it fails
HOW_TO_UPDATE = (
    "the region -> partition table changed. Records already in phonebank.numbers stay on "
    "their partition, so an existing region must never move: only APPEND new codes to "
    "PARTITION_ORDER. After a deliberate append, set PINNED_REGIONS and PINNED_SHA256 in "
    "tests/unit/test_partitions.py to the values printed here, in the same commit."
)


def table_lines(partitions: int) -> str:
    """The table as text: one ``CODE PARTITION`` line per region, in table order."""
    return "\n".join(f"{code} {partition_for_region(code, partitions)}" for code in PARTITION_ORDER)


def test_the_table_is_pinned() -> None:
    """Given the region -> partition table at the default partition count,
    When its regions are counted and its lines hashed,
    Then both are the pinned values (a reorder, removal or insertion moves regions)."""
    default = Settings.model_fields["numbers_partitions"].default
    digest = hashlib.sha256(table_lines(default).encode()).hexdigest()
    found = f"count {len(PARTITION_ORDER)}, sha256 {digest}"
    assert (len(PARTITION_ORDER), digest) == (PINNED_REGIONS, PINNED_SHA256), (
        f"{HOW_TO_UPDATE} Now: {found}"
    )


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
