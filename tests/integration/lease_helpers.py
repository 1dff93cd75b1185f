"""Helpers of the lease, reaper and do-not-call tests: a clock set to a chosen instant.

Time in the scripts is Redis TIME plus the client's ``clock_offset_ms``; these helpers
compute the offset that puts the scripts' clock at a given callee-local instant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import cast
from zoneinfo import ZoneInfo

from phonebank.domain import clock
from phonebank.domain.clock import SECOND_MS
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.client import LeaseClient
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.leases.queues import enqueue_chunk, queue_depths
from phonebank.leases.reaper import Reaper
from phonebank.leases.transport import Transport
from phonebank.settings import Settings

MOSCOW = "Europe/Moscow"
SAMARA = "Europe/Samara"
KALININGRAD = "Europe/Kaliningrad"
#: test regions and their zones (real codes, zones given directly)
REGION_ZONES = {
    "RU-MOW": (MOSCOW,),
    "RU-SAM": (SAMARA,),
    "RU-KGD": (KALININGRAD,),
}
#: only Moscow, for tests about one region
MOSCOW_ONLY = {"RU-MOW": (MOSCOW,)}
#: the first national number the lease tests queue
FIRST = 9_161_000_000
#: a Tuesday
TEST_DATE = dt.date(2026, 3, 10)


def local_instant(
    hour: int, minute: int = 0, second: int = 0, zone: str = MOSCOW, day: dt.date = TEST_DATE
) -> dt.datetime:
    """An aware datetime at a local wall-clock time."""
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=ZoneInfo(zone))


def offset_to(instant: dt.datetime) -> int:
    """The clock offset (ms) that puts the scripts' clock at ``instant`` now."""
    return int(instant.timestamp() * SECOND_MS) - clock.now_ms()


def lease_client(
    settings: Settings,
    client: RedisClient,
    at: dt.datetime,
    region_zones: Mapping[str, Sequence[str]] | None = None,
    transport: Transport | None = None,
) -> LeaseClient:
    """A lease client whose clock reads ``at`` now (on ``transport``: the gateway's)."""
    return LeaseClient(
        settings,
        client,
        region_zones or REGION_ZONES,
        clock_offset_ms=offset_to(at),
        transport=transport,
    )


def reaper(settings: Settings, client: RedisClient, offset_ms: int, **options: int) -> Reaper:
    """A reaper whose clock is ``offset_ms`` ahead of Redis TIME."""
    return Reaper(settings, client, clock_offset_ms=offset_ms, **options)


def scheme(settings: Settings) -> KeyScheme:
    """The test's key scheme."""
    return KeyScheme(settings.key_prefix, settings.campaign)


def fill(settings: Settings, client: RedisClient, region: str, numbers: Sequence[int]) -> int:
    """Queue numbers in a region."""
    return enqueue_chunk(client, scheme(settings), region, list(numbers))


def numbers_from(first: int, count: int) -> list[int]:
    """``count`` consecutive national numbers from ``first``."""
    return list(range(first, first + count))


def states_of(client: RedisClient, keys: RegionKeys) -> dict[str, list[int]]:
    """Every in-play number by where it sits: ready (in list order), due, leased, parked."""
    found = {
        "ready": client.lrange(keys.ready, 0, -1),
        "due": client.zrange(keys.due, 0, -1),
        "leased": client.hkeys(keys.holders),
        "parked": client.smembers(keys.parked),
    }
    return {
        state: [int(n) for n in cast(Iterable[bytes], numbers)] for state, numbers in found.items()
    }


def assert_conserved(settings: Settings, client: RedisClient, region: str, now_ms: int) -> None:
    """Every number offered is in exactly one state, and the counts add up."""
    keys = scheme(settings).region(region)
    states = states_of(client, keys)
    in_play = [number for numbers in states.values() for number in numbers]
    assert len(in_play) == len(set(in_play)), f"a number is in two places: {states}"
    depths = queue_depths(client, scheme(settings), [region], now_ms)[region]
    assert depths.leased == len(states["leased"])
    assert depths.accounted == depths.counter("enqueued"), depths
