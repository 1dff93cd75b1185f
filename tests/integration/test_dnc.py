"""Do-not-call against the real redis-server: final, global, and checked inside the queue."""

from __future__ import annotations

from typing import cast

import pytest
import redis

from phonebank.domain.lease_types import CompletionStatus, NumberDoNotCallError
from phonebank.domain.records import Outcome
from phonebank.leases import dnc
from phonebank.leases.keys import dnc_key
from phonebank.leases.queues import enqueue_chunk
from phonebank.settings import Settings
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    assert_conserved,
    fill,
    lease_client,
    local_instant,
    numbers_from,
    reaper,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


def moscow_or_none(number: int) -> str | None:
    return "RU-MOW" if str(number).startswith("916") else None


def test_do_not_call_outcome_is_final_in_every_campaign(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a callee who asked never to be called again
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    done = leases.complete(lease.lease_id, lease.token, Outcome.DO_NOT_CALL)
    assert (done.status, done.next_state) == (CompletionStatus.RECORDED, "dnc")
    # When the number is queued again, here and in another campaign
    assert fill(settings, redis_client, "RU-MOW", [FIRST, FIRST + 1]) == 1
    other = settings.model_copy(update={"campaign": "spring"})
    assert fill(other, redis_client, "RU-MOW", [FIRST]) == 0
    # Then it is never queued nor leased, and the list says so
    again = leases.acquire("bob")
    assert again is not None and again.national_number == FIRST + 1
    assert leases.acquire("carol") is None
    assert dnc.is_listed(redis_client, settings.key_prefix, FIRST, moscow_or_none)
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_a_number_listed_while_queued_is_never_leased(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given three queued numbers, the first two then put on the list
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 3))
    result = dnc.add_numbers(redis_client, settings.key_prefix, [FIRST, FIRST + 1], moscow_or_none)
    assert (result.added, result.already_listed) == (2, 0)
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    # When volunteers acquire, Then only the third number is ever handed out
    lease = leases.acquire("alice")
    assert lease is not None and lease.national_number == FIRST + 2
    assert leases.acquire("bob") is None
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_import_counts_added_repeated_unplaced_and_unparseable(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a file with a listed number twice, an unplaced one, and junk
    lines = [f"+7{FIRST}", f"8{FIRST}", "+79031234567", "", "not a number"]

    def parse(text: str) -> int | None:
        digits = "".join(ch for ch in text if ch.isdigit())
        return int(digits[-10:]) if len(digits) >= 10 else None

    # When it is read and added
    numbers, unparseable = dnc.parse_lines(lines, parse)
    result = dnc.add_numbers(redis_client, settings.key_prefix, numbers, moscow_or_none)
    # Then each kind is counted, and the unplaced number is still found by check
    assert (result, unparseable) == (dnc.DncImport(added=2, already_listed=1, unplaced=1), 1)
    assert dnc.is_listed(redis_client, settings.key_prefix, 9_031_234_567, moscow_or_none)
    assert not dnc.is_listed(redis_client, settings.key_prefix, FIRST + 5, moscow_or_none)


def test_enqueue_skips_listed_numbers_and_counts_them(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given one listed number among five
    dnc.add_numbers(redis_client, settings.key_prefix, [FIRST + 2], moscow_or_none)
    keys = scheme(settings)
    # When the five are enqueued
    queued = enqueue_chunk(redis_client, keys, "RU-MOW", numbers_from(FIRST, 5))
    # Then four are queued and the region counts one do-not-call
    assert queued == 4
    assert redis_client.hget(keys.region("RU-MOW").counters, "dnc") == b"1"
    ready = redis_client.lrange(keys.region("RU-MOW").ready, 0, -1)
    assert FIRST + 2 not in [int(n) for n in cast(list[bytes], ready)]


def nowhere(number: int) -> str | None:
    """A numbering plan that places no number (e.g. run without a registry)."""
    return None


def somewhere_else(number: int) -> str | None:
    """A newer plan that moved the range to another region than the one it is queued in."""
    return "RU-SAM"


@pytest.mark.parametrize("region_of", [moscow_or_none, nowhere, somewhere_else])
def test_a_listed_number_is_never_leased_whatever_region_the_plan_gives_it(
    settings: Settings, redis_client: redis.Redis, region_of: dnc.RegionOf
) -> None:
    """Given two numbers queued in Moscow, When the first is listed under a plan that
    places it in Moscow, nowhere, or in another region, Then check finds it, no volunteer
    is ever shown it, and the numbers are conserved (it counts as do-not-call)."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 2))
    dnc.add_numbers(redis_client, settings.key_prefix, [FIRST], region_of)
    assert dnc.is_listed(redis_client, settings.key_prefix, FIRST)
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    shown = [leases.acquire(name) for name in ("alice", "bob", "carol")]
    assert [lease.national_number for lease in shown if lease is not None] == [FIRST + 1]
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())
    counters = redis_client.hget(scheme(settings).region("RU-MOW").counters, "dnc")
    assert counters == b"1"


def test_a_live_lease_ends_when_its_number_is_listed(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice holds a number, When an operator lists it (no plan places it), Then
    her renew and her complete answer do-not-call, the complete is still recorded (late),
    and the number is out of play."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    result = dnc.add_numbers(redis_client, settings.key_prefix, [FIRST], nowhere)
    assert result.leases_ended == 1
    with pytest.raises(NumberDoNotCallError):
        leases.renew(lease.lease_id, lease.token)
    with pytest.raises(NumberDoNotCallError):
        leases.release(lease.lease_id, lease.token)
    with pytest.raises(NumberDoNotCallError):
        leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
    keys = scheme(settings).region("RU-MOW")
    events = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_client.xrange(keys.outcomes))
    assert [(f[b"outcome"], f[b"late"]) for _, f in events] == [(b"conversation", b"1")]
    assert leases.acquire("bob") is None
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_a_late_do_not_call_ends_the_next_holders_lease(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice's lease expired and bob now holds the number, When alice's late
    do_not_call answer arrives, Then bob's lease ends: his renew answers do-not-call,
    and check lists the number."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    first = leases.acquire("alice")
    assert first is not None
    leases.clock_offset_ms += settings.lease_ttl_seconds * 1000 + 60_000
    assert reaper(settings, redis_client, leases.clock_offset_ms).reap_all().reaped == 1
    second = leases.acquire("bob")
    assert second is not None and second.national_number == FIRST
    late = leases.complete(first.lease_id, first.token, Outcome.DO_NOT_CALL)
    assert late.status is CompletionStatus.RECORDED_LATE
    with pytest.raises(NumberDoNotCallError):
        leases.renew(second.lease_id, second.token)
    assert dnc.is_listed(redis_client, settings.key_prefix, FIRST)
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_reindex_moves_an_older_per_region_list_into_the_one_list(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given numbers listed by an older version in a region's set and in its 'unplaced'
    set, one of them leased, When the list is reindexed, Then check lists both, the
    lease ends, and a second reindex adds nothing."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    redis_client.sadd(dnc_key(settings.key_prefix, "RU-MOW"), str(FIRST))
    redis_client.sadd(dnc_key(settings.key_prefix, dnc.UNPLACED_REGION), str(FIRST + 7))
    assert dnc.reindex(redis_client, settings.key_prefix) == 2
    assert dnc.is_listed(redis_client, settings.key_prefix, FIRST)
    assert dnc.is_listed(redis_client, settings.key_prefix, FIRST + 7)
    with pytest.raises(NumberDoNotCallError):
        leases.renew(lease.lease_id, lease.token)
    assert dnc.reindex(redis_client, settings.key_prefix) == 0


def test_an_idempotent_acquire_skips_a_listed_number_and_its_retry_gets_the_same_lease(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a listed number (no plan places it) at the head of the queue, When alice
    acquires with an Idempotency-Key and retries with it, Then both answers are the same
    lease, on the next number, and the listed one left no lease behind."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 2))
    dnc.add_numbers(redis_client, settings.key_prefix, [FIRST], nowhere)
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    first = leases.acquire("alice", idempotency_key="k1")
    again = leases.acquire("alice", idempotency_key="k1")
    assert first is not None and again is not None
    assert first.national_number == FIRST + 1
    assert (again.lease_id, again.national_number) == (first.lease_id, FIRST + 1)
    keys = scheme(settings).region("RU-MOW")
    assert redis_client.hget(keys.counters, "leased") == b"1"
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())
