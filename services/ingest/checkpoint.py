"""Checkpoints: how far each source got, so a run can resume or skip it.

One JSON file per (source content, destination): the content id (hash of the file and
column choice), the position (lines or CSV records consumed), the next chunk sequence,
the tally so far, and ``done``. A checkpoint is written only after every chunk of the
lines before its position was acknowledged by Kafka (``acks=all``), atomically
(temporary file + rename), so after ``kill -9`` the next run resumes at the last
checkpoint and loses no line; chunks sent after it are sent again and absorbed by the
downstream dedupe. The destination (brokers, topic, campaign) is part of the key: the
same file ingested into another campaign is not skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Default folder of checkpoint files (relative to the working directory).
DEFAULT_CHECKPOINT_DIR = Path(".phonebank") / "ingest-checkpoints"
#: Version of the checkpoint file layout.
CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """Progress of one source into one destination."""

    content_id: str
    source: str
    position: int = 0  #: lines (text) or records (CSV) consumed
    next_seq: int = 0  #: sequence number of the next chunk
    done: bool = False
    counts: dict[str, Any] = field(default_factory=dict)  #: Tally.to_dict() so far
    version: int = CHECKPOINT_VERSION


class CheckpointStore:
    """Checkpoint files in one folder, keyed by content id and destination."""

    def __init__(self, folder: Path, destination: str) -> None:
        self.folder = folder
        self.destination = destination

    def _path(self, content_id: str) -> Path:
        key = hashlib.sha256(f"{self.destination}\0{content_id}".encode()).hexdigest()[:32]
        return self.folder / f"{key}.json"

    def load(self, content_id: str, source: str) -> Checkpoint:
        """The saved checkpoint, or a fresh one (also when the file is unreadable)."""
        path = self._path(content_id)
        try:
            saved = json.loads(path.read_text())
            if saved.get("version") == CHECKPOINT_VERSION and saved["content_id"] == content_id:
                return Checkpoint(**saved)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return Checkpoint(content_id, source)

    def save(self, checkpoint: Checkpoint) -> None:
        """Write atomically: a reader sees the old or the new checkpoint, never half."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(checkpoint.content_id)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with temporary.open("w") as out:
            json.dump(asdict(checkpoint), out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
