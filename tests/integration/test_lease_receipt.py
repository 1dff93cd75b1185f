"""A complete carrying the lease's receipt is recorded (late) after Redis lost the lease."""

from __future__ import annotations

from typing import cast

import pytest
import redis

from phonebank.domain.lease_types import CompletionStatus, NotLeaseHolderError
from phonebank.domain.records import Outcome
from phonebank.leases import dnc
from phonebank.settings import Settings
from tests.conftest import wipe_namespace
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    fill,
    lease_client,
    local_instant,
    numbers_from,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


def test_an_outcome_on_a_lease_redis_lost_is_recorded_late_from_its_receipt(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice on a call when Redis is lost (every key of the namespace gone), When
    she completes with the lease's receipt, Then the outcome is recorded late with the
    lease's facts, a repeat answers already recorded, and the number is listed."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None and lease.receipt
    wipe_namespace(redis_client, settings.key_prefix)
    with pytest.raises(NotLeaseHolderError):
        leases.complete(lease.lease_id, lease.token, Outcome.DO_NOT_CALL)
    done = leases.complete(lease.lease_id, lease.token, Outcome.DO_NOT_CALL, receipt=lease.receipt)
    assert done.status is CompletionStatus.RECORDED_LATE
    events = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        redis_client.xrange(scheme(settings).region("RU-MOW").outcomes),
    )
    assert len(events) == 1
    fields = events[0][1]
    assert fields[b"number"] == str(FIRST).encode() and fields[b"late"] == b"1"
    assert fields[b"leased_at_ms"] == str(lease.leased_at_ms).encode()
    assert fields[b"event_id"] == f"{lease.lease_id}/complete".encode()
    again = leases.complete(lease.lease_id, lease.token, Outcome.DO_NOT_CALL, receipt=lease.receipt)
    assert again.status is CompletionStatus.ALREADY_RECORDED and again.event_id == done.event_id
    assert dnc.is_listed(redis_client, settings.key_prefix, FIRST)


def test_a_receipt_of_another_lease_or_altered_is_refused(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given two leases, When one is completed with the other's receipt or an altered
    one, Then it is refused as not the holder's and nothing is recorded."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 2))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    mine, theirs = leases.acquire("alice"), leases.acquire("bob")
    assert mine is not None and theirs is not None
    wipe_namespace(redis_client, settings.key_prefix)
    altered = mine.receipt[:-1] + ("0" if mine.receipt[-1] != "0" else "1")
    for receipt in (theirs.receipt, altered):
        with pytest.raises(NotLeaseHolderError):
            leases.complete(mine.lease_id, mine.token, Outcome.CONVERSATION, receipt=receipt)
    with pytest.raises(NotLeaseHolderError):
        leases.complete(theirs.lease_id, mine.token, Outcome.CONVERSATION, receipt=theirs.receipt)
    assert redis_client.xlen(scheme(settings).region("RU-MOW").outcomes) == 0


def test_a_receipt_changes_nothing_while_redis_knows_the_lease(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a live lease, When it is completed with its receipt, Then it is recorded on
    time as without one (the receipt is only for a lease Redis lost)."""
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 1))
    leases = lease_client(settings, redis_client, local_instant(12), MOSCOW_ONLY)
    lease = leases.acquire("alice")
    assert lease is not None
    done = leases.complete(lease.lease_id, lease.token, Outcome.NO_ANSWER, receipt=lease.receipt)
    assert (done.status, done.next_state) == (CompletionStatus.RECORDED, "due")
