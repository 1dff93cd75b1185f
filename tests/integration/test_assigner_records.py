"""The assigner reads both chunk versions and skips a bad record without stopping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import ensure_topics, make_producer, partition_for_region
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings
from tests.integration.assigner_helpers import consumed_to_end, step_until

pytestmark = pytest.mark.integration

REGION = "RU-MOW"


def produce_values(settings: Settings, values: list[bytes | None]) -> None:
    producer = make_producer(settings)
    partition = partition_for_region(REGION, settings.numbers_partitions)
    for value in values:
        producer.send(settings.numbers_topic, key=REGION.encode(), value=value, partition=partition)
    producer.flush()
    producer.close()


def chunk(seq: int, numbers: list[int]) -> NumberChunk:
    return NumberChunk(campaign="default", region=REGION, source="t", seq=seq, numbers=numbers)


@pytest.fixture
def worker(settings: Settings, redis_client: redis.Redis) -> Iterator[AssignerWorker]:
    ensure_topics(settings)
    instance = AssignerWorker(settings, redis_client)
    yield instance
    instance.consumer.close(autocommit=False)


def test_old_and_new_chunks_queue_and_bad_records_are_skipped(
    settings: Settings, redis_client: redis.Redis, worker: AssignerWorker
) -> None:
    """Given one partition holding a JSON chunk (version 1), a corrupt compact chunk, a
    tombstone, garbage, and a compact chunk whose numbers came unsorted
    When the worker consumes the partition
    Then both good chunks are queued (the compact one in ascending order), the three bad
    records are counted as malformed, and the worker goes on to the end."""
    compact = chunk(2, [9161000003, 9161000001, 9161000002]).encode()
    produce_values(
        settings,
        [
            chunk(0, [9169000002, 9169000001]).model_dump_json().encode(),
            compact[:-4] + b"\x00\x00\x00\x00",
            None,
            b"\xff not a chunk",
            compact,
        ],
    )
    before = worker.metrics.malformed_records._value.get()
    step_until(worker, lambda: consumed_to_end(worker))
    keys = KeyScheme(settings.key_prefix, settings.campaign).region(REGION)
    queued = [int(n) for n in redis_client.lrange(keys.ready, 0, -1)]
    assert queued == [9169000002, 9169000001, 9161000001, 9161000002, 9161000003]
    assert worker.metrics.malformed_records._value.get() - before == 3
