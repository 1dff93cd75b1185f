"""Accepted numbers → number chunk records of one region each → Kafka.

The :class:`Chunker` buffers numbers per region and emits a chunk whenever a region has
``size`` numbers; :meth:`Chunker.flush` emits the partial ones (at checkpoints and at
the end of a source). Chunks carry the campaign, region, source id and a sequence number
that counts up across the source, also across resumes. A chunk is encoded once, straight
from its numpy slice, into the compact wire format (:mod:`phonebank.domain.chunk_codec`:
sorted, delta-coded, zstd; what :meth:`NumberChunk.decode` reads back).

The :class:`KafkaSink` sends them keyed by region to the partition of the stable
region→partition table (:func:`phonebank.infra.kafka.partition_for_region`), through the
shared idempotent ``acks=all`` producer, and raises on :meth:`KafkaSink.flush` if any
send failed, so no checkpoint is written past a lost chunk. Numbers Kafka stored are
counted per region in Redis (:attr:`KeyScheme.ingested`, the coverage denominator): a
crash between that count and the checkpoint counts the re-sent part twice; the exact
distinct count is the assigner's :attr:`KeyScheme.queued`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from phonebank.domain import chunk_codec
from phonebank.domain.numbering import REGION_CODES
from phonebank.infra.kafka import (
    ADMIN_RETRY_SECONDS,
    ensure_topic,
    make_producer,
    partition_for_region,
)
from phonebank.infra.redis_client import connect
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: numbers per chunk (a record of ~2.5 KB in the compact wire format)
DEFAULT_CHUNK_SIZE = 1000
#: seconds to wait for Kafka to acknowledge everything sent, at each checkpoint
FLUSH_TIMEOUT_SECONDS = 120
#: Producer settings of the ingest on top of the shared ones: no batch compression.
#: Each chunk is already compressed by its wire format (sorted deltas + zstd, ~2.5 bytes
#: a number, :mod:`phonebank.domain.chunk_codec`); kafka-python's gzip at level 9 in
#: Python capped the whole ingest at ~360k numbers/s on 2 cores (benchmarks/ingest.py).
INGEST_PRODUCER_OVERRIDES: dict[str, Any] = {"compression_type": None}

Int64Array = npt.NDArray[np.int64]
Int16Array = npt.NDArray[np.int16]


class IngestError(RuntimeError):
    """The run cannot go on (Kafka refused chunks); the message says why."""


@dataclass(frozen=True)
class EncodedChunk:
    """One chunk ready for Kafka: its record value and what the sink counts of it."""

    region: str
    seq: int
    count: int
    value: bytes


class ChunkSink(Protocol):
    """Where chunks go."""

    def send(self, chunk: EncodedChunk) -> None:
        """Queue one chunk."""

    def flush(self) -> None:
        """Wait until every queued chunk is stored; raise IngestError if one was not."""

    def close(self) -> None:
        """Release the connection."""


class Chunker:
    """Per-region buffers of accepted numbers, cut into chunks of ``size``."""

    def __init__(
        self,
        sink: ChunkSink,
        campaign: str,
        source_id: str,
        next_seq: int = 0,
        size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.sink = sink
        self.campaign = campaign
        self.source_id = source_id
        self.next_seq = next_seq
        self.size = size
        self.chunks_sent = 0
        self._buffers: dict[int, list[Int64Array]] = {}
        self._buffered: dict[int, int] = {}

    def add(self, nationals: Int64Array, regions: Int16Array) -> None:
        """Buffer accepted numbers with their region indexes; emit every full chunk."""
        order = np.argsort(regions, kind="stable")
        grouped, keys = nationals[order], regions[order]
        cuts = np.flatnonzero(np.diff(keys)) + 1
        for low, high in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(keys)].tolist(), strict=True):
            if high > low:
                self._buffer(int(keys[low]), grouped[low:high])

    def _buffer(self, region: int, numbers: Int64Array) -> None:
        self._buffers.setdefault(region, []).append(numbers)
        self._buffered[region] = self._buffered.get(region, 0) + len(numbers)
        if self._buffered[region] >= self.size:
            pending = np.concatenate(self._buffers[region])
            whole = len(pending) - len(pending) % self.size
            for start in range(0, whole, self.size):
                self._emit(region, pending[start : start + self.size])
            self._buffers[region] = [pending[whole:]]
            self._buffered[region] = len(pending) - whole

    def flush(self) -> None:
        """Emit every partial chunk."""
        for region, parts in self._buffers.items():
            if self._buffered[region]:
                self._emit(region, np.concatenate(parts))
        self._buffers.clear()
        self._buffered.clear()

    def _emit(self, region: int, numbers: Int64Array) -> None:
        code = REGION_CODES[region]
        value = chunk_codec.encode(self.campaign, code, self.source_id, self.next_seq, numbers)
        self.sink.send(EncodedChunk(code, self.next_seq, len(numbers), value))
        self.next_seq += 1
        self.chunks_sent += 1


class KafkaSink:
    """Sends chunks to the numbers topic (created if missing), keyed and partitioned by region."""

    def __init__(self, settings: Settings, **producer_overrides: Any) -> None:
        self.topic = settings.numbers_topic
        self.redis = connect(settings)
        self.ingested_key = KeyScheme(settings.key_prefix, settings.campaign).ingested
        ensure_topic(
            settings, self.topic, settings.numbers_partitions, retry_seconds=ADMIN_RETRY_SECONDS
        )
        self.producer = make_producer(
            settings, **{**INGEST_PRODUCER_OVERRIDES, **producer_overrides}
        )
        partitions = self.producer.partitions_for(self.topic) or set()
        self.partitions = len(partitions) or settings.numbers_partitions
        if self.partitions != settings.numbers_partitions:
            log.warning(
                "topic %s has %d partitions, settings say %d; using the topic's",
                self.topic,
                self.partitions,
                settings.numbers_partitions,
            )
        self._pending: list[tuple[str, int, Any]] = []

    def send(self, chunk: EncodedChunk) -> None:
        """Queue one chunk for its region's partition."""
        partition = partition_for_region(chunk.region, self.partitions)
        future = self.producer.send(
            self.topic, key=chunk.region.encode(), value=chunk.value, partition=partition
        )
        self._pending.append((chunk.region, chunk.count, future))

    def flush(self) -> None:
        """Wait for every acknowledgement, then count the stored numbers per region in
        Redis (the reporter's ``ingested``); raise IngestError naming the first failure."""
        self.producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
        stored: Counter[str] = Counter()
        failed = []
        for region, count, future in self._pending:
            if future.succeeded():
                stored[region] += count
            else:
                failed.append(future)
        self._pending.clear()
        if stored:
            pipe = self.redis.pipeline(transaction=False)
            for region, count in stored.items():
                pipe.hincrby(self.ingested_key, region, count)
            pipe.execute()
        if failed:
            raise IngestError(
                f"Kafka did not store {len(failed)} chunk(s): {failed[0].exception!r}"
            )

    def close(self) -> None:
        """Flush and close the producer."""
        self.producer.close()
        self.redis.close()
