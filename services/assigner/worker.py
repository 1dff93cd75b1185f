"""The assigner worker: Kafka ``phonebank.numbers`` → per-region Redis ready queues.

A consumer-group member. For each chunk, in partition order: dedupe against the seen
bitmaps, queue the new numbers on the region's ready list (do-not-call numbers are
skipped by the enqueue script), mark them seen and count them as ingested. Offsets are
committed only after the Redis writes.

Backpressure: when a region's ready list holds ``queue_high_watermark`` numbers, the
chunk's partition is held (:mod:`phonebank.assigner.backpressure`: rewound to that
chunk, paused once the fetcher holds none of its records); it resumes once the region
is below ``queue_low_watermark``.

Rebalances: the callback of a new assignment drops the dedupe mirror at once, inside
the poll, so the first records of a newly assigned partition (handled in that same
poll) are deduplicated against Redis, not against bits another owner may have moved
past. Holds are re-applied right after the poll that rebalanced.

Outages: a round that fails on Redis or Kafka rewinds every partition to its first
record not queued, is counted and logged, and is retried with backoff
(:mod:`phonebank.infra.retry`); an offset commit that fails is kept and retried before
the next poll. Only SIGTERM (the stop event) ends the loop: after the current chunk,
offsets are committed and the consumer closed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from phonebank.assigner.backpressure import Backpressure
from phonebank.assigner.dedupe import SeenMirror
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import make_consumer
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.retry import DEPENDENCY_ERRORS, Backoff
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import queue_numbers, queued_count
from phonebank.leases.scripts import Scripts
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: milliseconds one poll waits for records
POLL_TIMEOUT_MS = 500
#: records one poll returns at most (chunks of up to a few thousand numbers each)
MAX_POLL_RECORDS = 50
#: milliseconds an offset commit may take before it is left for the next step
COMMIT_TIMEOUT_MS = 5_000
#: milliseconds closing the consumer may take (leave the group, last commit)
CLOSE_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class PlannedChunk:
    """A chunk of the current batch and its numbers not seen before."""

    chunk: NumberChunk
    fresh: list[int]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Calls ``changed`` on every revocation or assignment (inside the poll, before any
    record of a new assignment is fetched); does no blocking work."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.changed = changed

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.changed()

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.changed()


class AssignerWorker:
    """One member of the assigner consumer group."""

    def __init__(
        self, settings: Settings, client: RedisClient, metrics: AssignerMetrics | None = None
    ) -> None:
        self.settings = settings
        self.redis = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.scripts = Scripts(client)
        self.seen = SeenMirror(client, self.scripts, self.scheme)
        self.metrics = metrics or AssignerMetrics(settings)
        self.stop = threading.Event()
        #: True from a rebalance callback until the loop has re-applied the holds
        self.rebalanced = False
        #: offsets handled whose commit failed (retried before the next poll)
        self.uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self.consumer: KafkaConsumer = make_consumer(
            settings, settings.assigner_group, max_poll_records=MAX_POLL_RECORDS
        )
        self.backpressure = Backpressure(
            self.consumer,
            client,
            self.scheme,
            settings.queue_low_watermark,
            max_poll_records=MAX_POLL_RECORDS,
        )
        self.consumer.subscribe([settings.numbers_topic], listener=_Listener(self._on_rebalance))

    @property
    def paused(self) -> dict[TopicPartition, str]:
        """Held partition → the region whose full queue holds it."""
        return {p: hold.region for p, hold in self.backpressure.holds.items()}

    def run(self) -> None:
        """Consume until :attr:`stop` is set, through any Redis or Kafka outage; then
        commit and close."""
        backoff = Backoff("worker", self.metrics.failures, self.stop)
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except DEPENDENCY_ERRORS as exc:
                    backoff.failed(exc)
                else:
                    backoff.succeeded()
        finally:
            self._commit_uncommitted()
            self.consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)

    def step(self) -> int:
        """One poll: resume drained regions, queue what came in, hold full regions.

        Returns the number of records handled (not counting rewound ones).
        """
        self.backpressure.resume_drained()
        self._commit_uncommitted()
        polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        self._apply_rebalance()
        batch = list(self.backpressure.screen(polled).items())
        handled = 0
        for index, (partition, records) in enumerate(batch):
            try:
                handled += self._handle_partition(partition, records)
            except DEPENDENCY_ERRORS:
                for later, later_records in batch[index + 1 :]:
                    self.consumer.seek(later, later_records[0].offset)
                raise
        self.metrics.observe_consumer(self.consumer, len(self.backpressure.holds))
        return handled

    def _on_rebalance(self) -> None:
        """A rebalance callback: drop the mirror now (another owner may have set bits of
        what is now ours), re-apply holds after the poll."""
        self.seen.clear()
        self.rebalanced = True

    def _handle_partition(
        self, partition: TopicPartition, records: Sequence[ConsumerRecord]
    ) -> int:
        """Queue the partition's records in order, in batches; stop at a region that is
        full (hold the partition there); commit what was handled. Returns records handled.
        On a Redis error the partition is rewound to its first record not queued."""
        chunks = [(record, self._decode(partition, record)) for record in records]
        done = 0
        try:
            while done < len(chunks) and not self.stop.is_set():
                advanced = self._queue_round(chunks[done:])
                if advanced == 0:  # the next chunk's region is full by its real depth
                    record, chunk = chunks[done]
                    self.backpressure.hold(partition, record.offset, chunk.region if chunk else "")
                    break
                done += advanced
        except Exception:
            self.seen.clear()  # claimed bits of numbers that may not be queued
            self.consumer.seek(partition, records[done].offset)
            self._commit(partition, records, done)
            raise
        self._commit(partition, records, done)
        return done

    def _commit(
        self, partition: TopicPartition, records: Sequence[ConsumerRecord], done: int
    ) -> None:
        """Commit the first ``done`` records (kept for a retry if Kafka fails)."""
        if not done:
            return
        self.uncommitted[partition] = OffsetAndMetadata(records[done - 1].offset + 1, "", -1)
        self._commit_uncommitted()

    def _commit_uncommitted(self) -> None:
        """Commit the offsets handled but not committed yet; keep them if Kafka fails."""
        if not self.uncommitted:
            return
        try:
            self.consumer.commit(dict(self.uncommitted), timeout_ms=COMMIT_TIMEOUT_MS)
        except DEPENDENCY_ERRORS as exc:
            self.metrics.failures.failures.labels("commit", "kafka").inc()
            log.warning("offset commit failed, kept for the next step: %s", exc)
            return
        self.uncommitted.clear()

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

    def _apply_rebalance(self) -> None:
        """After a rebalance: forget uncommitted offsets and holds of partitions no longer
        ours, hold the still-assigned ones again."""
        if not self.rebalanced:
            return
        self.rebalanced = False
        assignment = self.consumer.assignment()
        for partition in list(self.uncommitted):
            if partition not in assignment:
                del self.uncommitted[partition]
        self.backpressure.after_rebalance(assignment)
