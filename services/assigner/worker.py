"""The assigner worker: Kafka ``phonebank.numbers`` → per-region Redis ready queues.

A consumer-group member. For each chunk, in partition order: dedupe against the seen
bitmaps, queue the new numbers on the region's ready list (do-not-call numbers are
skipped by the enqueue script), mark them seen and count them as ingested. Offsets are
committed only after the Redis writes.

Backpressure: when a region's ready list holds ``queue_high_watermark`` numbers, the
chunk's partition is rewound to that chunk and paused; it resumes once the region is
below ``queue_low_watermark``. Pauses are re-applied after every rebalance (the
rebalance callbacks only record what happened; the loop does the work). SIGTERM stops
the loop after the current chunk: offsets are committed and the consumer closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from phonebank.assigner import dedupe
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.core.kafka import make_consumer
from phonebank.core.keys import KeyScheme
from phonebank.core.queues import enqueue_chunk
from phonebank.core.records import NumberChunk
from phonebank.core.scripts import Scripts
from phonebank.core.settings import Settings

log = logging.getLogger(__name__)

#: milliseconds one poll waits for records
POLL_TIMEOUT_MS = 500
#: records one poll returns at most (chunks of up to a few thousand numbers each)
MAX_POLL_RECORDS = 50


@dataclass
class RebalanceState:
    """What the rebalance callbacks saw; the worker loop acts on it."""

    revoked: set[TopicPartition] = field(default_factory=set)
    assigned: set[TopicPartition] = field(default_factory=set)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records assignments and revocations; does no blocking work."""

    def __init__(self, state: RebalanceState) -> None:
        self.state = state

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.state.revoked.update(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.state.assigned.update(assigned)


class AssignerWorker:
    """One member of the assigner consumer group."""

    def __init__(self, settings: Settings, client: redis.Redis,
                 metrics: AssignerMetrics | None = None) -> None:
        self.settings = settings
        self.redis = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.scripts = Scripts(client)
        self.metrics = metrics or AssignerMetrics(settings)
        self.stop = threading.Event()
        #: partition → region whose full queue paused it
        self.paused: dict[TopicPartition, str] = {}
        self.rebalance = RebalanceState()
        self.consumer: KafkaConsumer = make_consumer(
            settings, settings.assigner_group, max_poll_records=MAX_POLL_RECORDS
        )
        self.consumer.subscribe([settings.numbers_topic], listener=_Listener(self.rebalance))

    def run(self) -> None:
        """Consume until :attr:`stop` is set; then commit and close."""
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.consumer.close(autocommit=False)

    def step(self) -> int:
        """One poll: handle rebalances, resume drained regions, queue what came in.

        Returns the number of records handled (not counting rewound ones).
        """
        self._apply_rebalance()
        self._resume_drained()
        batch = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        handled = 0
        for partition, records in batch.items():
            handled += self._handle_partition(partition, records)
        self.metrics.observe_consumer(self.consumer, len(self.paused))
        return handled

    def _handle_partition(self, partition: TopicPartition, records: list[ConsumerRecord]) -> int:
        """Queue the partition's records in order; stop at a full region; commit."""
        done = 0
        for record in records:
            if self.stop.is_set():
                break
            if not self._handle_record(partition, record):
                break
            done += 1
        if done:
            offset = OffsetAndMetadata(records[done - 1].offset + 1, "", -1)
            self.consumer.commit({partition: offset})
        return done

    def _handle_record(self, partition: TopicPartition, record: ConsumerRecord) -> bool:
        """Queue one chunk. False (partition rewound and paused) if its region is full."""
        try:
            chunk = NumberChunk.decode(record.value)
        except ValidationError:
            log.error("skipping malformed record at %s offset %d", partition, record.offset)
            self.metrics.malformed_records.inc()
            return True
        keys = self.scheme.region(chunk.region)
        if self.redis.llen(keys.ready) >= self.settings.queue_high_watermark:
            self.consumer.seek(partition, record.offset)
            self.consumer.pause(partition)
            self.paused[partition] = chunk.region
            log.info("region %s full: pausing %s", chunk.region, partition)
            return False
        fresh = dedupe.unseen(self.redis, self.scripts, self.scheme, chunk.numbers)
        queued = enqueue_chunk(
            self.redis, self.scheme, chunk.region, fresh, scripts=self.scripts
        ) if fresh else 0
        newly_seen = dedupe.mark_seen(self.redis, self.scripts, self.scheme, fresh) if fresh else 0
        if newly_seen:
            self.redis.hincrby(self.scheme.queued, chunk.region, newly_seen)
        self.metrics.chunk_done(chunk.region, len(chunk.numbers), len(fresh), queued)
        return True

    def _resume_drained(self) -> None:
        """Resume paused partitions whose region fell below the low-water mark."""
        for partition, region in list(self.paused.items()):
            depth = self.redis.llen(self.scheme.region(region).ready)
            if depth < self.settings.queue_low_watermark:
                self.consumer.resume(partition)
                del self.paused[partition]
                log.info("region %s drained: resuming %s", region, partition)

    def _apply_rebalance(self) -> None:
        """After a rebalance: forget revoked partitions, re-pause the still-assigned ones."""
        if not (self.rebalance.revoked or self.rebalance.assigned):
            return
        assignment = self.consumer.assignment()
        for partition in list(self.paused):
            if partition not in assignment:
                del self.paused[partition]
        if self.paused:
            self.consumer.pause(*self.paused)
        self.rebalance.revoked.clear()
        self.rebalance.assigned.clear()
