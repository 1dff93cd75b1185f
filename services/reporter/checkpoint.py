"""Checkpoints: the aggregate state, its per-number states and the Kafka offsets they
reflect, written together in one Redis transaction, incrementally.

Two keys in one hash slot: :attr:`ReporterKeys.checkpoint` holds the small part (the
counters, per-hour and per-guideline counts, recent event ids, the offsets; zlib JSON)
and :attr:`ReporterKeys.checkpoint_numbers` the per-number states, one field per segment
of the key space (:mod:`phonebank.reporter.number_states`). A checkpoint rewrites only
the segments changed since the previous one, and the small part, in one ``MULTI``/
``EXEC``: atomic, so after a crash the reporter reloads a state and resumes from exactly
the offsets that state had consumed — nothing counted twice, nothing skipped. The first
checkpoint of a process that did not load one also deletes the segments hash (stale
segments of a checkpoint it did not use). Kafka's committed offsets for the reporter
group are written afterwards for lag monitoring only; the checkpoint is the authority.
``--rebuild`` ignores (and later overwrites) the checkpoint and reads the topic from the
start. A checkpoint of another version (version 1 kept every number in the one JSON
value, version 2 stored segments of 2**20 keys) is not read: the reporter recounts
from the start of the topic, which is correct.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import zstandard

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import ReporterKeys
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.number_states import ZSTD_LEVEL

log = logging.getLogger(__name__)

#: format version of the checkpoint document; a different one is ignored (rebuild)
CHECKPOINT_VERSION = 3
#: zlib level: fast, the blob is rewritten every few seconds
COMPRESSION_LEVEL = 1
#: segments per HSET inside the checkpoint's MULTI: each command is packed by one C call
#: holding the interpreter lock, so a full rewrite in one HSET would hold readers for
#: tens of milliseconds (the MULTI keeps the whole write atomic)
HSET_FIELDS = 1000


class CheckpointFormatError(ValueError):
    """A stored checkpoint that cannot be used as it is; says why."""


@dataclass
class Checkpoint:
    """An aggregator and, per partition of its topic, the next offset to read."""

    topic: str
    aggregator: Aggregator
    offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EncodedCheckpoint:
    """What one save writes: the small document and the changed segments."""

    document: bytes
    segments: dict[int, bytes]


def encode(checkpoint: Checkpoint, segments: list[int]) -> EncodedCheckpoint:
    """The stored form of ``checkpoint``, with the per-number ``segments`` named.

    Reads the aggregator without its lock: call it from the one thread that mutates it,
    after :meth:`Aggregator.prune` under the lock (readers never mutate)."""
    numbers = checkpoint.aggregator.numbers
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    blobs = numbers.encode_segments(segments, compressor)
    document = {
        "version": CHECKPOINT_VERSION,
        "topic": checkpoint.topic,
        "offsets": {str(p): o for p, o in checkpoint.offsets.items()},
        "numbers": len(numbers),
        "state": checkpoint.aggregator.to_state(),
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    return EncodedCheckpoint(zlib.compress(text, COMPRESSION_LEVEL), blobs)


def decode(blob: bytes, segments: dict[int, bytes], topic: str) -> Checkpoint | None:
    """The checkpoint in ``blob`` + ``segments``, or None if of another version or topic;
    raises :class:`CheckpointFormatError` if the segments do not match the document."""
    document: dict[str, Any] = json.loads(zlib.decompress(blob))
    if document.get("version") != CHECKPOINT_VERSION or document.get("topic") != topic:
        return None
    aggregator = Aggregator.from_state(document["state"])
    aggregator.numbers.load_segments(segments)
    if len(aggregator.numbers) != int(document["numbers"]):
        raise CheckpointFormatError(
            f"checkpoint names {document['numbers']} numbers, its segments hold "
            f"{len(aggregator.numbers)}"
        )
    return Checkpoint(
        topic=topic,
        aggregator=aggregator,
        offsets={int(p): int(o) for p, o in document["offsets"].items()},
    )


class CheckpointStore:
    """Loads and saves the reporter's checkpoint in Redis."""

    def __init__(self, client: RedisClient, keys: ReporterKeys) -> None:
        self.redis = client
        self.key = keys.checkpoint
        self.numbers_key = keys.checkpoint_numbers
        #: whether the segments hash holds this process's state (loaded or written once)
        self._owned = False

    def load(self, topic: str) -> Checkpoint | None:
        """The saved checkpoint for ``topic``, or None if there is none (or not usable)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.key)
        pipe.hgetall(self.numbers_key)
        blob, fields = pipe.execute()
        if not isinstance(blob, bytes):
            return None
        segments = {int(name): value for name, value in fields.items()}
        try:
            checkpoint = decode(blob, segments, topic)
        except (ValueError, KeyError, zlib.error) as exc:  # CheckpointFormatError too
            log.error("checkpoint not usable, recounting from the start: %s", exc)
            return None
        self._owned = checkpoint is not None
        return checkpoint

    def save(self, checkpoint: Checkpoint) -> int:
        """Write the small document and the changed segments in one transaction; return
        the bytes written. The first save of a state not loaded rewrites every segment."""
        numbers = checkpoint.aggregator.numbers
        if not self._owned:
            numbers.mark_all_dirty()
        dirty = numbers.take_dirty()
        try:
            encoded = encode(checkpoint, dirty)
            pipe = self.redis.pipeline(transaction=True)
            if not self._owned:
                pipe.unlink(self.numbers_key)  # freed in the background
            fields = list(encoded.segments.items())
            for start in range(0, len(fields), HSET_FIELDS):  # short commands: see HSET_FIELDS
                chunk = dict(fields[start : start + HSET_FIELDS])
                pipe.hset(self.numbers_key, mapping=chunk)  # type: ignore[arg-type]
            pipe.set(self.key, encoded.document)
            pipe.execute()
        except BaseException:
            numbers.restore_dirty(dirty)  # written next time
            raise
        self._owned = True
        return len(encoded.document) + sum(len(b) for b in encoded.segments.values())

    def clear(self) -> None:
        """Forget the checkpoint (for a rebuild)."""
        self.redis.delete(self.key, self.numbers_key)
        self._owned = False
