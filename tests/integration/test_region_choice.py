"""acquire leans toward the open region furthest behind its coverage (real Redis)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import redis

from phonebank.core.leases import LeaseClient
from phonebank.core.records import Outcome
from phonebank.core.settings import Settings
from tests.integration.lease_helpers import (
    FIRST,
    REGION_ZONES,
    fill,
    local_instant,
    numbers_from,
    offset_to,
    scheme,
)

pytestmark = pytest.mark.integration

#: acquires drawn in the test
DRAWS = 200


def test_the_region_behind_on_coverage_gets_most_leases(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given two regions open at noon with equal queues; Moscow has 10,000 numbers ingested
    # and 9,500 attempted, Samara 10,000 ingested and none attempted
    zones = {region: REGION_ZONES[region] for region in ("RU-MOW", "RU-SAM")}
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, DRAWS))
    fill(settings, redis_client, "RU-SAM", numbers_from(FIRST + 10_000, DRAWS))
    keys = scheme(settings)
    redis_client.hset(keys.ingested, mapping={"RU-MOW": 10_000, "RU-SAM": 10_000})
    redis_client.hset(keys.region("RU-MOW").counters, "attempted", 9_500)
    client = LeaseClient(settings, redis_client, zones, rng=random.Random(7),
                         clock_offset_ms=offset_to(local_instant(12)))
    # When volunteers take numbers one after another
    regions: Counter[str] = Counter()
    for draw in range(DRAWS):
        lease = client.acquire(f"volunteer-{draw}")
        assert lease is not None
        regions[lease.region] += 1
        client.complete(lease.lease_id, lease.token, Outcome.REFUSED)
    # Then Samara (weight 1.0) gets the great majority, Moscow (weight 0.05) still some
    assert regions["RU-SAM"] > 0.8 * DRAWS
    assert regions["RU-MOW"] > 0
