"""Helpers of the three-broker tests: the judges (Kafka's offsets and records, Redis's
queues) and a poll-until with a deadline."""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Callable, Iterable

from kafka import KafkaConsumer, TopicPartition

from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import make_admin, read_topic
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.retry import DEPENDENCY_ERRORS
from phonebank.ingest.chunks import EncodedChunk, KafkaSink
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import known_regions
from phonebank.settings import Settings

#: seconds a test waits for the system to reach the expected state
DEADLINE_SECONDS = 120.0
#: seconds between two probes of that state
PROBE_SECONDS = 0.1


def wait_for(what: str, condition: Callable[[], bool], deadline: float = DEADLINE_SECONDS) -> None:
    """Probe ``condition`` until it holds (a failed assertion naming ``what`` otherwise);
    a probe that fails on Kafka or Redis (a broker just killed) counts as not yet."""
    until = time.monotonic() + deadline
    while not holds(condition):
        assert time.monotonic() < until, f"timed out waiting for {what}"
        time.sleep(PROBE_SECONDS)


def holds(condition: Callable[[], bool]) -> bool:
    """``condition()``, False when it fails on a dependency."""
    try:
        return condition()
    except DEPENDENCY_ERRORS:
        return False


#: partitions of the group offsets topic (``offsets.topic.num.partitions`` of the template)
OFFSETS_PARTITIONS = 4
#: the topic of the group offsets
OFFSETS_TOPIC = "__consumer_offsets"


def offsets_partition(group: str) -> int:
    """The ``__consumer_offsets`` partition of ``group`` (its leader coordinates the group):
    Java's ``String.hashCode`` of the id, sign bit cleared, modulo the partitions."""
    raw = group.encode("utf-16-be")
    code = 0
    for index in range(0, len(raw), 2):
        code = (31 * code + int.from_bytes(raw[index : index + 2], "big")) & 0xFFFFFFFF
    return (code & 0x7FFFFFFF) % OFFSETS_PARTITIONS


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """``partition → end offset`` of ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """``partition → offset`` the consumer group ``group`` committed on ``topic``."""
    admin = make_admin(settings)
    try:
        offsets = admin.list_group_offsets([group])[group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def fully_committed(settings: Settings) -> bool:
    """The assigner group committed every partition of the numbers topic to its end."""
    ends = end_offsets(settings, settings.numbers_topic)
    committed = committed_offsets(settings, settings.assigner_group, settings.numbers_topic)
    return all(committed.get(p, 0) >= end for p, end in ends.items() if end)


def queued_numbers(client: RedisClient, settings: Settings) -> Counter[int]:
    """How many times each number sits in a ready list of any region."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    found: Counter[int] = Counter()
    for region in known_regions(client, scheme):
        found.update(int(n) for n in client.lrange(scheme.region(region).ready, 0, -1))
    return found


def queued_total(client: RedisClient, settings: Settings) -> int:
    """The assigners' own count of numbers queued (the ``queued`` hash, all regions)."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    return sum(int(v) for v in client.hvals(scheme.queued))


def numbers_in_topic(settings: Settings) -> Counter[int]:
    """How many times each number is in a chunk of the numbers topic."""
    found: Counter[int] = Counter()
    for record in read_topic(settings, settings.numbers_topic):
        found.update(NumberChunk.decode(record.value).numbers)
    return found


def ingest_chunks(settings: Settings, chunks: Iterable[NumberChunk]) -> None:
    """Send chunks as ``phonebank ingest`` does (its sink: acknowledged, then counted in
    the ``ingested`` hash)."""
    sink = KafkaSink(settings)
    try:
        for chunk in chunks:
            sink.send(EncodedChunk(chunk.region, chunk.seq, len(chunk.numbers), chunk.encode()))
        sink.flush()
    finally:
        sink.close()


def audit_clean(settings: Settings, client: RedisClient) -> None:
    """``phonebank audit`` finds no violation (a no-op until the auditor,
    ``phonebank.ops.audit``, is in the tree)."""
    try:
        auditor = importlib.import_module("phonebank.ops.audit")
    except ImportError:
        return
    report = auditor.audit(settings, client)
    assert report.ok, report.by_kind()


def exactly_once(found: Counter[int], expected: Iterable[int]) -> None:
    """Every expected number found once, nothing else found (a short diff otherwise)."""
    wanted = set(expected)
    twice = sorted(n for n, count in found.items() if count > 1)
    missing = sorted(wanted - set(found))
    extra = sorted(set(found) - wanted)
    assert not twice and not missing and not extra, (
        f"{len(twice)} twice, {len(missing)} missing, {len(extra)} unexpected"
    )
