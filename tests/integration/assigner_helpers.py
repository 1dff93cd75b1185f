"""Helpers of the assigner tests: chunks into the numbers topic, a worker started and
closed, driven until it reaches a state, the ready queue it filled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import ensure_topics, make_producer, partition_for_region
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings

#: seconds a test waits for a worker to reach the expected state
DEADLINE_SECONDS = 120.0


def consumed_to_end(worker: AssignerWorker) -> bool:
    """Whether the worker owns every partition and has read each to its end."""
    consumer = worker.consumer
    assignment = consumer.assignment()
    if len(assignment) < worker.settings.numbers_partitions:
        return False
    ends = consumer.end_offsets(list(assignment))
    return all(consumer.position(partition) >= end for partition, end in ends.items())


def step_until(worker: AssignerWorker, condition: Callable[[], bool]) -> None:
    """Poll the worker until ``condition`` holds (a failed assertion after the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "worker did not reach the expected state"
        worker.step()


def chunk(region: str, seq: int, numbers: list[int], source: str = "test") -> NumberChunk:
    """A number chunk of the default campaign."""
    return NumberChunk(campaign="default", region=region, source=source, seq=seq, numbers=numbers)


def produce_values(settings: Settings, records: Sequence[tuple[str, bytes | None]]) -> None:
    """``(region, value)`` records into each region's partition of the numbers topic
    (a value may be anything: a chunk, garbage, a tombstone)."""
    producer = make_producer(settings)
    for region, value in records:
        partition = partition_for_region(region, settings.numbers_partitions)
        producer.send(settings.numbers_topic, key=region.encode(), value=value, partition=partition)
    producer.flush()
    producer.close()


def produce(settings: Settings, chunks: list[NumberChunk]) -> None:
    """Chunks into their regions' partitions, in order."""
    produce_values(settings, [(c.region, c.encode()) for c in chunks])


def ready(client: RedisClient, settings: Settings, region: str) -> list[int]:
    """The region's ready queue, head first."""
    keys = KeyScheme(settings.key_prefix, settings.campaign).region(region)
    return [int(n) for n in client.lrange(keys.ready, 0, -1)]


@contextmanager
def running_worker(settings: Settings, client: RedisClient) -> Iterator[AssignerWorker]:
    """A worker on the namespace's topics (created if missing), closed without committing."""
    ensure_topics(settings)
    worker = AssignerWorker(settings, client)
    try:
        yield worker
    finally:
        worker.consumer.close(autocommit=False)


def queue_all(settings: Settings, client: RedisClient) -> None:
    """Run a worker until it has read every partition to its end: every chunk queued."""
    with running_worker(settings, client) as worker:
        step_until(worker, lambda: consumed_to_end(worker))
