"""Backpressure cannot stall: a paused partition's records arrive once it resumes.

kafka-python 3.0.12 parks the parsed records of a partition paused while they sat in
the fetcher's in-line slot, and gives them back only when that slot is ``None``; a
drained record set of another partition is falsy but not ``None``, so the parked data
is never restored and the partition is never fetched again (see
docs/upstream/kafka-python-paused-fetch.md). These tests drive the shipped worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import ensure_topics, partition_for_region
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings
from tests.integration.assigner_helpers import chunk, produce, running_worker

pytestmark = pytest.mark.integration

#: the region that fills and pauses (partition 0 of 4) and two that keep flowing
FULL_REGION = "RU-MOW"
FLOWING_REGIONS = ["RU-SVE", "RU-SPE", "RU-KDA"]
#: chunks per region: several polls' worth (a poll returns at most 50 records)
CHUNKS_PER_REGION = 300
#: numbers per chunk
CHUNK_NUMBERS = 2
#: numbers volunteers take from each queue per poll: a full queue (20) stays paused
#: through at least one poll, so the fetcher sees the partition paused
VOLUNTEER_TAKES = 10
#: seconds the stalled partition may take to deliver everything once drained
ARRIVAL_SECONDS = 45.0


def region_chunks(region: str, base: int) -> list[NumberChunk]:
    """``CHUNKS_PER_REGION`` chunks of distinct numbers for ``region``."""
    return [
        chunk(region, seq, [base + seq * CHUNK_NUMBERS + i for i in range(CHUNK_NUMBERS)])
        for seq in range(CHUNKS_PER_REGION)
    ]


@pytest.fixture
def tight(settings: Settings) -> Settings:
    """Queues of 20 numbers (resume below 10): the full region pauses after 10 chunks."""
    small = settings.model_copy(update={"queue_high_watermark": 20, "queue_low_watermark": 10})
    ensure_topics(small)
    return small


@pytest.fixture
def worker(tight: Settings, redis_client: redis.Redis) -> Iterator[AssignerWorker]:
    with running_worker(tight, redis_client) as instance:
        yield instance


def test_paused_partitions_deliver_after_resume_while_others_drain(
    tight: Settings, redis_client: redis.Redis, worker: AssignerWorker
) -> None:
    """Given four partitions of 300 chunks each and queues of 20 numbers,
    When each region's partition pauses mid-poll (its queue full) while the other
    partitions keep being drained, and volunteers take 10 numbers of each queue after each poll,
    Then every number of every region is eventually queued: each paused partition resumed
    and was fetched again."""
    regions = [FULL_REGION, *FLOWING_REGIONS]
    assert len({partition_for_region(r, 4) for r in regions}) == 4
    chunks = [
        each
        for index, region in enumerate(regions)
        for each in region_chunks(region, 9160000000 + index * 10_000_000)
    ]
    produce(tight, chunks)
    scheme = KeyScheme(tight.key_prefix, tight.campaign)
    expected = {
        region: {n for c in chunks if c.region == region for n in c.numbers} for region in regions
    }
    taken: dict[str, set[int]] = {region: set() for region in regions}
    pauses = 0
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while taken != expected:
        missing = {r: len(expected[r] - taken[r]) for r in regions}
        assert time.monotonic() < deadline, f"stalled after {pauses} pauses; missing {missing}"
        worker.step()
        pauses += len(worker.paused)
        for region in regions:
            popped = redis_client.lpop(scheme.region(region).ready, VOLUNTEER_TAKES) or []
            taken[region].update(int(n) for n in popped)
    assert pauses > 0
