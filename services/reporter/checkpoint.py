"""Checkpoints: the aggregate state and the Kafka offsets it reflects, in one Redis value.

State and offsets are written together by one ``SET`` (atomic), so after a crash the
reporter reloads a state and resumes from exactly the offsets that state had consumed:
nothing is counted twice and nothing is skipped. Kafka's committed offsets for the
reporter group are written afterwards for lag monitoring only; the checkpoint is the
authority. ``--rebuild`` ignores (and later overwrites) the checkpoint and reads the
topic from the start.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import ReporterKeys
from phonebank.reporter.aggregate import Aggregator

#: format version of the checkpoint document; a different one is ignored (rebuild)
CHECKPOINT_VERSION = 1
#: zlib level: fast, the blob is rewritten every few seconds
COMPRESSION_LEVEL = 1


@dataclass
class Checkpoint:
    """An aggregator and, per partition of its topic, the next offset to read."""

    topic: str
    aggregator: Aggregator
    offsets: dict[int, int] = field(default_factory=dict)


def encode(checkpoint: Checkpoint) -> bytes:
    """The stored form: zlib-compressed JSON."""
    document = {
        "version": CHECKPOINT_VERSION,
        "topic": checkpoint.topic,
        "offsets": {str(p): o for p, o in checkpoint.offsets.items()},
        "state": checkpoint.aggregator.to_state(),
    }
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), COMPRESSION_LEVEL)


def decode(blob: bytes, topic: str) -> Checkpoint | None:
    """The checkpoint in ``blob``, or None if it is of another version or topic."""
    document = json.loads(zlib.decompress(blob))
    if document.get("version") != CHECKPOINT_VERSION or document.get("topic") != topic:
        return None
    return Checkpoint(
        topic=topic,
        aggregator=Aggregator.from_state(document["state"]),
        offsets={int(p): int(o) for p, o in document["offsets"].items()},
    )


class CheckpointStore:
    """Loads and saves the reporter's checkpoint in Redis."""

    def __init__(self, client: RedisClient, keys: ReporterKeys) -> None:
        self.redis = client
        self.key = keys.checkpoint

    def load(self, topic: str) -> Checkpoint | None:
        """The saved checkpoint for ``topic``, or None if there is none (or not usable)."""
        blob = self.redis.get(self.key)
        if not isinstance(blob, bytes):
            return None
        return decode(blob, topic)

    def save(self, checkpoint: Checkpoint) -> int:
        """Write the checkpoint atomically; return its size in bytes."""
        blob = encode(checkpoint)
        self.redis.set(self.key, blob)
        return len(blob)

    def clear(self) -> None:
        """Forget the checkpoint (for a rebuild)."""
        self.redis.delete(self.key)
