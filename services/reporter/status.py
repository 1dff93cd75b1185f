"""The reporter's shared live state: the aggregator behind a lock, plus service health.

The consumer thread mutates it; HTTP handler threads read it. Everything an HTTP request
needs is in memory here (Redis-derived figures are refreshed by the consumer loop), so a
scrape or a page view never waits on Redis or Kafka.

Readers are served a precomputed report: after each batch (and each refresh of the
Redis-derived inputs) the consumer thread bumps :attr:`ReporterStatus.version` and
publishes (:meth:`~ReporterStatus.publish`) the ``/report.json`` document; a reader takes the
published one without any lock while it is current (same version, at most
:data:`REPORT_MAX_AGE_SECONDS` old: its rates and ``generated_at`` move with the clock)
and builds one under the lock only otherwise. The lock is held by the consumer only
while it applies a chunk of events or prunes, never during a checkpoint's encoding and
write, so a reader waits at most one chunk.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from phonebank.domain import clock
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.report import ReportInputs, build_report

#: seconds without a consumer-loop heartbeat after which /healthz fails
HEARTBEAT_STALE_SECONDS = 60.0
#: seconds a published report is served before a reader builds a newer one
REPORT_MAX_AGE_SECONDS = 1.0


@dataclass
class ReporterStatus:
    """Aggregator, Redis-derived inputs and health of one reporter process."""

    campaign: str
    aggregator: Aggregator
    lock: threading.Lock = field(default_factory=threading.Lock)
    ingested: dict[str, int] = field(default_factory=dict)
    volunteers_active_15m: int = 0
    volunteers_active_24h: int = 0
    invalid: int = 0
    checkpoints_ok: int = 0
    checkpoints_failed: int = 0
    last_checkpoint_s: float = 0.0
    consumer_lag: int | None = None
    #: partitions of the topic the consumer holds (every one the metadata knows)
    partitions: int = 0
    ready_event: threading.Event = field(default_factory=threading.Event)
    heartbeat_s: float = field(default_factory=time.monotonic)
    #: bumped by the consumer thread whenever an input of the report changes
    version: int = 0
    #: notified (under ``lock``) after every batch is counted
    changed: threading.Condition = field(init=False)
    #: (monotonic seconds, version, document) of the last report built
    _published: tuple[float, int, dict[str, Any]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    @property
    def ready(self) -> bool:
        """True once the state is loaded and the consumer holds at least one partition
        (a reporter on no partition of its topic counts nothing: never ready)."""
        return self.ready_event.is_set() and self.partitions > 0

    def beat(self) -> None:
        """The consumer loop is alive."""
        self.heartbeat_s = time.monotonic()

    def healthy(self) -> bool:
        """True while the consumer loop has beaten recently."""
        return time.monotonic() - self.heartbeat_s < HEARTBEAT_STALE_SECONDS

    def publish(self) -> None:
        """Build the report now for the readers (call from the consumer thread, the one
        that mutates the aggregator: it reads it without the lock)."""
        self._published = (time.monotonic(), self.version, self._build(clock.now_ms()))

    def report(self, now_ms: int | None = None) -> dict[str, Any]:
        """The ``/report.json`` document as of now (or ``now_ms``); treat it as read-only
        (the same document is served to every reader while it is current)."""
        if now_ms is not None:
            with self.lock:
                return self._build(now_ms)
        published = self._published
        if (
            published is not None
            and published[1] == self.version
            and time.monotonic() - published[0] <= REPORT_MAX_AGE_SECONDS
        ):
            return published[2]
        with self.lock:
            built = (time.monotonic(), self.version, self._build(clock.now_ms()))
        self._published = built
        return built[2]

    def _build(self, now_ms: int) -> dict[str, Any]:
        inputs = ReportInputs(
            campaign=self.campaign,
            now_ms=now_ms,
            ingested=dict(self.ingested),
            volunteers_active_15m=self.volunteers_active_15m,
            volunteers_active_24h=self.volunteers_active_24h,
        )
        document = build_report(self.aggregator, inputs)
        document["events"]["invalid"] = self.invalid
        return document
