"""The outcomes relay: each region's Redis outcome stream → Kafka ``phonebank.outcomes``.

At least once: a batch is read with ``XRANGE``, produced (idempotent producer,
``acks=all``), flushed, and only the entries Kafka acknowledged are deleted from the
stream. A crash in between re-sends the batch; consumers dedupe by ``event_id``.
A per-region lock (``SET NX PX``, released by ``unlock-1.lua``: compare-and-delete, so a
relay whose lock expired never deletes the next owner's) keeps two assigner replicas from
relaying the same region at once; an entry that is not a valid event moves to the
region's dead-letter stream instead of blocking the relay or vanishing; that stream is
bounded (:data:`DEAD_LETTER_MAX_ENTRIES`, exact ``MAXLEN``) and its length is exported at
scrape time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import cast

from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from phonebank.domain.records import OutcomeEvent
from phonebank.infra import metrics as names
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.leases.queues import known_regions
from phonebank.leases.scripts import Scripts
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: stream entries relayed per batch (bounds memory and the XDEL argument list)
BATCH_ENTRIES = 500
#: milliseconds a relay holds a region's lock; longer than one batch's produce + flush
LOCK_TTL_MS = 30_000
#: seconds a flush may take before the batch is left for the next round
FLUSH_TIMEOUT_SECONDS = 30.0
#: entries a region's dead-letter stream keeps at most (the oldest are trimmed): a
#: misbehaving writer cannot fill Redis; the count is exported as a gauge per region
DEAD_LETTER_MAX_ENTRIES = 10_000

StreamEntry = tuple[bytes, dict[bytes, bytes]]


def relay_lock_key(keys: RegionKeys) -> str:
    """STRING: owner id of the relay currently moving this region's stream (region slot)."""
    return keys.relay_lock


def dead_letter_key(keys: RegionKeys) -> str:
    """STREAM: entries of the outcome stream that were not valid events (region slot)."""
    return f"{keys.outcomes}:dead"


class RelayMetrics:
    """The relay's counters, on the registry of the process that runs it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.relayed = Counter(
            names.OUTCOMES_RELAYED, "Outcome events relayed to Kafka.", registry=registry
        )
        self.dead = Counter(
            names.OUTCOMES_DEAD, "Stream entries that were not valid events.", registry=registry
        )
        self.last_success = Gauge(
            names.OUTCOMES_RELAY_LAST_SUCCESS,
            "Unix time of the last relay round that completed.",
            registry=registry,
        )


class OutcomeRelay:
    """Moves outcome events from every region's stream to Kafka."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        producer: KafkaProducer,
        metrics: RelayMetrics,
    ) -> None:
        self.settings = settings
        self.redis = client
        self.producer = producer
        self.metrics = metrics
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.owner = uuid.uuid4().hex
        self.scripts = Scripts(client)

    def relay_all(self) -> int:
        """One round over every known region; returns events relayed."""
        moved = 0
        for region in known_regions(self.redis, self.scheme):
            moved += self.relay_region(self.scheme.region(region))
        self.metrics.last_success.set(time.time())
        return moved

    def relay_region(self, keys: RegionKeys) -> int:
        """Relay one batch of one region if no other relay holds it; returns events relayed."""
        lock = relay_lock_key(keys)
        if not self.redis.set(lock, self.owner, nx=True, px=LOCK_TTL_MS):
            return 0
        try:
            entries = cast(list[StreamEntry], self.redis.xrange(keys.outcomes, count=BATCH_ENTRIES))
            return self._send(keys, entries) if entries else 0
        finally:
            self.scripts.run("unlock", keys, [self.owner])

    def _send(self, keys: RegionKeys, entries: Sequence[StreamEntry]) -> int:
        """Produce the entries, flush, and delete those Kafka acknowledged."""
        sent = []
        for entry_id, fields in entries:
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
            try:
                event = OutcomeEvent.model_validate(decoded)
            except ValidationError:
                self._dead_letter(keys, entry_id, fields)
                continue
            future = self.producer.send(
                self.settings.outcomes_topic, key=event.region.encode(), value=event.encode()
            )
            sent.append((entry_id, future))
        self.producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
        acknowledged = []
        for entry_id, future in sent:
            try:
                future.get(timeout=0)
            except KafkaError as exc:
                log.warning("outcome not acknowledged by Kafka, kept for retry: %s", exc)
                continue
            acknowledged.append(entry_id)
        if acknowledged:
            self.redis.xdel(keys.outcomes, *acknowledged)
            self.metrics.relayed.inc(len(acknowledged))
        return len(acknowledged)

    def _dead_letter(self, keys: RegionKeys, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        log.error(
            "outcome stream entry %s of %s is not a valid event: moved to %s",
            entry_id.decode(),
            keys.region,
            dead_letter_key(keys),
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(
            dead_letter_key(keys),
            fields,  # type: ignore[arg-type]
            maxlen=DEAD_LETTER_MAX_ENTRIES,
            approximate=False,
        )
        pipe.xdel(keys.outcomes, entry_id)
        pipe.execute()
        self.metrics.dead.inc()
