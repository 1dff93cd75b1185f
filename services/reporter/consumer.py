"""The reporter's consumer loop: outcome events from Kafka into the aggregator, checkpointed.

One reporter owns the whole outcomes topic: it assigns itself every partition (no group
rebalancing, so its in-memory state is never split) and seeks to the offsets stored with
its checkpoint, or to the beginning when there is none or on ``--rebuild``.

Partitions come from the consumer's metadata, never from one read at start: a read made
while the topic is being created (by this reporter or, in the same second, by an
assigner) can come back empty, and a reporter that assigned itself that empty set used
to sit on no partition, ready and with lag 0, until restarted. Now it is not ready until
it holds at least one partition (it re-reads every :data:`PARTITION_WAIT_SECONDS`), and
every refresh re-reads the partition set from the metadata cache, which the client
renews every :data:`METADATA_MAX_AGE_MS`: partitions added to the topic later are
assigned (from their start) without a restart. After each
batch it adds the batch's volunteers to the HyperLogLogs; every
:data:`CHECKPOINT_INTERVAL_SECONDS` it saves state + offsets in one Redis transaction
(incremental, without holding readers: :mod:`phonebank.reporter.checkpoint`), then
commits the same offsets to the reporter group (for lag dashboards). Run one replica.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from phonebank.domain import clock
from phonebank.domain.records import OutcomeEvent
from phonebank.infra.kafka import ensure_topic, make_consumer
from phonebank.infra.metrics import is_code
from phonebank.infra.redis_client import connect
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme, ReporterKeys
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.checkpoint import Checkpoint, CheckpointStore
from phonebank.reporter.status import ReporterStatus
from phonebank.reporter.volunteers import ActiveVolunteers
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: milliseconds one poll waits for records
POLL_TIMEOUT_MS = 500
#: records taken in one poll
MAX_POLL_RECORDS = 5000
#: events applied per hold of readers' lock (a reader waits at most one such chunk)
APPLY_CHUNK_EVENTS = 500
#: seconds between two checkpoints (only when something changed)
CHECKPOINT_INTERVAL_SECONDS = 5.0
#: seconds between two refreshes of the Redis-derived figures, the partitions and the lag
REFRESH_INTERVAL_SECONDS = 5.0
#: milliseconds after which the consumer renews its topic metadata (partitions added to
#: the topic are assigned within about this long plus one refresh)
METADATA_MAX_AGE_MS = 10_000
#: seconds between two reads of the topic's partitions while the reporter holds none
PARTITION_WAIT_SECONDS = 1.0


def _now_ms() -> int:
    return clock.now_ms()


class ReporterService:
    """Consumes ``settings.outcomes_topic`` into a :class:`ReporterStatus`."""

    def __init__(self, settings: Settings, *, rebuild: bool = False) -> None:
        self.settings = settings
        self.topic = settings.outcomes_topic
        self.rebuild = rebuild
        self.redis = connect(settings)
        self.keys = ReporterKeys(settings.key_prefix, settings.campaign)
        self.ingested_key = KeyScheme(settings.key_prefix, settings.campaign).ingested
        self.store = CheckpointStore(self.redis, self.keys)
        self.volunteers = ActiveVolunteers(self.redis, self.keys)
        self.status = ReporterStatus(settings.campaign, Aggregator(settings.lease_max_expiries))
        self.offsets: dict[int, int] = {}
        self._dirty = False
        self._last_checkpoint = 0.0
        self._last_refresh = 0.0
        self._partitions: list[TopicPartition] = []

    # --- start ---------------------------------------------------------------------------

    def _load(self) -> None:
        if self.rebuild:
            log.info("rebuilding the report from the start of %s", self.topic)
            self.store.clear()
            return
        checkpoint = self.store.load(self.topic)
        if checkpoint is None:
            log.info("no checkpoint; reading %s from the start", self.topic)
            return
        self.status.aggregator = checkpoint.aggregator
        self.offsets = checkpoint.offsets
        log.info(
            "resumed from checkpoint: %d events, offsets %s",
            checkpoint.aggregator.applied,
            checkpoint.offsets,
        )

    def open_consumer(self) -> KafkaConsumer:
        """Load the checkpoint, create the topic if needed, assign the partitions known so
        far (possibly none yet: :meth:`wait_for_partitions`)."""
        self._load()
        try:
            ensure_topic(self.settings, self.topic, self.settings.outcomes_partitions)
        except KafkaError as exc:  # another process may create it; we wait for it
            log.warning("could not ensure topic %s: %s", self.topic, exc)
        consumer = make_consumer(
            self.settings, self.settings.reporter_group, metadata_max_age_ms=METADATA_MAX_AGE_MS
        )
        self.sync_partitions(consumer)
        return consumer

    def sync_partitions(self, consumer: KafkaConsumer) -> list[int]:
        """Assign every partition the metadata knows and this reporter does not hold yet;
        seek each to its checkpointed offset (or the start). Return the partitions added."""
        try:
            known = consumer.partitions_for_topic(self.topic) or set()
        except KafkaError as exc:
            log.warning("partitions of %s not read: %s", self.topic, exc)
            return []
        held = {tp.partition for tp in self._partitions}
        added = sorted(set(known) - held)
        if not added:
            return []
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(held | set(known))]
        consumer.assign(self._partitions)
        for number in added:
            partition = TopicPartition(self.topic, number)
            if number in self.offsets:
                consumer.seek(partition, self.offsets[number])
            else:
                consumer.seek_to_beginning(partition)
        self.status.partitions = len(self._partitions)
        log.info("assigned partitions %s of %s (%d held)", added, self.topic, len(self._partitions))
        return added

    def wait_for_partitions(self, consumer: KafkaConsumer, stop: threading.Event) -> bool:
        """Re-read the partitions until at least one is held; False if stopped first.
        Stays alive for /healthz meanwhile, and not ready."""
        while not self._partitions:
            log.warning("no partition of %s in the metadata yet; not ready", self.topic)
            self.status.beat()
            if stop.wait(PARTITION_WAIT_SECONDS):
                return False
            self.sync_partitions(consumer)
        return True

    # --- loop ----------------------------------------------------------------------------

    def poll_once(self, consumer: KafkaConsumer) -> int:
        """Read one batch and count it; return the records read."""
        batch = consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS)
        events: list[OutcomeEvent] = []
        invalid = read = 0
        for partition, records in batch.items():
            for record in records:
                try:
                    event = OutcomeEvent.decode(record.value)
                except ValidationError:
                    invalid += 1
                    continue
                if is_code(event.region):
                    events.append(event)
                else:  # a region that could leak data into a label is refused
                    invalid += 1
            read += len(records)
            self.offsets[partition.partition] = records[-1].offset + 1
        if not read:
            return 0
        if invalid:
            log.warning("skipped %d outcome records that were not valid events", invalid)
        self.count(events, invalid)
        self.status.aggregator.numbers.merge_if_large()  # outside readers' lock
        self._dirty = True
        try:
            self.volunteers.record(events, _now_ms())
        except redis.RedisError as exc:
            log.warning("active-volunteer counts not updated: %s", exc)
        return read

    def count(self, events: list[OutcomeEvent], invalid: int) -> None:
        """Apply ``events`` in chunks of :data:`APPLY_CHUNK_EVENTS`, taking readers' lock
        per chunk; publish the new report, then wake :meth:`ReporterStatus.wait_applied`."""
        status = self.status
        for start in range(0, len(events), APPLY_CHUNK_EVENTS):
            with status.lock:
                status.aggregator.apply_all(events[start : start + APPLY_CHUNK_EVENTS])
        with status.lock:
            status.invalid += invalid
            status.version += 1
        status.publish()
        with status.lock:
            status.changed.notify_all()

    def checkpoint(self, consumer: KafkaConsumer, *, force: bool = False) -> bool:
        """Save state + offsets if changed and due (or ``force``: now, and whole); True
        if saved. A round of a full rewrite (:class:`CheckpointStore`) is due at once
        after the previous one, and answers False until the last.

        Readers are held only while old per-hour counts are pruned: the encoding and the
        write read the aggregator unlocked, which is safe because only this thread
        mutates it."""
        due = time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL_SECONDS
        if not self._dirty or not (due or force or self.store.rewriting):
            return False
        with self.status.lock:
            self.status.aggregator.prune()
        snapshot = Checkpoint(self.topic, self.status.aggregator, dict(self.offsets))
        try:
            if not self.store.save(snapshot, whole=force):
                return False
        except redis.RedisError as exc:
            self.status.checkpoints_failed += 1
            log.warning("checkpoint failed, will retry: %s", exc)
            return False
        self._dirty = False
        self._last_checkpoint = time.monotonic()
        self.status.checkpoints_ok += 1
        self.status.last_checkpoint_s = time.time()
        try:  # for lag dashboards only: the checkpoint holds the authoritative offsets
            consumer.commit(
                {
                    TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                    for p, o in snapshot.offsets.items()
                }
            )
        except KafkaError as exc:
            log.warning("offsets not committed to Kafka (checkpoint saved): %s", exc)
        return True

    def refresh(self, consumer: KafkaConsumer, *, force: bool = False) -> None:
        """Re-read ingested counts and active volunteers from Redis, and the consumer lag."""
        if not force and time.monotonic() - self._last_refresh < REFRESH_INTERVAL_SECONDS:
            return
        self._last_refresh = time.monotonic()
        self.sync_partitions(consumer)
        try:
            raw = self.redis.hgetall(self.ingested_key)
            self.status.ingested = {reply_text(k): int(v) for k, v in raw.items()}
            (self.status.volunteers_active_15m, self.status.volunteers_active_24h) = (
                self.volunteers.counts(_now_ms())
            )
        except redis.RedisError as exc:
            log.warning("report inputs not refreshed from Redis: %s", exc)
        self.status.version += 1
        self.status.publish()
        try:
            ends = consumer.end_offsets(self._partitions)
        except KafkaError as exc:
            log.warning("consumer lag not measured: %s", exc)
            return
        self.status.consumer_lag = sum(
            max(0, end - self.offsets.get(tp.partition, 0)) for tp, end in ends.items()
        )

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; checkpoint and close on the way out."""
        consumer = self.open_consumer()
        try:
            if not self.wait_for_partitions(consumer, stop):
                return
            self.refresh(consumer, force=True)
            self.status.ready_event.set()
            while not stop.is_set():
                self.poll_once(consumer)
                self.checkpoint(consumer)
                self.refresh(consumer)
                self.status.beat()
            self.checkpoint(consumer, force=True)
        finally:
            self.status.ready_event.clear()
            consumer.close()
            self.redis.close()
