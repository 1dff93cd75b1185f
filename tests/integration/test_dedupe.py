"""The seen bitmaps and a worker's local mirror of them, against the real Redis."""

from __future__ import annotations

import pytest
import redis

from phonebank.assigner.dedupe import BITFIELD_MAX_OFFSETS, SeenMirror
from phonebank.leases.keys import KeyScheme
from phonebank.leases.scripts import Scripts
from phonebank.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: eight numbers whose bits share one byte of the 916 bitmap, and one far away
SAME_BYTE = [9_160_000_008 + i for i in range(8)]
ELSEWHERE = 9_169_999_999


def mirror(settings: Settings, client: redis.Redis) -> SeenMirror:
    return SeenMirror(client, Scripts(client), KeyScheme(settings.key_prefix, settings.campaign))


def test_claim_returns_each_new_number_once(settings: Settings, redis_client: redis.Redis) -> None:
    # Given a fresh mirror and a chunk that repeats a number
    seen = mirror(settings, redis_client)
    chunk = [*SAME_BYTE, SAME_BYTE[0], ELSEWHERE]
    # When it is claimed twice
    first, second = seen.claim(chunk), seen.claim(chunk)
    # Then the first claim has every number once, in order, and the second none
    assert first == [*SAME_BYTE, ELSEWHERE]
    assert second == []


def test_marked_numbers_are_seen_by_a_new_process(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given numbers claimed and marked by one worker (several bits in one byte)
    first = mirror(settings, redis_client)
    numbers = first.claim([*SAME_BYTE, ELSEWHERE])
    assert first.mark_seen(numbers) == [True] * len(numbers)
    # When another worker (a fresh mirror) reads them, Then none is new to it
    assert mirror(settings, redis_client).unseen([*SAME_BYTE, ELSEWHERE]) == []


def test_claimed_but_unmarked_numbers_are_new_to_a_successor(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a worker that claimed numbers and died before marking them in Redis
    mirror(settings, redis_client).claim(SAME_BYTE)
    # Then its successor still sees them as new (the chunk is redelivered, not lost)
    assert mirror(settings, redis_client).unseen(SAME_BYTE) == SAME_BYTE


def test_a_race_with_another_owner_is_reported(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given two mirrors that both think a number is new
    one, other = mirror(settings, redis_client), mirror(settings, redis_client)
    assert one.claim([ELSEWHERE]) == other.claim([ELSEWHERE]) == [ELSEWHERE]
    # When both mark it, Then only the first is new to Redis, and the second counts a race
    assert one.mark_seen([ELSEWHERE]) == [True]
    assert other.mark_seen([ELSEWHERE]) == [False]
    assert (one.races, other.races) == (0, 1)


def test_more_numbers_than_one_bitfield_call_sets(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given more numbers of one prefix than one BITFIELD call sets
    numbers = [9_160_000_000 + 3 * i for i in range(BITFIELD_MAX_OFFSETS + 10)]
    seen = mirror(settings, redis_client)
    # When they are claimed and marked, Then all are new and all are then seen
    assert seen.mark_seen(seen.claim(numbers)) == [True] * len(numbers)
    assert mirror(settings, redis_client).unseen(numbers) == []
