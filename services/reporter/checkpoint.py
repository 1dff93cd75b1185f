"""Checkpoints: the aggregate state, its per-number states and the Kafka offsets they
reflect, written together in one Redis transaction, incrementally.

Keys in one hash slot: :attr:`ReporterKeys.checkpoint` holds the small part (the
counters, per-hour and per-guideline counts, recent event ids, the offsets, and the
*generation* of the segments; zlib JSON) and a segments hash per generation
(:attr:`ReporterKeys.checkpoint_numbers`, then ``…:numbers:2``, ``…:3``) the per-number
states, one field per segment of the key space (:mod:`phonebank.reporter.number_states`).
A checkpoint rewrites only the segments changed since the previous one, and the small
part, in one ``MULTI``/``EXEC``: atomic, so after a crash the reporter reloads a state
and resumes from exactly the offsets that state had consumed — nothing counted twice,
nothing skipped.

A process that did not load a checkpoint (the first start, ``--rebuild``, a checkpoint
of another version) owns no segments yet: it writes every segment into the next
generation's hash, at most :data:`REWRITE_SEGMENTS_PER_ROUND` per periodic checkpoint
(each round ≤ 1 s at 10 M numbers; ``benchmarks/reporter_scale.py``), segments changed
meanwhile written again (after twice the rounds needed, the next writes all that is
left); the round that writes the last one also writes the small part
naming the new generation and deletes the old generation's hash. Until then the stored
checkpoint is the previous one, whole. A forced checkpoint (shutdown) writes everything
left at once. Kafka's committed offsets for the reporter group are written afterwards
for lag monitoring only; the checkpoint is the authority. ``--rebuild`` ignores (and
later replaces) the checkpoint and reads the topic from the start. A checkpoint of
another version (version 1 kept every number in the one JSON value, version 2 stored
segments of 2**20 keys) is not read: the reporter recounts from the start of the topic,
which is correct; version 3 is version 4 at generation 1.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any, cast

import zstandard

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import ReporterKeys
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.number_states import ZSTD_LEVEL, NumberStates

log = logging.getLogger(__name__)

#: format version of the checkpoint document; a different one is ignored (rebuild)
CHECKPOINT_VERSION = 4
#: the previous version: the same, its segments always in generation 1's hash
GENERATIONLESS_VERSION = 3
#: segments one periodic checkpoint writes at most while it rewrites every segment into
#: a new generation (count; ~60 ms of encoding and writing per 1,000 at 10 M numbers
#: called, which spread 10 M numbers over ~14,000 segments)
REWRITE_SEGMENTS_PER_ROUND = 4000
#: a full rewrite takes at most this many times the rounds its segments need; the round
#: after writes everything left (a rewrite racing a backlog still ends)
REWRITE_ROUNDS_FACTOR = 2
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


def encode(checkpoint: Checkpoint, segments: list[int], generation: int) -> EncodedCheckpoint:
    """The stored form of ``checkpoint``, with the per-number ``segments`` named, its
    segments in ``generation``'s hash.

    Reads the aggregator without its lock: call it from the one thread that mutates it,
    after :meth:`Aggregator.prune` under the lock (readers never mutate)."""
    return EncodedCheckpoint(
        encode_document(checkpoint, generation), encode_segments(checkpoint, segments)
    )


def encode_segments(checkpoint: Checkpoint, segments: list[int]) -> dict[int, bytes]:
    """The stored form of the per-number ``segments`` (see :func:`encode`)."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return checkpoint.aggregator.numbers.encode_segments(segments, compressor)


def encode_document(checkpoint: Checkpoint, generation: int) -> bytes:
    """The small part: zlib JSON of the tallies and offsets (see :func:`encode`)."""
    document = {
        "version": CHECKPOINT_VERSION,
        "generation": generation,
        "topic": checkpoint.topic,
        "offsets": {str(p): o for p, o in checkpoint.offsets.items()},
        "numbers": len(checkpoint.aggregator.numbers),
        "state": checkpoint.aggregator.to_state(),
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    return zlib.compress(text, COMPRESSION_LEVEL)


def read_document(blob: bytes) -> dict[str, Any]:
    """The stored document (zlib JSON); ``generation`` filled in for version 3."""
    document: dict[str, Any] = json.loads(zlib.decompress(blob))
    if document.get("version") == GENERATIONLESS_VERSION:
        document["version"], document["generation"] = CHECKPOINT_VERSION, 1
    return document


def decode(document: dict[str, Any], segments: dict[int, bytes], topic: str) -> Checkpoint | None:
    """The checkpoint in ``document`` + ``segments``, or None if of another version or
    topic; raises :class:`CheckpointFormatError` if the segments do not match it."""
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
        self._numbers_key = keys.checkpoint_numbers
        #: segments a periodic round of a full rewrite writes at most (tests lower it)
        self.segments_per_round = REWRITE_SEGMENTS_PER_ROUND
        #: the generation whose segments hold this process's state (loaded, or written
        #: whole once); None until then
        self._owned: int | None = None
        #: while rewriting every segment: (the stored generation, the one being written)
        self._rewrite: tuple[int, int] | None = None
        #: rounds the rewrite may still take before its next round writes everything left
        self._rounds_left = 0

    def numbers_key(self, generation: int) -> str:
        """The segments hash of ``generation`` (0 and 1: the version-3 key)."""
        return self._numbers_key if generation <= 1 else f"{self._numbers_key}:{generation}"

    @property
    def rewriting(self) -> bool:
        """Whether a full rewrite is under way (the stored checkpoint is the previous one)."""
        return self._rewrite is not None

    def load(self, topic: str) -> Checkpoint | None:
        """The saved checkpoint for ``topic``, or None if there is none (or not usable)."""
        try:
            document = self._stored_document()
            if document is None:
                return None
            generation = _generation(document)
            fields = self.redis.hgetall(self.numbers_key(generation))
            segments = {int(name): cast(bytes, value) for name, value in fields.items()}
            checkpoint = decode(document, segments, topic)
        except (ValueError, KeyError, TypeError, zlib.error) as exc:  # CheckpointFormatError too
            log.error("checkpoint not usable, recounting from the start: %s", exc)
            return None
        self._owned = generation if checkpoint is not None else None
        return checkpoint

    def save(self, checkpoint: Checkpoint, *, whole: bool = False) -> bool:
        """Write the changed segments and the small document in one transaction; True
        once the document is written. Without owned segments, a round of the full
        rewrite (:data:`REWRITE_SEGMENTS_PER_ROUND` segments; everything left when
        ``whole``), False until its last round."""
        numbers = checkpoint.aggregator.numbers
        if self._owned is None and self._rewrite is None:
            self._start_rewrite(numbers)
        limit = None if whole or self._rewrite is None else self.segments_per_round
        if self._rewrite is not None and self._rounds_left == 0:
            limit = None  # not converging: segments change as fast as rounds write them
        self._rounds_left = max(0, self._rounds_left - 1)
        dirty = numbers.take_dirty(limit)
        complete = self._rewrite is None or numbers.dirty_segments == 0
        generation = self._owned if self._rewrite is None else self._rewrite[1]
        assert generation is not None
        try:
            self._write(checkpoint, dirty, generation, complete)
        except BaseException:
            numbers.restore_dirty(dirty)  # written next time
            raise
        if complete:
            self._owned, self._rewrite = generation, None
        return complete

    def _start_rewrite(self, numbers: NumberStates) -> None:
        """Every segment into the generation after the stored one (its hash emptied)."""
        try:
            old = _generation(self._stored_document())
        except (ValueError, TypeError, zlib.error):
            log.warning("the stored checkpoint is unreadable: it is replaced")
            old = 1
        self.redis.unlink(self.numbers_key(old + 1))
        self._rewrite = (old, old + 1)
        numbers.mark_all_dirty()
        rounds = -(-numbers.dirty_segments // self.segments_per_round)
        self._rounds_left = REWRITE_ROUNDS_FACTOR * rounds

    def _write(self, checkpoint: Checkpoint, dirty: list[int], generation: int, done: bool) -> None:
        """The ``dirty`` segments; the document too (built only then) when ``done``."""
        target = self.numbers_key(generation)
        pipe = self.redis.pipeline(transaction=True)
        fields = list(encode_segments(checkpoint, dirty).items())
        for start in range(0, len(fields), HSET_FIELDS):  # short commands: see HSET_FIELDS
            pipe.hset(target, mapping=dict(fields[start : start + HSET_FIELDS]))
        if done:
            pipe.set(self.key, encode_document(checkpoint, generation))
            replaced = self.numbers_key(self._rewrite[0]) if self._rewrite else target
            if replaced != target:
                pipe.unlink(replaced)  # the previous generation, freed in the background
        pipe.execute()

    def stored_numbers_key(self) -> str:
        """The segments hash the stored checkpoint names (generation 1's without one)."""
        return self.numbers_key(_generation(self._stored_document()))

    def _stored_document(self) -> dict[str, Any] | None:
        blob = self.redis.get(self.key)
        return read_document(blob) if isinstance(blob, bytes) else None

    def clear(self) -> None:
        """Forget the checkpoint (for a rebuild)."""
        generations = {_generation(self._stored_document()), *(self._rewrite or ())}
        self.redis.delete(self.key, *{self.numbers_key(g) for g in generations})
        self._owned, self._rewrite = None, None


def _generation(document: dict[str, Any] | None) -> int:
    """The generation a stored document names (0 without a document: generation 0 and 1
    share the version-3 key)."""
    return int(document.get("generation", 0)) if document else 0
