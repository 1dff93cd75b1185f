"""The reporter's ``/metrics``: one collector that renders the report document as metrics.

Drawn from the same document as ``/report.json`` so the two never disagree. The same
registry also carries the figures of the shared Redis state
(:mod:`phonebank.reporter.redis_state`) and the consumer lag read from Kafka
(:mod:`phonebank.reporter.lag`): the reporter is their one exporter. Names are
the constants of :mod:`phonebank.infra.metrics`; labels are region, outcome and result
only. Guideline rates, the attempts-per-number distribution and the per-hour history
stay out of Prometheus (see docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from phonebank.domain.clock import DAY_SECONDS
from phonebank.infra import metrics as names
from phonebank.reporter.status import ReporterStatus

#: report field → (metric name, help) of the per-region gauges
_REGION_GAUGES = {
    "ingested": (names.COVERAGE_INGESTED, "Distinct numbers accepted into the campaign."),
    "attempted": (names.COVERAGE_ATTEMPTED, "Distinct numbers called at least once."),
    "reached": (names.COVERAGE_REACHED, "Distinct numbers reached."),
    "conversations": (names.COVERAGE_CONVERSATIONS, "Distinct numbers with a conversation."),
    "do_not_call": (names.COVERAGE_DO_NOT_CALL, "Distinct numbers that asked not to be called."),
    "retired": (names.COVERAGE_RETIRED, "Distinct numbers retired as bad numbers."),
    "parked": (names.COVERAGE_PARKED, "Distinct numbers parked after repeated expiries."),
    "coverage_ratio": (names.COVERAGE_RATIO, "Attempted / ingested."),
    "reach_ratio": (names.REACH_RATIO, "Reached / attempted."),
}


def _region_families(regions: list[dict[str, Any]]) -> Iterator[Metric]:
    for field, (name, text) in _REGION_GAUGES.items():
        family = GaugeMetricFamily(name, text, labels=["region"])
        for row in regions:
            family.add_metric([row["code"]], row[field])
        yield family
    remaining = GaugeMetricFamily(
        names.COVERAGE_REMAINING,
        "Projected seconds to attempt every ingested number.",
        labels=["region"],
    )
    outcomes = CounterMetricFamily(
        names.OUTCOMES, "Outcome events by outcome.", labels=["region", "outcome"]
    )
    for row in regions:
        if row["projected_days"] is not None:
            remaining.add_metric([row["code"]], row["projected_days"] * DAY_SECONDS)
        for outcome, count in row["outcomes"].items():
            outcomes.add_metric([row["code"], outcome], count)
    yield remaining
    yield outcomes


class ReporterCollector(Collector):
    """Collects the reporter's metrics from its live status at scrape time."""

    def __init__(self, status: ReporterStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status
        document = status.report()
        totals = document["totals"]
        yield from _region_families(document["regions"])
        yield GaugeMetricFamily(
            names.VOLUNTEERS_ACTIVE_15M,
            "Distinct volunteers, last 15 min.",
            value=totals["volunteers_active_15m"],
        )
        yield GaugeMetricFamily(
            names.VOLUNTEERS_ACTIVE_24H,
            "Distinct volunteers, last 24 h.",
            value=totals["volunteers_active_24h"],
        )
        events = CounterMetricFamily(
            names.REPORTER_EVENTS, "Outcome records read by result.", labels=["result"]
        )
        for result, count in document["events"].items():
            events.add_metric([result], count)
        yield events
        checkpoints = CounterMetricFamily(
            names.REPORTER_CHECKPOINTS, "Checkpoints by result.", labels=["result"]
        )
        checkpoints.add_metric(["ok"], status.checkpoints_ok)
        checkpoints.add_metric(["error"], status.checkpoints_failed)
        yield checkpoints
        yield GaugeMetricFamily(
            names.REPORTER_LAST_CHECKPOINT,
            "Unix time of the last checkpoint.",
            value=status.last_checkpoint_s,
        )
        yield GaugeMetricFamily(
            names.REPORTER_LAST_EVENT,
            "Completion time of the newest event.",
            value=status.aggregator.last_event_ms / 1000,
        )


def make_registry(status: ReporterStatus, *extra: Collector) -> CollectorRegistry:
    """A registry holding the reporter's collector and ``extra`` ones (the Redis state and
    the Kafka lag); one per reporter, tests make several."""
    registry = CollectorRegistry()
    registry.register(ReporterCollector(status))
    for collector in extra:
        registry.register(collector)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
