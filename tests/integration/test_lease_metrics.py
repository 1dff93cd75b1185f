"""The lease client's latency histogram and grant counter, against the real Redis."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry

from phonebank.domain.lease_types import NotLeaseHolderError, OutsideCallingHoursError
from phonebank.domain.records import Outcome
from phonebank.leases.metrics import LeaseMetrics
from phonebank.settings import Settings
from tests.integration.lease_helpers import fill, lease_client, local_instant

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

SERIES = "phonebank_lease_operation_seconds_count"


def test_each_operation_is_timed_with_its_result(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a lease client with metrics at 12:00 Moscow time and one queued number
    registry = CollectorRegistry()
    client = lease_client(settings, redis_client, local_instant(12))
    client.metrics = LeaseMetrics(registry)
    fill(settings, redis_client, "RU-MOW", [9161234567])

    def count(operation: str, result: str) -> float | None:
        return registry.get_sample_value(SERIES, {"operation": operation, "result": result})

    # When a volunteer acquires, renews with a wrong token, completes; another finds nothing
    lease = client.acquire("alice")
    assert lease is not None
    with pytest.raises(NotLeaseHolderError):
        client.renew(lease.lease_id, "forged")
    client.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
    assert client.acquire("bob") is None
    # Then each call is observed once under its result, and the grant counted by region
    assert count("acquire", "ok") == 1
    assert count("renew", "not_holder") == 1
    assert count("complete", "ok") == 1
    assert count("acquire", "empty") == 1
    assert registry.get_sample_value("phonebank_leases_granted_total", {"region": "RU-MOW"}) == 1


def test_a_closed_region_is_counted_as_closed(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a client at 03:00 Moscow time (every test region closed)
    registry = CollectorRegistry()
    client = lease_client(settings, redis_client, local_instant(3))
    client.metrics = LeaseMetrics(registry)
    # When a volunteer asks for a number, Then it is refused and counted as closed
    with pytest.raises(OutsideCallingHoursError):
        client.acquire("alice")
    assert registry.get_sample_value(SERIES, {"operation": "acquire", "result": "closed"}) == 1
