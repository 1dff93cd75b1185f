"""Do-not-call: add, import and check numbers. Global across campaigns, and final.

A number is stored in the do-not-call set of its region (``keys.dnc_key``), the same
Cluster slot as the region's queues, so ``enqueue`` skips it and ``acquire`` drops it
atomically even when it is already queued. A number whose region is unknown goes to
the set of the pseudo-region :data:`UNPLACED_REGION`; ``check`` looks there too.

The caller supplies ``region_of`` (the numbering plan's lookup). If an operator loads a
newer registry that moves a range to another region, the numbers of that range must be
added again (``phonebank dnc import``): do-not-call is also in the outcomes in Kafka.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import dnc_key

#: Region code used for numbers the numbering plan cannot place.
UNPLACED_REGION = "unplaced"
#: Numbers sent per SADD command.
ADD_BATCH = 1000

RegionOf = Callable[[int], str | None]
Parse = Callable[[str], int | None]


@dataclass(frozen=True)
class DncImport:
    """What an add did (counts)."""

    added: int
    already_listed: int
    unplaced: int


def add_numbers(
    client: RedisClient, prefix: str, numbers: Iterable[int], region_of: RegionOf
) -> DncImport:
    """Put national numbers on the do-not-call list; returns the counts."""
    by_region: dict[str, list[int]] = defaultdict(list)
    unplaced = 0
    for number in numbers:
        region = region_of(number)
        if region is None:
            unplaced += 1
            region = UNPLACED_REGION
        by_region[region].append(number)
    added = offered = 0
    for region, listed in by_region.items():
        offered += len(listed)
        for start in range(0, len(listed), ADD_BATCH):
            added += int(client.sadd(dnc_key(prefix, region), *listed[start : start + ADD_BATCH]))
    return DncImport(added=added, already_listed=offered - added, unplaced=unplaced)


def parse_lines(lines: Iterable[str], parse: Parse) -> tuple[list[int], int]:
    """The numbers of ``lines`` (one a line, any format ``parse`` accepts), and how many
    non-empty lines were not a number."""
    unparseable = 0
    numbers: list[int] = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        number = parse(text)
        if number is None:
            unparseable += 1
        else:
            numbers.append(number)
    return numbers, unparseable


def is_listed(client: RedisClient, prefix: str, number: int, region_of: RegionOf) -> bool:
    """Whether ``number`` is on the do-not-call list."""
    region = region_of(number)
    regions = [UNPLACED_REGION] if region is None else [region, UNPLACED_REGION]
    return any(client.sismember(dnc_key(prefix, code), str(number)) for code in regions)
