"""Dedupe across a rebalance: a partition that moves back is deduplicated against Redis.

Two workers stepped by hand. The mirror of a worker must be rebuilt before it handles
the first record of a partition newly assigned to it, even when that record arrives in
the very poll that rebalanced (an overlapping chunk would otherwise be queued twice).
"""

from __future__ import annotations

from collections import Counter

import pytest
import redis
from kafka import TopicPartition

from phonebank.assigner import worker as worker_module
from phonebank.assigner.worker import AssignerWorker
from phonebank.infra.kafka import ensure_topics
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings
from tests.integration.assigner_helpers import chunk, consumed_to_end, produce, ready, step_until

pytestmark = pytest.mark.integration

#: one region per partition of the test topic (4 partitions)
REGION_OF_PARTITION = {0: "RU-MOW", 1: "RU-SVE", 2: "RU-SPE", 3: "RU-KDA"}
#: every number of this test shares one dedupe prefix (916), so one bitmap is mirrored
BASE = 9160000000
#: milliseconds a poll waits: long enough that the poll which notices the rebalance also
#: fetches the moved partition's first records (the case the callback must cover); with
#: the shipped 500 ms they land in the same poll only about half the time
REBALANCE_POLL_TIMEOUT_MS = 5_000


def consumed_to_end_of(worker: AssignerWorker, partition: TopicPartition) -> bool:
    """Whether the worker has read ``partition`` to its end."""
    end = worker.consumer.end_offsets([partition])[partition]
    return bool(worker.consumer.position(partition) >= end)


def owns_half(worker: AssignerWorker) -> bool:
    return len(worker.consumer.assignment()) == 2


def test_a_partition_moving_back_is_deduplicated_against_redis(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given worker A, which mirrors the 916 bitmap, owning half of the partitions, and
    worker B, owning the other half, which queued chunk c1 of one of its regions,
    When an overlapping chunk c2 (c1's numbers plus new ones) is produced and B leaves,
    so the partition moves back to A, which polls c2 in the poll that rebalances,
    Then each number is queued exactly once: A dropped its mirror in the rebalance
    callback and saw c1's numbers as seen in Redis. (Dropping it at the start of the
    next step instead fails this test 3 times out of 3.)"""
    monkeypatch.setattr(worker_module, "POLL_TIMEOUT_MS", REBALANCE_POLL_TIMEOUT_MS)
    ensure_topics(settings)
    first = AssignerWorker(settings, redis_client)
    second: AssignerWorker | None = None
    try:
        produce(
            settings,
            [chunk(region, 0, [BASE + p * 100 + 1]) for p, region in REGION_OF_PARTITION.items()],
        )
        step_until(first, lambda: consumed_to_end(first))
        second = AssignerWorker(settings, redis_client)
        joined = second

        def both_own_half() -> bool:
            joined.step()
            return owns_half(first) and owns_half(joined)

        step_until(first, both_own_half)
        moved = min(second.consumer.assignment(), key=lambda tp: tp.partition)
        region = REGION_OF_PARTITION[moved.partition]
        kept = min(first.consumer.assignment(), key=lambda tp: tp.partition)
        mirrored = BASE + 7000  # A loads the 916 bitmap again, after the first rebalance
        produce(settings, [chunk(REGION_OF_PARTITION[kept.partition], 1, [mirrored])])
        step_until(first, lambda: consumed_to_end_of(first, kept))
        overlap = [BASE + 5000 + i for i in range(5)]
        produce(settings, [chunk(region, 1, overlap)])
        step_until(second, lambda: set(overlap) <= set(ready(redis_client, settings, region)))
        produce(settings, [chunk(region, 2, [*overlap, BASE + 6000], source="overlap")])
        second.consumer.close(autocommit=False)
        second = None
        step_until(first, lambda: consumed_to_end(first))
        counts = Counter(ready(redis_client, settings, region))
        assert counts == Counter([BASE + moved.partition * 100 + 1, *overlap, BASE + 6000])
        scheme = KeyScheme(settings.key_prefix, settings.campaign)
        assert int(redis_client.hget(scheme.queued, region) or 0) == 7
    finally:
        first.consumer.close(autocommit=False)
        if second is not None:
            second.consumer.close(autocommit=False)
