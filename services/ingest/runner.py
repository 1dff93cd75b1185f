"""One ingest run over its sources: classify, report, chunk to Kafka, checkpoint, summarise.

A dry run classifies and writes the JSON Lines report (and rejects, if asked) but
touches neither Kafka nor checkpoints. A real run sends accepted numbers as chunks and
checkpoints each source every :data:`CHECKPOINT_LINES` lines or
:data:`CHECKPOINT_SECONDS`, after flushing every partial chunk and waiting for Kafka's
acknowledgements. A source whose checkpoint says done is skipped and sends nothing.

Duplicates are "seen earlier in this run" (across all its sources); a resumed source
does not remember numbers seen before the interruption — the assigner's dedupe absorbs
any repeat. The summary always has accepted + duplicate + rejected = lines.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.regions import select_regions
from phonebank.ingest.checkpoint import Checkpoint, CheckpointStore
from phonebank.ingest.chunks import DEFAULT_CHUNK_SIZE, Chunker, ChunkSink
from phonebank.ingest.classify import ACCEPTED, Classifier
from phonebank.ingest.metrics import IngestProgress
from phonebank.ingest.progress import Progress
from phonebank.ingest.report import Tally, write_dry_run, write_rejects
from phonebank.ingest.sources import Source, content_id, expand, read_blocks
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: lines between checkpoints of a source
CHECKPOINT_LINES = 2_000_000
#: seconds between checkpoints of a source
CHECKPOINT_SECONDS = 15.0


@dataclass
class IngestOptions:
    """What one run reads and writes."""

    sources: list[str]
    column: str | None = None
    dry_run: bool = False
    report: TextIO | None = None  #: dry-run JSON Lines output
    rejects: Path | None = None
    checkpoint_dir: Path = Path(".phonebank/ingest-checkpoints")
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: lines between checkpoints (a kill -9 re-sends at most this many)
    checkpoint_lines: int = CHECKPOINT_LINES
    progress: Progress = field(default_factory=Progress)


@dataclass
class SourceResult:
    """How one source went."""

    source: str
    content_id: str
    state: str  #: "ingested", "resumed", "already ingested" or "dry run"
    tally: Tally
    chunks: int = 0


class IngestRun:
    """Runs the sources of one command in order, sharing one classifier (and its dedupe)."""

    def __init__(
        self,
        settings: Settings,
        plan: NumberingPlan,
        options: IngestOptions,
        sink_factory: Callable[[], ChunkSink] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        allowed = select_regions(settings.regions_include, settings.regions_exclude)
        self.classifier = Classifier(plan, allowed)
        self.sink_factory = sink_factory
        self.results: list[SourceResult] = []
        #: live counts for /metrics (this process's work only)
        self.progress = IngestProgress()
        destination = f"{settings.kafka_bootstrap_servers}|{settings.numbers_topic}"
        self.store = CheckpointStore(options.checkpoint_dir, f"{destination}|{settings.campaign}")

    def run(self) -> dict[str, Any]:
        """Ingest every source; the summary (counts by status, reason, region)."""
        started = time.monotonic()
        sources = expand(self.options.sources)
        sink = None if self.options.dry_run or self.sink_factory is None else self.sink_factory()
        with contextlib.ExitStack() as stack:
            rejects = None
            if self.options.rejects is not None:
                self.options.rejects.parent.mkdir(parents=True, exist_ok=True)
                rejects = stack.enter_context(self.options.rejects.open("ab"))
            for source in sources:
                self.results.append(self._run_source(source, sink, rejects))
                self.progress.chunks_sent += self.results[-1].chunks
            if sink is not None:
                sink.close()
        self.progress.finish()
        return self.summary(time.monotonic() - started)

    def _run_source(
        self, source: Source, sink: ChunkSink | None, rejects: BinaryIO | None
    ) -> SourceResult:
        if sink is None:
            tally = Tally()
            self._classify(source, 0, tally, rejects, None)
            return SourceResult(source.name, "", "dry run", tally)
        ident = content_id(source, self.options.column)
        checkpoint = self.store.load(ident, source.name)
        if checkpoint.done:
            log.info("%s: already ingested (checkpoint %s), sending nothing", source.name, ident)
            return SourceResult(source.name, ident, "already ingested", Tally())
        state = "resumed" if checkpoint.position else "ingested"
        if checkpoint.position:
            log.info("%s: resuming after %d lines", source.name, checkpoint.position)
        tally = Tally.from_dict(checkpoint.counts)
        chunker = Chunker(
            sink, self.settings.campaign, ident, checkpoint.next_seq, self.options.chunk_size
        )
        self._classify(source, checkpoint.position, tally, rejects, (chunker, checkpoint))
        self._checkpoint(chunker, checkpoint, checkpoint.position, tally, done=True)
        return SourceResult(source.name, ident, state, tally, chunker.chunks_sent)

    def _classify(
        self,
        source: Source,
        skip: int,
        tally: Tally,
        rejects: BinaryIO | None,
        sending: tuple[Chunker, Checkpoint] | None,
    ) -> None:
        size = source.path.stat().st_size if source.path is not None else 0
        progress = self.options.progress
        progress.start(source.name, size, skip)
        lines, raw_read, last_saved, position = skip, 0, time.monotonic(), skip
        for block, result in self._classified(source, skip):
            tally.add(result)
            self.progress.tally.add(result)
            if self.options.report is not None:
                write_dry_run(self.options.report, source.name, block, result)
            if rejects is not None:
                write_rejects(rejects, source.name, block, result)
            lines, raw_read, position = lines + len(result), block.raw_read, block.position
            progress.update(lines, raw_read)
            if sending is None:
                continue
            accepted = result.status == ACCEPTED
            sending[0].add(result.national[accepted], result.region[accepted])
            due = time.monotonic() - last_saved > CHECKPOINT_SECONDS
            if due or position - sending[1].position >= self.options.checkpoint_lines:
                self._checkpoint(*sending, position, tally, done=False)
                last_saved = time.monotonic()
        if sending is not None:
            sending[1].position = position
        progress.finish(lines, raw_read)

    def _classified(self, source: Source, skip: int) -> Iterator[tuple[Any, Any]]:
        for block in read_blocks(source, self.options.column, skip):
            yield block, self.classifier.classify(block.data, block.unparseable)

    def _checkpoint(
        self, chunker: Chunker, checkpoint: Checkpoint, position: int, tally: Tally, *, done: bool
    ) -> None:
        chunker.flush()
        chunker.sink.flush()
        checkpoint.position = position
        checkpoint.next_seq = chunker.next_seq
        checkpoint.counts = tally.to_dict()
        checkpoint.done = done
        self.store.save(checkpoint)

    def summary(self, seconds: float) -> dict[str, Any]:
        """Counts of the run (whole sources, also the parts done before a resume)."""
        total = Tally()
        for result in self.results:
            total.merge(result.tally)
        summary: dict[str, Any] = {"dry_run": self.options.dry_run, **total.to_dict()}
        summary["chunks"] = sum(result.chunks for result in self.results)
        summary["seconds"] = round(seconds, 3)
        summary["lines_per_second"] = round(total.lines / seconds) if seconds > 0 else 0
        summary["dedupe_pages"] = self.classifier.seen.pages
        summary["sources"] = [
            {
                "source": r.source,
                "id": r.content_id,
                "state": r.state,
                "lines": r.tally.lines,
                "chunks": r.chunks,
            }
            for r in self.results
        ]
        return summary
