"""The reaper against the real redis-server: front of the queue, parking, bounded batches."""

from __future__ import annotations

from typing import cast

import pytest
import redis

from phonebank.domain.clock import MINUTE_MS
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
    states_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


def test_expired_lease_goes_back_to_the_front_and_frees_the_volunteer(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given alice leased the first of three numbers and let the lease run out
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 3))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    after_deadline = leases.clock_offset_ms + settings.lease_ttl_seconds * 1000 + MINUTE_MS
    # When the reaper runs
    result = reaper(settings, redis_client, after_deadline).reap_all()
    # Then the number is at the head of the ready list again, an event says "expired"
    keys = scheme(settings).region("RU-MOW")
    assert result.reaped == 1 and result.reclaim_lag_ms >= MINUTE_MS
    assert states_of(redis_client, keys)["ready"] == [FIRST, FIRST + 1, FIRST + 2]
    events = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_client.xrange(keys.outcomes))
    assert [fields[b"outcome"] for _, fields in events] == [b"expired"]
    # And alice may lease again at once (her open-lease slot was freed)
    leases.clock_offset_ms = after_deadline
    again = leases.acquire("alice")
    assert again is not None and again.number == lease.number
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())


def test_renewed_lease_is_not_reaped(settings: Settings, redis_client: redis.Redis) -> None:
    # Given a lease renewed shortly before its deadline
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    ttl_ms = settings.lease_ttl_seconds * 1000
    leases.clock_offset_ms += ttl_ms - MINUTE_MS
    leases.renew(lease.lease_id, lease.token)
    # When the reaper runs after the first deadline, Then nothing is reaped
    result = reaper(settings, redis_client, leases.clock_offset_ms + 2 * MINUTE_MS).reap_all()
    assert result.reaped == 0
    assert states_of(redis_client, scheme(settings).region("RU-MOW"))["leased"] == [FIRST]


def test_a_number_that_keeps_expiring_is_parked(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a number parked after two expiries
    twice = settings.model_copy(update={"lease_max_expiries": 2})
    fill(twice, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(twice, redis_client, local_instant(12), MOSCOW_ONLY)
    ttl_ms = twice.lease_ttl_seconds * 1000
    parked = []
    # When it is leased and abandoned twice
    for _ in range(2):
        assert leases.acquire("alice") is not None
        leases.clock_offset_ms += ttl_ms + MINUTE_MS
        leases.chooser.invalidate()
        parked.append(reaper(twice, redis_client, leases.clock_offset_ms).reap_all().parked)
    # Then it was requeued once, then parked, and is no longer offered
    assert parked == [0, 1]
    states = states_of(redis_client, scheme(twice).region("RU-MOW"))
    assert states == {"ready": [], "due": [], "leased": [], "parked": [FIRST]}
    assert leases.acquire("alice") is None
    assert_conserved(twice, redis_client, "RU-MOW", leases.now_ms())


def test_reaping_is_bounded_per_pass_and_reports_the_lag_left(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given 30 expired leases
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 30))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    for index in range(30):
        assert leases.acquire(f"volunteer-{index}") is not None
    late = leases.clock_offset_ms + settings.lease_ttl_seconds * 1000 + 5 * MINUTE_MS
    small = reaper(settings, redis_client, late, batch_size=10, max_batches=2)
    # When one pass may reap two batches of ten
    first = small.reap_all()
    # Then it reaps 20 and reports the lag of the ten still waiting; the next pass the rest
    assert first.reaped == 20
    assert first.reclaim_lag_ms >= 5 * MINUTE_MS
    second = small.reap_all()
    assert second.reaped == 10
    assert small.reap_all().reclaim_lag_ms == 0
    assert redis_client.llen(scheme(settings).region("RU-MOW").ready) == 30
