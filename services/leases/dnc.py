"""Do-not-call: add, import and check numbers. Global across campaigns, and final.

**One list, whatever the region.** The list is sharded by number prefix
(``keys.dnc_list_key``: ``P:dnc:{d:916}``), not by region: ``dnc check`` and the lease
client read the same set for a number whether the numbering plan places it in one
region, another (a newer registry), or none. The region's screen (``keys.dnc_key``, in
the region's Cluster slot) is what the scripts can read atomically: ``enqueue`` skips
its numbers and ``acquire`` drops them; ``add_numbers`` writes the plan's region's screen
too, and ``complete`` writes it for a do_not_call answer.

A script cannot read the prefix shard (another Cluster slot, and acquire does not know
the number before it pops it), so the list is enforced by ordering, not atomicity:

1. ``add_numbers`` writes the shard first, then looks the numbers up in the holders of
   every region and ends each live lease holding one (``ban-7.lua``: its holder's next
   renew, release or complete answers ``DO_NOT_CALL``).
2. The lease client checks every lease it is granted against the shard before it shows
   the number (``LeaseClient._listed``); a listed number's lease is ended the same way
   and never shown.

A lease granted before step 1's shard write is found by its holder lookup; one granted
after it is found by step 2. So a listed number is never shown, whatever region holds
it, and a lease shown just before the number was listed ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from phonebank.domain.clock import DAY_MS
from phonebank.domain.regions import REGIONS
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme, dnc_key, dnc_list_key
from phonebank.leases.scripts import ReturnCode, ScriptPipeline, Scripts

#: Region code DncRecord keeps for numbers the numbering plan cannot place.
UNPLACED_REGION = "unplaced"
#: Numbers sent per SADD / HMGET command.
ADD_BATCH = 1000
#: milliseconds a lease hash ended by a listing is kept (``client.LEASE_RETENTION_MS``)
BANNED_LEASE_RETENTION_MS = 7 * DAY_MS
#: campaign whose live leases a listing ends when the caller names none
DEFAULT_CAMPAIGN = "default"

RegionOf = Callable[[int], str | None]
Parse = Callable[[str], int | None]


@dataclass(frozen=True)
class DncImport:
    """What an add did (counts)."""

    added: int
    already_listed: int
    unplaced: int
    #: live leases ended because their number was listed
    leases_ended: int = 0


def _batches(numbers: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(numbers), ADD_BATCH):
        yield numbers[start : start + ADD_BATCH]


def add_numbers(
    client: RedisClient,
    prefix: str,
    numbers: Iterable[int],
    region_of: RegionOf,
    *,
    campaign: str = DEFAULT_CAMPAIGN,
) -> DncImport:
    """Put national numbers on the do-not-call list, end the live leases holding any of
    them (in every region of ``campaign``); returns the counts."""
    offered = list(numbers)
    listed = list(dict.fromkeys(offered))
    by_shard: dict[str, list[int]] = defaultdict(list)
    by_region: dict[str, list[int]] = defaultdict(list)
    unplaced = 0
    for number in listed:
        by_shard[dnc_list_key(prefix, number)].append(number)
        region = region_of(number)
        if region is None:
            unplaced += 1
        else:
            by_region[region].append(number)
    added = 0
    for shard, members in by_shard.items():
        for batch in _batches(members):
            added += int(client.sadd(shard, *batch))
    for region, members in by_region.items():
        for batch in _batches(members):
            client.sadd(dnc_key(prefix, region), *batch)
    ended = end_live_leases(client, KeyScheme(prefix, campaign), listed)
    return DncImport(
        added=added, already_listed=len(offered) - added, unplaced=unplaced, leases_ended=ended
    )


def end_live_leases(client: RedisClient, keys: KeyScheme, numbers: Sequence[int]) -> int:
    """End every live lease, in any region, that holds one of ``numbers`` (listed
    already); the count ended."""
    scripts = Scripts(client)
    regions = sorted(REGIONS)
    ended = 0
    for batch in _batches(numbers):
        lookup = scripts.pipeline(client)
        for region in regions:
            lookup.hmget(keys.region(region).holders, *(str(number) for number in batch))
        bans = scripts.pipeline(client)
        banned = 0
        for region, holders in zip(regions, lookup.execute(), strict=True):
            for number, holder in zip(batch, holders, strict=True):
                if holder is not None:
                    queue_ban(bans, keys, region, number, reply_text(holder))
                    banned += 1
        if banned:
            ended += sum(int(reply[1]) for reply in bans.execute() if reply[0] == ReturnCode.OK)
    return ended


def queue_ban(
    batch: ScriptPipeline,
    keys: KeyScheme,
    region: str,
    number: int,
    lease_id: str,
    *,
    seen: bool = True,
) -> None:
    """Queue ``ban-7`` for the lease ``lease_id`` holding ``number`` in ``region``
    (``seen``: its number may have been shown; else the lease is deleted, as if never
    granted)."""
    batch.script(
        "ban",
        keys.region(region),
        [str(number), lease_id, BANNED_LEASE_RETENTION_MS, int(seen)],
        lease_id=lease_id,
    )


def reindex(client: RedisClient, prefix: str, *, campaign: str = DEFAULT_CAMPAIGN) -> int:
    """Copy every region screen (and the old ``unplaced`` set) into the one list, and end
    the live leases of those numbers: the upgrade of a list kept by region before the
    list was sharded by prefix. Idempotent; the count of numbers newly on the list."""
    added = 0
    for region in [*sorted(REGIONS), UNPLACED_REGION]:
        batch: list[int] = []
        for member in client.sscan_iter(dnc_key(prefix, region), count=ADD_BATCH):
            batch.append(int(member))
            if len(batch) >= ADD_BATCH:
                added += add_numbers(client, prefix, batch, _none, campaign=campaign).added
                batch = []
        if batch:
            added += add_numbers(client, prefix, batch, _none, campaign=campaign).added
    return added


def _none(number: int) -> str | None:
    return None


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


def is_listed(
    client: RedisClient, prefix: str, number: int, region_of: RegionOf | None = None
) -> bool:
    """Whether ``number`` is on the do-not-call list (``region_of`` is not needed: the
    list does not depend on the region; kept for callers that pass it)."""
    return bool(client.sismember(dnc_list_key(prefix, number), str(number)))
