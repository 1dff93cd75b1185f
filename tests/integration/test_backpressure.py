"""Backpressure cannot stall: a paused partition's records arrive once it resumes.

kafka-python 3.0.12 parks the parsed records of a partition paused while they sat in
the fetcher's in-line slot, and gives them back only when that slot is ``None``; a
drained record set of another partition is falsy but not ``None``, so the parked data
is never restored and the partition is never fetched again (see
docs/upstream/kafka-python-fetcher-stall.md). These tests drive the shipped worker; the
first fails (stalls) when the worker pauses a partition as soon as its region is full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from phonebank.assigner import backpressure
from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import ensure_topics, partition_for_region
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import enqueue_chunk
from phonebank.settings import Settings
from tests.integration.assigner_helpers import chunk, produce, running_worker, step_until

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


#: soak: queues of 4 numbers (resume below 2), chunks of 2 numbers: about one pause/resume
#: cycle per two chunks
SOAK_HIGH_WATERMARK = 4
SOAK_LOW_WATERMARK = 2
#: soak: chunks per region (1,000 numbers), for some 250 cycles per region
SOAK_CHUNKS_PER_REGION = 500
#: soak: pause/resume cycles each region must have gone through at least
SOAK_MIN_CYCLES = 100
#: soak: seconds between two looks at a held region (shortened from the shipped 0.5 s so
#: hundreds of cycles fit in a minute; the growth and cap logic is unchanged)
SOAK_RESUME_CHECK_SECONDS = 0.02
#: soak: seconds the drainer waits after taking one number of each region (a volunteer's
#: pace: slower than the worker fills, so every queue keeps filling up)
SOAK_DRAIN_PACE_SECONDS = 0.005
#: soak: seconds everything may take
SOAK_SECONDS = 240.0


class Drainer(threading.Thread):
    """Takes one number of each region's ready list at a time, like volunteers, until every
    expected number was taken (then sets :attr:`done`) or :attr:`stop` is set."""

    def __init__(
        self, client: RedisClient, scheme: KeyScheme, expected: dict[str, set[int]]
    ) -> None:
        super().__init__(name="drainer", daemon=True)
        self.redis = client
        self.ready = {region: scheme.region(region).ready for region in expected}
        self.expected = expected
        self.taken: dict[str, set[int]] = {region: set() for region in expected}
        #: numbers popped in all (a number queued twice would be popped twice)
        self.popped = 0
        self.done = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pipe = self.redis.pipeline(transaction=False)
            for key in self.ready.values():
                pipe.lpop(key)
            for region, number in zip(self.ready, pipe.execute(), strict=True):
                if number is not None:
                    self.taken[region].add(int(number))
                    self.popped += 1
            if self.taken == self.expected:
                self.done.set()
                return
            self.stop.wait(SOAK_DRAIN_PACE_SECONDS)


@pytest.mark.slow
def test_soak_hundreds_of_pause_resume_cycles_lose_nothing(
    settings: Settings, redis_client: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given four regions (one per partition) of 1,000 numbers each and queues of 4 numbers,
    When the shipped worker loop runs while a drainer takes numbers one by one,
    Then every region goes through at least 100 pause/resume cycles, and every ingested
    number is eventually queued (and taken) exactly once."""
    monkeypatch.setattr(backpressure, "RESUME_CHECK_MIN_SECONDS", SOAK_RESUME_CHECK_SECONDS)
    tiny = settings.model_copy(
        update={
            "queue_high_watermark": SOAK_HIGH_WATERMARK,
            "queue_low_watermark": SOAK_LOW_WATERMARK,
        }
    )
    ensure_topics(tiny)
    regions = [FULL_REGION, *FLOWING_REGIONS]
    chunks = [
        chunk(region, seq, [base + seq * CHUNK_NUMBERS + i for i in range(CHUNK_NUMBERS)])
        for index, region in enumerate(regions)
        for base in [9160000000 + index * 10_000_000]
        for seq in range(SOAK_CHUNKS_PER_REGION)
    ]
    produce(tiny, chunks)
    expected = {
        region: {n for c in chunks if c.region == region for n in c.numbers} for region in regions
    }
    drainer = Drainer(redis_client, KeyScheme(tiny.key_prefix, tiny.campaign), expected)
    worker = AssignerWorker(tiny, redis_client)
    loop = threading.Thread(target=worker.run, name="worker")
    loop.start()
    drainer.start()
    try:
        finished = drainer.done.wait(SOAK_SECONDS)
    finally:
        drainer.stop.set()
        worker.stop.set()
        loop.join()
        drainer.join()
    missing = {r: len(expected[r] - drainer.taken[r]) for r in regions}
    assert finished, f"not every number was queued: missing {missing}"
    left = [redis_client.llen(key) for key in drainer.ready.values()]
    assert (drainer.popped, left) == (sum(map(len, expected.values())), [0] * len(regions))
    cycles = worker.backpressure.released
    print(f"pause/resume cycles per region: {dict(cycles)}")
    assert all(cycles[region] >= SOAK_MIN_CYCLES for region in regions), cycles


def test_held_partitions_are_paused_even_when_every_poll_returns_them(
    tight: Settings, redis_client: RedisClient, worker: AssignerWorker
) -> None:
    """Given four regions whose queues are already full and one chunk of each in Kafka,
    When the worker holds each partition at its chunk (every poll fetches those four
    chunks again, far fewer than a poll's 50 records),
    Then the poll after the last hold pauses every held partition: the fetcher can
    hold parsed records only of the last partition of a full poll."""
    regions = [FULL_REGION, *FLOWING_REGIONS]
    scheme = KeyScheme(tight.key_prefix, tight.campaign)
    for index, region in enumerate(regions):
        base = 9160000000 + index * 10_000_000
        enqueue_chunk(redis_client, scheme, region, [base + i for i in range(20)])
    produce(tight, [chunk(region, 0, [9170000000 + i]) for i, region in enumerate(regions)])
    step_until(worker, lambda: len(worker.paused) == len(regions))
    worker.step()
    assert all(hold.paused for hold in worker.backpressure.holds.values())
