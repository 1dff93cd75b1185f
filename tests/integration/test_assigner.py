"""The assigner worker against the real broker and redis-server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import ensure_topics, make_admin, partition_for_region
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings, child_env
from tests.integration.assigner_helpers import (
    DEADLINE_SECONDS,
    chunk,
    consumed_to_end,
    produce,
    ready,
    running_worker,
    step_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]


@pytest.fixture
def worker(settings: Settings, redis_client: redis.Redis) -> Iterator[AssignerWorker]:
    with running_worker(settings, redis_client) as instance:
        yield instance


def test_chunks_are_queued_once_and_counted(
    settings: Settings, redis_client: redis.Redis, worker: AssignerWorker
) -> None:
    # Given chunks of two regions, one number repeated across chunks
    produce(
        settings,
        [
            chunk("RU-MOW", 0, [9161234567, 9161234568]),
            chunk("RU-MOW", 1, [9161234568, 9161234569]),
            chunk("RU-SPE", 0, [9211234567]),
        ],
    )
    # When the worker consumes them
    step_until(
        worker,
        lambda: (
            len(ready(redis_client, settings, "RU-MOW")) == 3
            and len(ready(redis_client, settings, "RU-SPE")) == 1
        ),
    )
    # Then each number is queued once, in order, and counted as queued once
    assert ready(redis_client, settings, "RU-MOW") == [9161234567, 9161234568, 9161234569]
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    assert redis_client.hgetall(scheme.queued) == {b"RU-MOW": b"3", b"RU-SPE": b"1"}
    # When the same chunks arrive again (a re-ingest)
    produce(settings, [chunk("RU-MOW", 0, [9161234567, 9161234568], source="again")])
    step_until(worker, lambda: consumed_to_end(worker))
    # Then nothing is added
    assert ready(redis_client, settings, "RU-MOW") == [9161234567, 9161234568, 9161234569]
    assert redis_client.hget(scheme.queued, "RU-MOW") == b"3"


def test_full_region_pauses_its_partition_until_drained(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a high-water mark of 4 and a low-water mark of 2
    tight = settings.model_copy(update={"queue_high_watermark": 4, "queue_low_watermark": 2})
    ensure_topics(tight)
    worker = AssignerWorker(tight, redis_client)
    try:
        produce(
            tight,
            [
                chunk("RU-MOW", 0, [9160000001 + i for i in range(4)]),
                chunk("RU-MOW", 1, [9160000101, 9160000102]),
            ],
        )
        # When the first chunk fills the region
        step_until(worker, lambda: bool(worker.paused))
        # Then the second waits in Kafka, its partition paused
        assert len(ready(redis_client, tight, "RU-MOW")) == 4
        for _ in range(3):
            worker.step()
        assert len(ready(redis_client, tight, "RU-MOW")) == 4
        # When volunteers drain the queue below the low-water mark
        keys = KeyScheme(tight.key_prefix, tight.campaign).region("RU-MOW")
        redis_client.lpop(keys.ready, 3)
        # Then the partition resumes and the waiting chunk is queued
        step_until(worker, lambda: len(ready(redis_client, tight, "RU-MOW")) == 3)
        assert ready(redis_client, tight, "RU-MOW") == [9160000004, 9160000101, 9160000102]
        assert worker.paused == {}
    finally:
        worker.consumer.close(autocommit=False)


#: regions of the process tests, and the chunks (of 500 numbers) they produce
STREAM_REGIONS = ["RU-MOW", "RU-SPE", "RU-KDA", "RU-NVS"]
STREAM_CHUNKS = 200


def produce_stream(settings: Settings) -> list[NumberChunk]:
    """200 chunks of 500 numbers over 4 regions, produced in order."""
    chunks = [
        chunk(STREAM_REGIONS[seq % 4], seq, [9000000000 + seq * 1000 + i for i in range(500)])
        for seq in range(STREAM_CHUNKS)
    ]
    produce(settings, chunks)
    return chunks


def start_assigner(settings: Settings) -> subprocess.Popen[bytes]:
    """``phonebank assigner`` in its own process, on the test's namespace."""
    env = child_env(settings.model_copy(update={"kafka_session_timeout_ms": 6000}))
    return subprocess.Popen(
        [sys.executable, "-m", "phonebank.cli", "assigner", "--no-metrics"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_queued(
    client: redis.Redis, settings: Settings, process: subprocess.Popen[bytes], at_least: int
) -> None:
    """Poll until the process has queued ``at_least`` numbers (it must stay alive)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while sum(len(ready(client, settings, r)) for r in STREAM_REGIONS) < at_least:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)


@pytest.fixture
def unbounded(settings: Settings) -> Settings:
    """Queues that never fill: these tests are about loss and duplicates (a full region
    would park a redelivered chunk until the queue drains, which nobody does here)."""
    wide = settings.model_copy(update={"queue_high_watermark": 100_000})
    ensure_topics(wide)
    return wide


def test_a_killed_worker_loses_nothing(unbounded: Settings, redis_client: redis.Redis) -> None:
    # Given a stream of 200 chunks over 4 regions
    settings = unbounded
    chunks = produce_stream(settings)
    # When a worker process is killed with SIGKILL in the middle of the stream
    victim = start_assigner(settings)
    wait_queued(redis_client, settings, victim, 3000)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # And a second worker takes over the group
    survivor = AssignerWorker(settings, redis_client)
    try:
        step_until(survivor, lambda: consumed_to_end(survivor))
    finally:
        survivor.consumer.close(autocommit=False)
    # Then every number is queued exactly once
    for region in STREAM_REGIONS:
        counts = Counter(ready(redis_client, settings, region))
        assert sorted(counts) == sorted(n for c in chunks if c.region == region for n in c.numbers)
        assert set(counts.values()) == {1}


def test_sigterm_commits_exactly_what_was_queued(
    unbounded: Settings, redis_client: redis.Redis
) -> None:
    # Given a worker process in the middle of a stream
    settings = unbounded
    chunks = produce_stream(settings)
    worker = start_assigner(settings)
    wait_queued(redis_client, settings, worker, 3000)
    # When it gets SIGTERM
    worker.send_signal(signal.SIGTERM)
    # Then it exits cleanly, soon
    assert worker.wait(timeout=30) == 0
    # And its committed offsets cover exactly the chunks whose numbers are queued
    admin = make_admin(settings)
    try:
        committed = admin.list_group_offsets(settings.assigner_group)[settings.assigner_group]
    finally:
        admin.close()
    by_partition: dict[int, list[NumberChunk]] = {}
    for each in chunks:
        partition = partition_for_region(each.region, settings.numbers_partitions)
        by_partition.setdefault(partition, []).append(each)
    expected = {
        n
        for partition, ordered in by_partition.items()
        for each in ordered[: committed_offset(committed, settings, partition)]
        for n in each.numbers
    }
    queued = {n for region in STREAM_REGIONS for n in ready(redis_client, settings, region)}
    assert queued == expected


def committed_offset(
    committed: dict[TopicPartition, OffsetAndMetadata], settings: Settings, partition: int
) -> int:
    entry = committed.get(TopicPartition(settings.numbers_topic, partition))
    return entry.offset if entry is not None and entry.offset >= 0 else 0
