"""The lease protocol against the real redis-server: answers, windows, limits, retries."""

from __future__ import annotations

import datetime as dt
from typing import cast

import pytest
import redis

from phonebank.domain.calling_hours import to_ms
from phonebank.domain.clock import HOUR_MS, MINUTE_MS
from phonebank.domain.lease_types import (
    AlreadyCompletedError,
    CompletionStatus,
    LeaseExpiredError,
    NotLeaseHolderError,
    OutsideCallingHoursError,
    Preferences,
    VolunteerLimitReachedError,
)
from phonebank.domain.records import Outcome
from phonebank.leases.scripts import ReturnCode, Scripts, render_all
from phonebank.settings import Settings
from tests.integration.lease_helpers import (
    FIRST,
    assert_conserved,
    fill,
    lease_client,
    local_instant,
    numbers_from,
    offset_to,
    reaper,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


def stream_events(client: redis.Redis, settings: Settings, region: str) -> list[dict[str, str]]:
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        client.xrange(scheme(settings).region(region).outcomes),
    )
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def test_acquire_hands_out_the_head_of_the_queue_with_everything_a_caller_needs(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given three numbers queued in Moscow at 12:00 Moscow time
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 3))
    leases = lease_client(settings, redis_client, local_instant(12))
    # When a volunteer acquires
    lease = leases.acquire("alice")
    # Then they get the first number, with region, zone, local time, guideline and deadline
    assert lease is not None
    assert lease.number == f"+7{FIRST}"
    assert lease.lease_id.startswith("RU-MOW.")
    assert (lease.region, lease.zone, lease.attempt) == ("RU-MOW", "Europe/Moscow", 1)
    assert lease.callee_local_time.hour == 12
    assert lease.guideline == "calm-conversation@1"
    assert lease.deadline_ms - lease.leased_at_ms == settings.lease_ttl_seconds * 1000
    assert str(FIRST) not in repr(lease)


def test_wrong_token_is_not_the_holder_for_every_operation(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a live lease
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12))
    lease = leases.acquire("alice")
    assert lease is not None
    # When someone else uses its id with another token, Then each operation refuses
    with pytest.raises(NotLeaseHolderError):
        leases.renew(lease.lease_id, "not-the-token")
    with pytest.raises(NotLeaseHolderError):
        leases.release(lease.lease_id, "not-the-token")
    with pytest.raises(NotLeaseHolderError):
        leases.complete(lease.lease_id, "not-the-token", Outcome.CONVERSATION)
    with pytest.raises(NotLeaseHolderError):
        leases.complete("RU-MOW.0000", lease.token, Outcome.CONVERSATION)
    # And the lease is untouched
    assert (
        leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION).status
        == CompletionStatus.RECORDED
    )


def test_repeated_complete_is_idempotent(settings: Settings, redis_client: redis.Redis) -> None:
    # Given a completed lease
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 2))
    leases = lease_client(settings, redis_client, local_instant(12))
    lease = leases.acquire("alice")
    assert lease is not None
    first = leases.complete(lease.lease_id, lease.token, Outcome.NO_ANSWER)
    # When the same answer (or another) is sent again with the same token
    again = leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
    # Then it is acknowledged as already recorded, with the first event id, and one event
    assert again.status == CompletionStatus.ALREADY_RECORDED
    assert (again.event_id, again.next_state) == (first.event_id, "due")
    events = stream_events(redis_client, settings, "RU-MOW")
    assert [e["outcome"] for e in events] == ["no_answer"]
    # And renew / release now answer "already completed"
    with pytest.raises(AlreadyCompletedError):
        leases.renew(lease.lease_id, lease.token)
    with pytest.raises(AlreadyCompletedError):
        leases.release(lease.lease_id, lease.token)
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_expired_lease_cannot_be_renewed_but_a_late_outcome_is_recorded(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a lease whose deadline has passed (the reaper has not run yet)
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12))
    lease = leases.acquire("alice")
    assert lease is not None
    leases.clock_offset_ms += settings.lease_ttl_seconds * 1000
    # When the volunteer renews or releases, Then the lease has expired
    with pytest.raises(LeaseExpiredError):
        leases.renew(lease.lease_id, lease.token)
    with pytest.raises(LeaseExpiredError):
        leases.release(lease.lease_id, lease.token)
    # When they complete anyway, Then the outcome is recorded, flagged late
    done = leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
    assert (done.status, done.next_state) == (CompletionStatus.RECORDED_LATE, "done")
    assert stream_events(redis_client, settings, "RU-MOW")[-1]["late"] == "1"
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_late_outcome_does_not_disturb_the_new_lease_of_the_same_number(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given alice's lease expired and was reaped, and bob now holds the same number
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12))
    old = leases.acquire("alice")
    assert old is not None
    leases.clock_offset_ms += settings.lease_ttl_seconds * 1000 + 1
    assert reaper(settings, redis_client, leases.clock_offset_ms).reap_all().reaped == 1
    new = leases.acquire("bob")
    assert new is not None and new.number == old.number
    # When alice's late "conversation" arrives
    late = leases.complete(old.lease_id, old.token, Outcome.CONVERSATION)
    # Then it is recorded as an event, leaves the number with bob, who can still finish
    assert (late.status, late.next_state) == (CompletionStatus.RECORDED_LATE, "unchanged")
    assert leases.renew(new.lease_id, new.token) > new.leased_at_ms
    finished = leases.complete(new.lease_id, new.token, Outcome.REFUSED)
    assert finished.status == CompletionStatus.RECORDED
    outcomes = [(e["outcome"], e["late"]) for e in stream_events(redis_client, settings, "RU-MOW")]
    assert outcomes == [("expired", "0"), ("conversation", "1"), ("refused", "0")]
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_release_puts_the_number_back_at_the_front_without_counting_an_attempt(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a lease on the first of two numbers
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 2))
    leases = lease_client(settings, redis_client, local_instant(12))
    lease = leases.acquire("alice")
    assert lease is not None
    # When it is released
    leases.release(lease.lease_id, lease.token)
    # Then the next acquire gets the same number, still at attempt 1, and no event exists
    again = leases.acquire("bob")
    assert again is not None
    assert (again.number, again.attempt) == (lease.number, 1)
    assert stream_events(redis_client, settings, "RU-MOW") == []
    with pytest.raises(NotLeaseHolderError):
        leases.renew(lease.lease_id, lease.token)


def test_unanswered_call_is_retried_inside_the_next_calling_window(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a number called at 20:00 Moscow time, not answered
    moscow_only = {"RU-MOW": ("Europe/Moscow",)}
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(20), moscow_only)
    lease = leases.acquire("alice")
    assert lease is not None
    result = leases.complete(lease.lease_id, lease.token, Outcome.NO_ANSWER)
    # Then it is due at 09:00 the next day (20:00 + 4 h falls at night), not before
    assert result.next_state == "due"
    due = redis_client.zscore(scheme(settings).region("RU-MOW").due, str(FIRST))
    next_morning = local_instant(9, day=dt.date(2026, 3, 11))
    assert due == to_ms(next_morning)
    # And at 08:59 the next morning nothing can be leased; at 09:00 it comes back, attempt 2
    before = next_morning - dt.timedelta(minutes=1)
    with pytest.raises(OutsideCallingHoursError):
        lease_client(settings, redis_client, before, moscow_only).acquire("alice")
    retry = lease_client(settings, redis_client, next_morning, moscow_only).acquire("alice")
    assert retry is not None and (retry.number, retry.attempt) == (lease.number, 2)


def test_three_unanswered_attempts_finish_the_number(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given one number, answered by nobody three times, each retry when due
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(10))
    states = []
    for attempt in (1, 2, 3):
        if attempt > 1:
            leases.clock_offset_ms += 28 * HOUR_MS
            leases.chooser.invalidate()
        lease = leases.acquire("alice")
        assert lease is not None and lease.attempt == attempt
        states.append(leases.complete(lease.lease_id, lease.token, Outcome.BUSY).next_state)
    # Then it was retried twice, then done
    assert states == ["due", "due", "done"]
    assert leases.acquire("alice") is None


def test_callback_is_moved_into_the_calling_window(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a callee who asks to be called back at 23:00 their time
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12))
    lease = leases.acquire("alice")
    assert lease is not None
    asked = local_instant(23)
    result = leases.complete(lease.lease_id, lease.token, Outcome.CALLBACK, callback_at=asked)
    # Then the number is due at 09:00 the next morning
    due = redis_client.zscore(scheme(settings).region("RU-MOW").due, str(FIRST))
    assert result.next_state == "due"
    assert due == to_ms(local_instant(9, day=dt.date(2026, 3, 11)))


@pytest.mark.parametrize(("hour", "minute", "second"), [(8, 59, 59), (21, 0, 0)])
def test_no_lease_at_the_edges_of_the_window(
    settings: Settings, redis_client: redis.Redis, hour: int, minute: int, second: int
) -> None:
    # Given numbers in Moscow, and the callee's clock at an edge of the window
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 3))
    leases = lease_client(
        settings, redis_client, local_instant(hour, minute, second), {"RU-MOW": ("Europe/Moscow",)}
    )
    # When a volunteer acquires, Then they are told it is outside calling hours
    with pytest.raises(OutsideCallingHoursError) as refused:
        leases.acquire("alice")
    expected_day = dt.date(2026, 3, 10) if hour < 12 else dt.date(2026, 3, 11)
    assert refused.value.next_opening_ms == to_ms(local_instant(9, day=expected_day))


def test_the_script_itself_refuses_a_window_that_redis_time_is_not_in(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a number queued, and a client that passes a window starting one second ahead
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    keys = scheme(settings).region("RU-MOW")
    at = local_instant(8, 59, 59)
    start, end = to_ms(local_instant(9)), to_ms(local_instant(21))
    lease_id = "RU-MOW.0123456789abcdef0123456789abcdef"
    reply = Scripts(redis_client).run(
        "acquire",
        keys,
        [
            lease_id,
            "a" * 32 + "." + "b" * 32,
            "a" * 32,
            60_000,
            start,
            end,
            "g@1",
            "default",
            "RU-MOW",
            offset_to(at),
        ],
        lease_id=lease_id,
    )
    # Then, by Redis time, the script answers CLOSED and the number stays queued
    assert reply[0] == ReturnCode.CLOSED
    assert redis_client.llen(keys.ready) == 1


def test_across_a_zone_boundary_only_the_open_region_is_called(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given numbers in Moscow (UTC+3) and Kaliningrad (UTC+2), at 09:30 Moscow = 08:30 there
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 10))
    fill(settings, redis_client, "RU-KGD", numbers_from(9_062_000_000, 10))
    leases = lease_client(settings, redis_client, local_instant(9, 30))
    # When ten volunteers acquire
    got = [leases.acquire(f"volunteer-{i}") for i in range(10)]
    # Then every lease is in Moscow; Kaliningrad is untouched
    assert {lease.region for lease in got if lease} == {"RU-MOW"}
    assert redis_client.llen(scheme(settings).region("RU-KGD").ready) == 10
    # And an hour later Kaliningrad opens
    later = lease_client(
        settings, redis_client, local_instant(10, 0, 1), {"RU-KGD": ("Europe/Kaliningrad",)}
    )
    lease = later.acquire("volunteer-x")
    assert lease is not None and lease.region == "RU-KGD"


def test_preferences_narrow_the_regions(settings: Settings, redis_client: redis.Redis) -> None:
    # Given numbers in Moscow and Samara, both open
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 5))
    fill(settings, redis_client, "RU-SAM", numbers_from(9_270_000_000, 5))
    leases = lease_client(settings, redis_client, local_instant(12))
    # When a volunteer who wants Samara only acquires, Then they get Samara numbers
    only_samara = Preferences(regions=frozenset({"RU-SAM"}), languages=("en", "ru"))
    lease = leases.acquire("alice", only_samara)
    assert lease is not None and lease.region == "RU-SAM"
    assert lease.guideline_language == "en"


def test_concurrent_lease_cap(settings: Settings, redis_client: redis.Redis) -> None:
    # Given a volunteer holding one lease (the default cap is one)
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 5))
    leases = lease_client(settings, redis_client, local_instant(12))
    lease = leases.acquire("alice")
    assert lease is not None
    # When they ask for a second, Then the limit answers, naming when to come back
    with pytest.raises(VolunteerLimitReachedError) as refused:
        leases.acquire("alice")
    assert 0 < refused.value.retry_after_ms <= settings.lease_ttl_seconds * 1000
    # And the number the region granted meanwhile went back, so only one is leased
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())
    assert redis_client.zcard(scheme(settings).region("RU-MOW").leases) == 1
    # And a complete with a forged token frees no slot
    forged = lease.token[:-1] + ("1" if lease.token.endswith("0") else "0")
    with pytest.raises(NotLeaseHolderError):
        leases.complete(lease.lease_id, forged, Outcome.REFUSED)
    with pytest.raises(VolunteerLimitReachedError):
        leases.acquire("alice")
    # And after completing, they may take the next
    leases.complete(lease.lease_id, lease.token, Outcome.REFUSED)
    assert leases.acquire("alice") is not None


def test_hourly_cap_over_a_rolling_hour(settings: Settings, redis_client: redis.Redis) -> None:
    # Given a cap of three leases per hour
    capped = settings.model_copy(update={"volunteer_max_per_hour": 3})
    fill(capped, redis_client, "RU-MOW", numbers_from(FIRST, 10))
    leases = lease_client(capped, redis_client, local_instant(12))
    for _ in range(3):
        lease = leases.acquire("alice")
        assert lease is not None
        leases.release(lease.lease_id, lease.token)
    # When a fourth is asked for in the same hour, Then it is refused
    with pytest.raises(VolunteerLimitReachedError):
        leases.acquire("alice")
    # And another volunteer is not affected; an hour later alice may lease again
    assert leases.acquire("bob") is not None
    leases.clock_offset_ms += HOUR_MS + MINUTE_MS
    assert leases.acquire("alice") is not None


def test_a_reservation_that_led_to_no_lease_is_given_back(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a queue holding only numbers that became do-not-call after queueing
    capped = settings.model_copy(update={"volunteer_max_per_hour": 1})
    keys = scheme(capped).region("RU-MOW")
    fill(capped, redis_client, "RU-MOW", numbers_from(FIRST, 2))
    redis_client.sadd(keys.dnc, *numbers_from(FIRST, 2))
    leases = lease_client(capped, redis_client, local_instant(12))
    # When a volunteer acquires, Then nothing is leased, and the hour's quota is intact
    assert leases.acquire("alice") is None
    fill(capped, redis_client, "RU-MOW", [9_161_999_999])
    leases.chooser.invalidate()
    assert leases.acquire("alice") is not None
    assert_conserved(capped, redis_client, "RU-MOW", leases.now_ms())


def test_every_rendered_script_loads_on_redis(redis_client: redis.Redis) -> None:
    # Given every script rendered with its includes, When Redis compiles each
    for operation, source in render_all().items():
        sha = redis_client.script_load(source.text)
        # Then it is known by the SHA the client calls it by
        assert sha == Scripts(redis_client).sha(operation)
