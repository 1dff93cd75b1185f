"""A broker of the three killed (SIGKILL) during ingest, assignment and the relay.

Topics have 3 replicas and ``min.insync.replicas=2``; producers are idempotent with
``acks=all``. The judges are Kafka's records and committed offsets and Redis's queues
and streams: every number (or outcome) arrives, none twice.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import NumberChunk, Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_producer, partition_for_region, read_topic
from phonebank.infra.redis_client import RedisClient
from phonebank.ingest.chunks import EncodedChunk, KafkaSink
from phonebank.ingest.progress import Progress
from phonebank.ingest.runner import IngestOptions, IngestRun
from phonebank.leases.relay import BATCH_ENTRIES, OutcomeRelay, RelayMetrics
from phonebank.settings import Settings
from tests.helpers import iter_generated
from tests.integration.lease_helpers import (
    MOSCOW_ONLY,
    lease_client,
    local_instant,
    numbers_from,
    scheme,
)
from tests.kafka_cluster.conftest import Brokers
from tests.kafka_cluster.helpers import (
    OFFSETS_TOPIC,
    audit_clean,
    exactly_once,
    fully_committed,
    ingest_chunks,
    numbers_in_topic,
    offsets_partition,
    queued_numbers,
    queued_total,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka_cluster]

#: numbers of the ingest test, and the chunk after which a broker dies
INGEST_NUMBERS = 60_000
INGEST_CHUNK = 250
KILL_AFTER_CHUNKS = 80
#: chunks × numbers of the assignment test (half before the kill, half after)
ASSIGN_CHUNKS = 160
ASSIGN_CHUNK_NUMBERS = 250
#: outcomes of the relay test (three relay batches)
OUTCOMES = 3 * BATCH_ENTRIES
ASSIGN_REGIONS = ("RU-MOW", "RU-SPE", "RU-SVE", "RU-KDA")


class KillingSink(KafkaSink):
    """The ingest sink, which calls ``kill`` with the partition of its n-th chunk."""

    def __init__(self, settings: Settings, after: int, kill: Callable[[int], None]) -> None:
        super().__init__(settings)
        self.after = after
        self.kill = kill
        self.sent = 0

    def send(self, chunk: EncodedChunk) -> None:
        super().send(chunk)
        self.sent += 1
        if self.sent == self.after:
            self.kill(partition_for_region(chunk.region, self.partitions))


def test_a_broker_killed_during_ingest_loses_and_duplicates_nothing(
    cluster_settings: Settings, brokers: Brokers, redis_client: RedisClient, tmp_path: Path
) -> None:
    """Given a file of 60,000 allocated numbers,
    When it is ingested and the leader of the partition being written is killed with
    SIGKILL after the 80th chunk,
    Then the ingest completes, the numbers topic holds every number exactly once, and
    the auditor finds nothing wrong (the ingested counts match Kafka)."""
    settings = cluster_settings
    numbers = [n for _, n in iter_generated(NumberingPlan.default(), INGEST_NUMBERS, seed=7)]
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"+7{n}\n" for n in numbers))

    def kill_leader(partition: int) -> None:
        if not brokers.killed:
            brokers.kill(brokers.leader_of(settings.numbers_topic, partition))

    options = IngestOptions(
        [str(path)],
        checkpoint_dir=tmp_path / "ck",
        chunk_size=INGEST_CHUNK,
        rejects=tmp_path / "rejects.tsv",
        progress=Progress(io.StringIO(), interactive=False),
    )
    summary = IngestRun(
        settings,
        NumberingPlan.default(),
        options,
        lambda: KillingSink(settings, KILL_AFTER_CHUNKS, kill_leader),
    ).run()
    assert brokers.killed, "no broker was killed"
    assert summary["accepted"] == INGEST_NUMBERS
    exactly_once(numbers_in_topic(settings), numbers)
    audit_clean(settings, redis_client)


def assign_chunks() -> list[NumberChunk]:
    """160 chunks of 250 distinct numbers over 4 regions."""
    return [
        NumberChunk(
            campaign="default",
            region=ASSIGN_REGIONS[seq % len(ASSIGN_REGIONS)],
            source="kafka-cluster",
            seq=seq,
            numbers=[9_000_000_000 + seq * 1000 + i for i in range(ASSIGN_CHUNK_NUMBERS)],
        )
        for seq in range(ASSIGN_CHUNKS)
    ]


def test_a_broker_killed_during_assignment_queues_everything_once(
    cluster_settings: Settings, brokers: Brokers, redis_client: RedisClient
) -> None:
    """Given an assigner consuming the numbers topic, which has queued a first 20,000
    numbers,
    When the broker coordinating the assigner group (the leader of the group's offsets
    partition) is killed with SIGKILL and 20,000 more numbers are produced,
    Then the assigner goes on: every number is queued once, the group's committed
    offsets reach the end of every partition, and the auditor finds nothing wrong."""
    settings = cluster_settings.model_copy(update={"queue_high_watermark": 1_000_000})
    ensure_topics(settings)
    chunks = assign_chunks()
    first, second = chunks[: len(chunks) // 2], chunks[len(chunks) // 2 :]
    ingest_chunks(settings, first)
    worker = AssignerWorker(settings, redis_client)
    thread = threading.Thread(target=worker.run, name="assigner")
    thread.start()
    try:
        half = sum(len(chunk.numbers) for chunk in first)
        wait_for("the first half queued", lambda: queued_total(redis_client, settings) >= half)
        group_partition = offsets_partition(settings.assigner_group)
        brokers.kill(brokers.leader_of(OFFSETS_TOPIC, group_partition))
        ingest_chunks(settings, second)
        wait_for("offsets committed to the end", lambda: fully_committed(settings))
    finally:
        worker.stop.set()
        thread.join()
    expected = [n for chunk in chunks for n in chunk.numbers]
    exactly_once(queued_numbers(redis_client, settings), expected)
    assert queued_total(redis_client, settings) == len(expected)
    audit_clean(settings, redis_client)


def call_all(settings: Settings, client: RedisClient, count: int) -> None:
    """``count`` Moscow numbers ingested, queued by an assigner, each leased and
    completed (an outcome each)."""
    ingest_chunks(
        settings,
        [
            NumberChunk(
                campaign="default",
                region="RU-MOW",
                source="relay",
                seq=seq,
                numbers=numbers_from(9_161_000_000 + seq * BATCH_ENTRIES, BATCH_ENTRIES),
            )
            for seq in range(count // BATCH_ENTRIES)
        ],
    )
    worker = AssignerWorker(settings, client)
    try:
        wait_for("the numbers queued", lambda: worker.step() >= 0 and fully_committed(settings))
    finally:
        worker.consumer.close(autocommit=False)
    leases = lease_client(settings, client, local_instant(12), MOSCOW_ONLY)
    for index in range(count):
        lease = leases.acquire(f"volunteer-{index}")
        assert lease is not None
        leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)


def relayed_all(relay: OutcomeRelay, client: RedisClient, stream: str) -> bool:
    """One relay round (a failed one is retried, as the assigner's housekeeping does);
    whether the stream is empty."""
    relay.relay_all()
    return not client.xlen(stream)


def test_a_broker_killed_during_the_relay_delivers_every_outcome_once(
    cluster_settings: Settings, brokers: Brokers, redis_client: RedisClient
) -> None:
    """Given 1,500 Moscow numbers ingested, queued and called: 1,500 outcomes in the
    region's outcome stream (three relay batches),
    When one batch is relayed, the leader of the partition it went to is killed with
    SIGKILL and the relay goes on,
    Then the stream empties, the outcomes topic holds every event exactly once, and the
    auditor finds nothing wrong."""
    settings = cluster_settings
    ensure_topics(settings)
    call_all(settings, redis_client, OUTCOMES)
    keys = scheme(settings).region("RU-MOW")
    producer = make_producer(settings)
    relay = OutcomeRelay(settings, redis_client, producer, RelayMetrics(CollectorRegistry()))
    try:
        assert relay.relay_region(keys) == BATCH_ENTRIES
        partition = next(read_topic(settings, settings.outcomes_topic)).partition
        brokers.kill(brokers.leader_of(settings.outcomes_topic, partition))
        wait_for("the stream relayed", lambda: relayed_all(relay, redis_client, keys.outcomes))
    finally:
        producer.close()
    events = Counter(
        OutcomeEvent.decode(record.value).event_id
        for record in read_topic(settings, settings.outcomes_topic)
    )
    assert len(events) == OUTCOMES
    assert set(events.values()) == {1}
    audit_clean(settings, redis_client)
