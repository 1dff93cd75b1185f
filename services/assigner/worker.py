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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from phonebank.assigner.dedupe import SeenMirror
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import make_consumer
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import queue_numbers, queued_count
from phonebank.leases.scripts import Scripts
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: milliseconds one poll waits for records
POLL_TIMEOUT_MS = 500
#: records one poll returns at most (chunks of up to a few thousand numbers each)
MAX_POLL_RECORDS = 50


@dataclass(frozen=True)
class PlannedChunk:
    """A chunk of the current batch and its numbers not seen before."""

    chunk: NumberChunk
    fresh: list[int]


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

    def __init__(
        self, settings: Settings, client: redis.Redis, metrics: AssignerMetrics | None = None
    ) -> None:
        self.settings = settings
        self.redis = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.scripts = Scripts(client)
        self.seen = SeenMirror(client, self.scripts, self.scheme)
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
        """Queue the partition's records in order, in batches; stop at a region that is
        full (rewind and pause there); commit what was handled. Returns records handled."""
        chunks = [(record, self._decode(partition, record)) for record in records]
        done = 0
        try:
            while done < len(chunks) and not self.stop.is_set():
                advanced = self._queue_round(chunks[done:])
                if advanced == 0:  # the next chunk's region is full by its real depth
                    record, chunk = chunks[done]
                    self._pause_at(partition, record, chunk.region if chunk else "")
                    break
                done += advanced
        except Exception:
            self.seen.clear()  # claimed bits of numbers that may not be queued
            raise
        if done:
            offset = OffsetAndMetadata(records[done - 1].offset + 1, "", -1)
            self.consumer.commit({partition: offset})
        return done

    def _queue_round(self, chunks: list[tuple[ConsumerRecord, NumberChunk | None]]) -> int:
        """Queue chunks from the head of ``chunks`` until one's region may be full (by the
        depths read now plus what this round adds: an upper bound); returns how many."""
        depths = self._ready_depths({chunk.region for _, chunk in chunks if chunk})
        planned: list[PlannedChunk] = []
        advanced = 0
        for _, chunk in chunks:
            if self.stop.is_set():
                break
            if chunk is not None:
                if depths[chunk.region] >= self.settings.queue_high_watermark:
                    break
                fresh = self.seen.claim(chunk.numbers)
                depths[chunk.region] += len(fresh)
                planned.append(PlannedChunk(chunk, fresh))
            advanced += 1
        self._queue(planned)
        return advanced

    def _decode(self, partition: TopicPartition, record: ConsumerRecord) -> NumberChunk | None:
        """The chunk of a record, or None (logged, counted, skipped) if malformed."""
        try:
            return NumberChunk.decode(record.value)
        except ValueError as exc:  # ChunkFormatError, or pydantic's ValidationError
            log.error(
                "skipping malformed record at %s offset %d: %s",
                partition,
                record.offset,
                str(exc).splitlines()[0],
            )
            self.metrics.malformed_records.inc()
            return None

    def _ready_depths(self, regions: set[str]) -> dict[str, int]:
        """Ready-list length of each region (one round trip)."""
        ordered = sorted(regions)
        pipe = self.redis.pipeline(transaction=False)
        for region in ordered:
            pipe.llen(self.scheme.region(region).ready)
        return {region: int(depth) for region, depth in zip(ordered, pipe.execute(), strict=True)}

    def _pause_at(self, partition: TopicPartition, record: ConsumerRecord, region: str) -> None:
        """Rewind the partition to ``record`` and pause it until ``region`` drains."""
        self.consumer.seek(partition, record.offset)
        self.consumer.pause(partition)
        self.paused[partition] = region
        log.info("region %s full: pausing %s", region, partition)

    def _queue(self, planned: list[PlannedChunk]) -> None:
        """Queue the planned chunks (one round trip), then mark their numbers seen and
        count the newly seen per region (one round trip each)."""
        if not planned:
            return
        pipe = self.scripts.pipeline(self.redis)
        calls = [queue_numbers(pipe, self.scheme, p.chunk.region, p.fresh) for p in planned]
        for region in {p.chunk.region for p in planned}:
            pipe.sadd(self.scheme.regions, region)
        replies = pipe.execute()
        new = self.seen.mark_seen([number for p in planned for number in p.fresh])
        if not all(new):
            log.warning(
                "%d numbers were also queued by another worker (a rebalance overlap)",
                new.count(False),
            )
        newly_seen: Counter[str] = Counter()
        first_reply = first_number = 0
        for chunk_plan, count in zip(planned, calls, strict=True):
            queued = queued_count(replies[first_reply : first_reply + count])
            first_reply += count
            fresh = len(chunk_plan.fresh)
            newly_seen[chunk_plan.chunk.region] += sum(new[first_number : first_number + fresh])
            first_number += fresh
            self.metrics.chunk_done(
                chunk_plan.chunk.region, len(chunk_plan.chunk.numbers), fresh, queued
            )
        counts = self.scripts.pipeline(self.redis)
        for region, count in newly_seen.items():
            if count:
                counts.hincrby(self.scheme.queued, region, count)
        counts.execute()

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
        self.seen.clear()  # another owner may have set bits of what is now ours
        assignment = self.consumer.assignment()
        for partition in list(self.paused):
            if partition not in assignment:
                del self.paused[partition]
        if self.paused:
            self.consumer.pause(*self.paused)
        self.rebalance.revoked.clear()
        self.rebalance.assigned.clear()
