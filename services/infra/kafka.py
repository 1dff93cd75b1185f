"""Kafka helpers every service shares: clients with phonebank's settings, topics, partitions.

Producers are idempotent with ``acks=all``; consumers never auto-commit (offsets are
committed by the caller after its own write). Topics are created on purpose, never by
the broker on first use, with a replication factor and ``min.insync.replicas`` fitted
to the cluster (:func:`replication_for`: 3 and 2 on three brokers or more, 1 and 1 on
one) unless the settings fix them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError

from phonebank.domain.partitions import partition_for_region, partition_table
from phonebank.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "ensure_topic",
    "ensure_topics",
    "make_admin",
    "make_consumer",
    "make_producer",
    "partition_for_region",
    "partition_table",
    "replication_for",
]

#: milliseconds a producer waits to fill a batch before sending it
PRODUCER_LINGER_MS = 20
#: bytes in one producer batch per partition
PRODUCER_BATCH_BYTES = 512 * 1024
#: bytes of the largest record we produce (a chunk of a few thousand numbers is ~50 KB)
MAX_RECORD_BYTES = 4 * 1024 * 1024
#: milliseconds a client waits for a broker answer
REQUEST_TIMEOUT_MS = 30_000
#: partitions of the do-not-call topic (a small, compacted list)
DNC_PARTITIONS = 1
#: Do-not-call topic config: compacted (one record per number), kept forever.
DNC_TOPIC_CONFIG = {"cleanup.policy": "compact", "retention.ms": "-1"}
#: milliseconds one poll of :func:`read_topic` waits
READ_POLL_MS = 500
#: heartbeats a consumer sends per session timeout (Kafka recommends at least 3)
HEARTBEATS_PER_SESSION = 3
#: Topic config: keep records forever, Kafka is the system of record.
RETAIN_FOREVER = {"retention.ms": "-1", "max.message.bytes": str(MAX_RECORD_BYTES)}
#: seconds ensure_topic retries an admin call that failed on a broker that is down
#: (longer than the controller takes to fence it: broker.session.timeout.ms, 9 s)
ADMIN_RETRY_SECONDS = 30.0
#: seconds between two attempts
ADMIN_RETRY_INTERVAL_SECONDS = 0.5
#: replicas of a topic when the cluster has this many brokers or more (and the setting is 0)
CLUSTER_REPLICAS = 3
#: min.insync.replicas of a topic with CLUSTER_REPLICAS replicas or more: one broker may
#: be down and writes with acks=all still succeed, each on two copies at least
CLUSTER_MIN_INSYNC = 2


class ReplicationError(ValueError):
    """The settings ask for more replicas than the cluster has brokers."""


def replication_for(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of a topic created on ``brokers`` brokers.

    A setting of 0 means automatic: ``CLUSTER_REPLICAS`` replicas when the cluster has
    that many brokers, else 1; ``CLUSTER_MIN_INSYNC`` in-sync replicas when the topic has
    ``CLUSTER_REPLICAS`` replicas or more, else 1.
    """
    replicas = settings.kafka_replication_factor or (
        CLUSTER_REPLICAS if brokers >= CLUSTER_REPLICAS else 1
    )
    if replicas > brokers:
        raise ReplicationError(
            f"PHONEBANK_KAFKA_REPLICATION_FACTOR={replicas} but the cluster has {brokers} broker(s)"
        )
    min_isr = settings.kafka_min_insync_replicas or (
        CLUSTER_MIN_INSYNC if replicas >= CLUSTER_REPLICAS else 1
    )
    return replicas, min(min_isr, replicas)


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An idempotent producer (``acks=all``) on the configured brokers."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": PRODUCER_LINGER_MS,
        "batch_size": PRODUCER_BATCH_BYTES,
        "max_request_size": MAX_RECORD_BYTES,
        "compression_type": "gzip",
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "client_id": "phonebank",
    }
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(settings: Settings, group: str, *topics: str, **overrides: Any) -> KafkaConsumer:
    """A group member with manual commits, reading from the earliest offset of a new group."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": MAX_RECORD_BYTES,
        "request_timeout_ms": REQUEST_TIMEOUT_MS + 5_000,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_session_timeout_ms // HEARTBEATS_PER_SESSION,
        "client_id": f"phonebank-{group}",
    }
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    if topics:
        consumer.subscribe(list(topics))
    return consumer


def make_admin(settings: Settings, **overrides: Any) -> KafkaAdminClient:
    """An admin client on the configured brokers."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "client_id": "phonebank-admin",
    }
    config.update(overrides)
    return KafkaAdminClient(**config)


def ensure_topic(
    settings: Settings,
    name: str,
    partitions: int,
    config: dict[str, str] | None = None,
    *,
    retry_seconds: float = 0.0,
    **admin_overrides: Any,
) -> bool:
    """Create ``name`` with ``partitions`` partitions unless it exists. True if created.

    An admin call that fails with a retriable error (a broker just died and is still in
    the metadata: its connection is refused) is retried for ``retry_seconds`` (by
    default not: callers that start a service pass ``ADMIN_RETRY_SECONDS``).
    """
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            return _ensure_topic_once(settings, name, partitions, config, admin_overrides)
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            log.warning("creating topic %s failed, retrying: %s", name, exc)
            time.sleep(ADMIN_RETRY_INTERVAL_SECONDS)


def _ensure_topic_once(
    settings: Settings,
    name: str,
    partitions: int,
    config: dict[str, str] | None,
    admin_overrides: dict[str, Any],
) -> bool:
    admin = make_admin(settings, **admin_overrides)
    try:
        if name in admin.list_topics():
            return False
        brokers = len(admin.describe_cluster().get("brokers") or ())
        replicas, min_isr = replication_for(settings, brokers)
        configs = {**(config or RETAIN_FOREVER), "min.insync.replicas": str(min_isr)}
        topic = NewTopic(name, partitions, replication_factor=replicas, topic_configs=configs)
        try:
            admin.create_topics([topic], wait_for_metadata=True)
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def ensure_topics(settings: Settings) -> None:
    """Create phonebank's topics if missing (retrying while a broker that just died is
    still in the metadata)."""
    retry = ADMIN_RETRY_SECONDS
    ensure_topic(settings, settings.numbers_topic, settings.numbers_partitions, retry_seconds=retry)
    ensure_topic(
        settings, settings.outcomes_topic, settings.outcomes_partitions, retry_seconds=retry
    )
    ensure_topic(
        settings, settings.dnc_topic, DNC_PARTITIONS, DNC_TOPIC_CONFIG, retry_seconds=retry
    )


def read_topic(settings: Settings, topic: str) -> Iterator[ConsumerRecord]:
    """Every record of ``topic`` from the start to its end as of the call (no group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        client_id="phonebank-reader",
        max_partition_fetch_bytes=MAX_RECORD_BYTES,
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(p) < end for p, end in ends.items()):
            for partition, records in consumer.poll(timeout_ms=READ_POLL_MS).items():
                yield from (record for record in records if record.offset < ends[partition])
    finally:
        consumer.close()
