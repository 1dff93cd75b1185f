"""The ingest job's Prometheus metrics: live on ``/metrics`` during a run, and as a file.

``phonebank_ingest_numbers_total{result,reason}`` (result accepted|duplicate|rejected;
reason the reject code, ``none`` otherwise), ``phonebank_ingest_chunks_total{result}``
and ``phonebank_ingest_last_success_timestamp_seconds``. Ingest is a batch job: besides
the live endpoint (``PHONEBANK_INGEST_METRICS_PORT``), ``--metrics-out`` writes the final
exposition for the node_exporter textfile collector or a Pushgateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from phonebank.domain.normalize import REASONS
from phonebank.infra import metrics as names
from phonebank.ingest.classify import REJECTED, STATUSES
from phonebank.ingest.report import Tally

log = logging.getLogger(__name__)

#: ``reason`` label of numbers that were not rejected
NO_REASON = "none"


class IngestProgress:
    """What the run has done so far; the collector reads it at scrape time."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.chunks_sent = 0
        self.finished_at: float | None = None

    def finish(self) -> None:
        """Mark the run as finished without error, now."""
        self.finished_at = time.time()


class IngestCollector(Collector):
    """Turns :class:`IngestProgress` into the ingest series."""

    def __init__(self, progress: IngestProgress) -> None:
        self.progress = progress

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        tally = self.progress.tally
        numbers = CounterMetricFamily(
            names.INGEST_NUMBERS,
            "Numbers read, by result and reject reason.",
            labels=["result", "reason"],
        )
        for index, status in enumerate(STATUSES):
            if index != REJECTED:
                numbers.add_metric([status, NO_REASON], int(tally.status[index]))
        for index, reason in enumerate(REASONS):
            if tally.reason[index]:
                numbers.add_metric([STATUSES[REJECTED], reason], int(tally.reason[index]))
        yield numbers
        chunks = CounterMetricFamily(
            names.INGEST_CHUNKS, "Number chunks stored in Kafka.", labels=["result"]
        )
        chunks.add_metric(["ok"], self.progress.chunks_sent)
        yield chunks
        if self.progress.finished_at is not None:
            yield GaugeMetricFamily(
                names.INGEST_LAST_SUCCESS,
                "Unix time the last ingest run finished without error.",
                value=self.progress.finished_at,
            )


def ingest_registry(progress: IngestProgress) -> CollectorRegistry:
    """A registry holding only the ingest series."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(IngestCollector(progress))
    return registry


def write_metrics_file(registry: CollectorRegistry, path: Path) -> None:
    """Write the exposition atomically (textfile-collector style)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    log.info("ingest metrics written to %s", path)
