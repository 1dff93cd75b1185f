"""acquire leans toward the open region furthest behind its coverage (real Redis)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import redis

from phonebank.domain.records import Outcome
from phonebank.leases.client import LeaseClient
from phonebank.settings import Settings
from tests.integration.lease_helpers import (
    FIRST,
    REGION_ZONES,
    fill,
    local_instant,
    numbers_from,
    offset_to,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

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
    client = LeaseClient(
        settings,
        redis_client,
        zones,
        rng=random.Random(7),
        clock_offset_ms=offset_to(local_instant(12)),
    )
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


def test_pick_draws_distinct_regions_in_proportion_to_their_deficit(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given three open regions with numbers: Moscow 90 % covered, Samara and Kaliningrad
    # untouched (weights 0.1, 1.0, 1.0)
    zones = {region: REGION_ZONES[region] for region in ("RU-MOW", "RU-SAM", "RU-KGD")}
    for offset, region in enumerate(zones):
        fill(settings, redis_client, region, numbers_from(FIRST + offset * 1_000, 10))
    keys = scheme(settings)
    redis_client.hset(keys.ingested, mapping=dict.fromkeys(zones, 1_000))
    redis_client.hset(keys.region("RU-MOW").counters, "attempted", 900)
    client = LeaseClient(
        settings,
        redis_client,
        zones,
        rng=random.Random(11),
        clock_offset_ms=offset_to(local_instant(12)),
    )
    open_now = client.calendar.open_now(client.now_ms())
    # When the chooser picks two regions many times
    firsts: Counter[str] = Counter()
    for _ in range(2_000):
        picked = client.chooser.pick(open_now, client.now_ms(), 2)
        # Then each pick is two distinct regions
        assert len(set(picked)) == 2
        firsts[picked[0]] += 1
    # And the first region is drawn in proportion to weight: Moscow 0.1 / 2.1 ≈ 5 %
    assert 0.02 < firsts["RU-MOW"] / 2_000 < 0.09
    assert abs(firsts["RU-SAM"] - firsts["RU-KGD"]) < 0.1 * 2_000


def test_a_drained_region_is_not_picked_until_the_next_snapshot(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given two open regions with numbers and a chooser that has read their queues
    zones = {region: REGION_ZONES[region] for region in ("RU-MOW", "RU-SAM")}
    fill(settings, redis_client, "RU-MOW", numbers_from(FIRST, 10))
    fill(settings, redis_client, "RU-SAM", numbers_from(FIRST + 1_000, 10))
    client = LeaseClient(
        settings,
        redis_client,
        zones,
        rng=random.Random(3),
        clock_offset_ms=offset_to(local_instant(12)),
    )
    open_now = client.calendar.open_now(client.now_ms())
    assert sorted(client.chooser.pick(open_now, client.now_ms(), 4)) == ["RU-MOW", "RU-SAM"]
    # When an acquire finds Samara empty
    client.chooser.mark_drained("RU-SAM")
    # Then only Moscow is picked, until the queues are read again
    assert all(client.chooser.pick(open_now, client.now_ms(), 4) == ["RU-MOW"] for _ in range(50))
    client.chooser.invalidate()
    assert sorted(client.chooser.pick(open_now, client.now_ms(), 4)) == ["RU-MOW", "RU-SAM"]
