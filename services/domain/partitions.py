"""The stable region → partition table of the ``phonebank.numbers`` topic.

A region's partition is its position in :data:`PARTITION_ORDER`, modulo the partition
count. The table only ever grows at its end (a test fails when ``REGIONS`` has a code
that is missing here), so a region keeps its partition across releases. With at least
as many partitions as regions (the default) every region has a partition of its own,
and pausing one full region's partition blocks no other region.
"""

from __future__ import annotations

import zlib

#: Region codes in partition order. Append new codes at the end; never reorder.
PARTITION_ORDER: tuple[str, ...] = (
    "RU-AD",
    "RU-AL",
    "RU-ALL",
    "RU-ALT",
    "RU-AMU",
    "RU-ARK",
    "RU-ARK_NEN",
    "RU-AST",
    "RU-BA",
    "RU-BEL",
    "RU-BRY",
    "RU-BU",
    "RU-CE",
    "RU-CHE",
    "RU-CHU",
    "RU-CU",
    "RU-DA",
    "RU-IN",
    "RU-IRK",
    "RU-IVA",
    "RU-KAM",
    "RU-KB",
    "RU-KC",
    "RU-KDA",
    "RU-KEM",
    "RU-KGD",
    "RU-KGN",
    "RU-KHA",
    "RU-KHM",
    "RU-KIR",
    "RU-KK",
    "RU-KL",
    "RU-KLU",
    "RU-KO",
    "RU-KOS",
    "RU-KR",
    "RU-KRS",
    "RU-KYA",
    "RU-LEN",
    "RU-LIP",
    "RU-MAG",
    "RU-ME",
    "RU-MO",
    "RU-MOS",
    "RU-MOW",
    "RU-MOW_MOS",
    "RU-MUR",
    "RU-NEN",
    "RU-NGR",
    "RU-NIZ",
    "RU-NVS",
    "RU-OMS",
    "RU-ORE",
    "RU-ORL",
    "RU-PER",
    "RU-PNZ",
    "RU-PRI",
    "RU-PSK",
    "RU-ROS",
    "RU-RYA",
    "RU-SA",
    "RU-SAK",
    "RU-SAM",
    "RU-SAR",
    "RU-SE",
    "RU-SMO",
    "RU-SPE",
    "RU-SPE_LEN",
    "RU-STA",
    "RU-SVE",
    "RU-TA",
    "RU-TAM",
    "RU-TOM",
    "RU-TUL",
    "RU-TVE",
    "RU-TY",
    "RU-TYU",
    "RU-UD",
    "RU-ULY",
    "RU-UNK",
    "RU-VGG",
    "RU-VLA",
    "RU-VLG",
    "RU-VOR",
    "RU-YAN",
    "RU-YAR",
    "RU-YEV",
    "RU-ZAB",
    "UA-09",
    "UA-14",
    "UA-23",
    "UA-40",
    "UA-43",
    "UA-43_40",
    "UA-65",
)

_INDEX = {code: index for index, code in enumerate(PARTITION_ORDER)}


def partition_for_region(region: str, partitions: int) -> int:
    """The stable partition of a region (CRC-32 of the code for one not in the table)."""
    index = _INDEX.get(region)
    if index is None:
        index = zlib.crc32(region.encode())
    return index % partitions


def partition_table(regions: list[str] | tuple[str, ...], partitions: int) -> dict[str, int]:
    """``region → partition`` for the given regions, for docs and dashboards."""
    return {region: partition_for_region(region, partitions) for region in sorted(regions)}
