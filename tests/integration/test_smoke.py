"""The local stack is real: a record makes a round trip through Kafka, a value through Redis."""

from __future__ import annotations

from typing import Any

import redis

from phonebank.infra.kafka import ensure_topic, make_consumer, make_producer
from phonebank.settings import Settings

#: milliseconds to wait for the record to come back
POLL_TIMEOUT_MS = 15_000


def test_kafka_round_trip(settings: Settings) -> None:
    # Given a fresh topic on the real broker
    assert ensure_topic(settings, settings.numbers_topic, 2)
    # When a record is produced with acks=all and the topic read from the start
    producer = make_producer(settings)
    producer.send(settings.numbers_topic, key=b"RU-MOW", value=b"hello", partition=1).get(10)
    producer.close()
    consumer = make_consumer(settings, settings.assigner_group, settings.numbers_topic)
    records: list[Any] = []
    try:
        while not records:
            batch = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            assert batch, "no record came back from the broker"
            records = [r for rs in batch.values() for r in rs]
    finally:
        consumer.close()
    # Then the same record comes back, on the partition it was sent to
    assert [(r.key, r.value, r.partition) for r in records] == [(b"RU-MOW", b"hello", 1)]


def test_ensure_topic_is_idempotent(settings: Settings) -> None:
    assert ensure_topic(settings, settings.outcomes_topic, 1) is True
    assert ensure_topic(settings, settings.outcomes_topic, 1) is False


def test_redis_round_trip(settings: Settings, redis_client: redis.Redis) -> None:
    # Given the real redis-server with the shipped config
    policy = redis_client.config_get("maxmemory-policy")
    # When a key is written under the test's prefix
    redis_client.set(f"{settings.key_prefix}:smoke", "1")
    # Then it reads back, and Redis never evicts queue data
    assert redis_client.get(f"{settings.key_prefix}:smoke") == b"1"
    assert policy == {"maxmemory-policy": "noeviction"}
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
