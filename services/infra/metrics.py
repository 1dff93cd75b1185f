"""Metric names and conventions every phonebank service shares, and the /metrics server.

Every metric any service exposes is named here once (a constant) and described in
:data:`CATALOGUE`; ``docs/metrics.md`` is generated from the catalogue and the tests
check that the dashboard and alert rules use only catalogued names. Conventions
(DESIGN.md, "Observability"): one ``phonebank_`` prefix, base units in the name
(``_seconds``, ``_records``, ``_numbers``, ``_ratio``), ``_total`` for counters, and only
the labels in :data:`ALLOWED_LABELS` — never a phone number or a volunteer id.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    start_http_server,
)

#: prometheus_client's switch for the ``*_created`` series (the library leaves it untyped).
_disable_created_series: Callable[[], None] = disable_created_metrics
# phonebank exposes no ``*_created`` series: they are not in the catalogue, and every
# service imports this module before it makes a metric.
_disable_created_series()

#: The prefix of every phonebank metric name.
PREFIX = "phonebank_"
#: The only label names a phonebank metric may carry (plus ``le`` inside histograms).
ALLOWED_LABELS = frozenset({"region", "outcome", "operation", "result", "reason"})
#: Label values must look like codes; anything else (e.g. a phone number) is refused.
_LABEL_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:@-]{0,63}$")
#: digits from which a label value could be (part of) a phone number
_MAX_DIGITS = 7
#: a metric name in a PromQL expression or an exposition
_METRIC_NAME = re.compile(r"\bphonebank_[a-z0-9_]+")
#: series suffixes of one histogram
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

# --- ingest -----------------------------------------------------------------------------
INGEST_NUMBERS = "phonebank_ingest_numbers_total"
INGEST_CHUNKS = "phonebank_ingest_chunks_total"
INGEST_LAST_SUCCESS = "phonebank_ingest_last_success_timestamp_seconds"
# --- assigner ---------------------------------------------------------------------------
ASSIGNER_NUMBERS = "phonebank_assigner_numbers_total"
QUEUE_READY = "phonebank_queue_ready_numbers"
QUEUE_DUE = "phonebank_queue_due_numbers"
NUMBERS_PARKED = "phonebank_queue_parked_numbers"
REGION_OPEN = "phonebank_region_open"
PARTITIONS_PAUSED = "phonebank_partitions_paused"
CONSUMER_LAG = "phonebank_consumer_lag_records"
ASSIGNER_MALFORMED = "phonebank_assigner_malformed_records_total"
# --- leases (lease client, gateway, reaper, relay) --------------------------------------
LEASES_ACTIVE = "phonebank_leases_active"
LEASES_GRANTED = "phonebank_leases_granted_total"
LEASE_EXPIRIES = "phonebank_lease_expiries_total"
LEASE_OLDEST_AGE = "phonebank_lease_oldest_age_seconds"
LEASE_RECLAIM_LAG = "phonebank_lease_reclaim_lag_seconds"
LEASE_OPERATION_SECONDS = "phonebank_lease_operation_seconds"
OUTCOMES_RELAYED = "phonebank_outcomes_relayed_total"
OUTCOMES_RELAY_LAST_SUCCESS = "phonebank_outcomes_relay_last_success_timestamp_seconds"
OUTCOMES_RELAY_PENDING = "phonebank_outcomes_relay_pending_events"
OUTCOMES_DEAD = "phonebank_outcomes_relay_dead_events_total"
OUTCOMES_DEAD_LETTERED = "phonebank_outcomes_relay_dead_letter_events"
BACKGROUND_FAILURES = "phonebank_background_failures_total"
# --- gateway ----------------------------------------------------------------------------
GATEWAY_REQUESTS = "phonebank_gateway_requests_total"
# --- reporter ---------------------------------------------------------------------------
COVERAGE_INGESTED = "phonebank_coverage_ingested_numbers"
COVERAGE_ATTEMPTED = "phonebank_coverage_attempted_numbers"
COVERAGE_REACHED = "phonebank_coverage_reached_numbers"
COVERAGE_CONVERSATIONS = "phonebank_coverage_conversation_numbers"
COVERAGE_DO_NOT_CALL = "phonebank_coverage_do_not_call_numbers"
COVERAGE_RETIRED = "phonebank_coverage_retired_numbers"
COVERAGE_PARKED = "phonebank_coverage_parked_numbers"
COVERAGE_RATIO = "phonebank_coverage_ratio"
REACH_RATIO = "phonebank_reach_ratio"
COVERAGE_REMAINING = "phonebank_coverage_projected_remaining_seconds"
OUTCOMES = "phonebank_outcomes_total"
VOLUNTEERS_ACTIVE_15M = "phonebank_volunteers_active_15m"
VOLUNTEERS_ACTIVE_24H = "phonebank_volunteers_active_24h"
REPORTER_EVENTS = "phonebank_reporter_events_total"
REPORTER_LAST_EVENT = "phonebank_reporter_last_event_timestamp_seconds"
REPORTER_CHECKPOINTS = "phonebank_reporter_checkpoints_total"
REPORTER_LAST_CHECKPOINT = "phonebank_reporter_last_checkpoint_timestamp_seconds"


@dataclass(frozen=True)
class MetricSpec:
    """One catalogue row: what a metric is, who exposes it, its unit and labels."""

    name: str
    kind: str
    unit: str
    labels: tuple[str, ...]
    service: str
    help: str


#: name, type, unit, labels (space separated), exposed by, meaning.
_ROWS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        INGEST_NUMBERS,
        "counter",
        "numbers",
        "result reason",
        "ingest",
        "Numbers read; result accepted|rejected, reason the reject code (else none).",
    ),
    (
        INGEST_CHUNKS,
        "counter",
        "records",
        "result",
        "ingest",
        "Number chunks produced to Kafka; result ok|error.",
    ),
    (
        INGEST_LAST_SUCCESS,
        "gauge",
        "seconds",
        "",
        "ingest",
        "Unix time the last ingest run finished without error.",
    ),
    (
        ASSIGNER_NUMBERS,
        "counter",
        "numbers",
        "region result",
        "assigner",
        "Numbers taken from Kafka; result queued|duplicate|do_not_call.",
    ),
    (QUEUE_READY, "gauge", "numbers", "region", "assigner", "Numbers in the region's ready list."),
    (
        QUEUE_DUE,
        "gauge",
        "numbers",
        "region",
        "assigner",
        "Numbers waiting in the region's due set (retries and callbacks).",
    ),
    (
        NUMBERS_PARKED,
        "gauge",
        "numbers",
        "region",
        "assigner",
        "Numbers parked after too many lease expiries (Redis parked set).",
    ),
    (
        REGION_OPEN,
        "gauge",
        "boolean",
        "region",
        "assigner",
        "1 while the region's callee-local time is inside the calling window.",
    ),
    (
        BACKGROUND_FAILURES,
        "counter",
        "rounds",
        "operation reason",
        "assigner",
        "Rounds of a background loop (operation worker, commit, lag, sweep, relay, "
        "metrics, startup) that failed on a dependency (reason redis|kafka|network); "
        "the loop retries with backoff.",
    ),
    (
        PARTITIONS_PAUSED,
        "gauge",
        "partitions",
        "",
        "assigner",
        "Numbers-topic partitions paused because their regions are full.",
    ),
    (
        CONSUMER_LAG,
        "gauge",
        "records",
        "",
        "assigner reporter",
        "Records between the consumer's position and the end of its topic.",
    ),
    (
        ASSIGNER_MALFORMED,
        "counter",
        "records",
        "",
        "assigner",
        "Numbers-topic records that were not a valid number chunk (skipped).",
    ),
    (
        LEASES_ACTIVE,
        "gauge",
        "leases",
        "region",
        "assigner",
        "Live leases (numbers being called now).",
    ),
    (LEASES_GRANTED, "counter", "leases", "region", "lease-client", "Leases granted."),
    (LEASE_EXPIRIES, "counter", "leases", "region", "assigner", "Leases the reaper found expired."),
    (LEASE_OLDEST_AGE, "gauge", "seconds", "region", "assigner", "Age of the oldest live lease."),
    (
        LEASE_RECLAIM_LAG,
        "gauge",
        "seconds",
        "",
        "assigner",
        "How long the oldest expired lease waited past its deadline for the reaper.",
    ),
    (
        LEASE_OPERATION_SECONDS,
        "histogram",
        "seconds",
        "operation result",
        "lease-client",
        "Latency of acquire|renew|complete|release; result ok or the error code.",
    ),
    (
        OUTCOMES_RELAYED,
        "counter",
        "events",
        "",
        "assigner",
        "Outcome events relayed from Redis streams to Kafka.",
    ),
    (
        OUTCOMES_RELAY_LAST_SUCCESS,
        "gauge",
        "seconds",
        "",
        "assigner",
        "Unix time of the relay's last successful pass.",
    ),
    (
        OUTCOMES_RELAY_PENDING,
        "gauge",
        "events",
        "",
        "assigner",
        "Outcome events in Redis streams not yet relayed.",
    ),
    (
        OUTCOMES_DEAD,
        "counter",
        "events",
        "",
        "assigner",
        "Outcome stream entries that were not valid events (not relayed).",
    ),
    (
        OUTCOMES_DEAD_LETTERED,
        "gauge",
        "events",
        "region",
        "assigner",
        "Entries in the region's dead-letter stream (bounded: the oldest are trimmed "
        "beyond phonebank.leases.relay.DEAD_LETTER_MAX_ENTRIES).",
    ),
    (
        GATEWAY_REQUESTS,
        "counter",
        "requests",
        "operation result",
        "gateway",
        "HTTP requests by route (acquire, renew, …, page, metrics); result ok or the HTTP "
        "status in words (unauthorized, not_found, …): shows token or lease-id guessing.",
    ),
    (
        COVERAGE_INGESTED,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Numbers ingest stored in Kafka for the campaign (queued or still in the backlog).",
    ),
    (
        COVERAGE_ATTEMPTED,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers called at least once.",
    ),
    (
        COVERAGE_REACHED,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers reached (conversation, refused or callback).",
    ),
    (
        COVERAGE_CONVERSATIONS,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers with at least one conversation.",
    ),
    (
        COVERAGE_DO_NOT_CALL,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers that asked never to be called.",
    ),
    (
        COVERAGE_RETIRED,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers retired as wrong number or not in service.",
    ),
    (
        COVERAGE_PARKED,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers whose expired leases reached the parking limit (from events).",
    ),
    (
        COVERAGE_RATIO,
        "gauge",
        "ratio",
        "region",
        "reporter",
        "Attempted / ingested (0 while nothing is ingested).",
    ),
    (
        REACH_RATIO,
        "gauge",
        "ratio",
        "region",
        "reporter",
        "Reached / attempted (0 while nothing is attempted).",
    ),
    (
        COVERAGE_REMAINING,
        "gauge",
        "seconds",
        "region",
        "reporter",
        "Projected time to attempt every ingested number at the last 24 h rate; "
        "absent while the rate is 0.",
    ),
    (
        OUTCOMES,
        "counter",
        "events",
        "region outcome",
        "reporter",
        "Outcome events by outcome (calls, plus skipped and expired leases).",
    ),
    (
        VOLUNTEERS_ACTIVE_15M,
        "gauge",
        "volunteers",
        "",
        "reporter",
        "Distinct volunteers with an outcome in the last 15 minutes (HyperLogLog).",
    ),
    (
        VOLUNTEERS_ACTIVE_24H,
        "gauge",
        "volunteers",
        "",
        "reporter",
        "Distinct volunteers with an outcome in the last 24 hours (HyperLogLog).",
    ),
    (
        REPORTER_EVENTS,
        "counter",
        "events",
        "result",
        "reporter",
        "Outcome records read; result applied|duplicate|invalid.",
    ),
    (
        REPORTER_LAST_EVENT,
        "gauge",
        "seconds",
        "",
        "reporter",
        "Completion time (Unix) of the newest outcome applied.",
    ),
    (
        REPORTER_CHECKPOINTS,
        "counter",
        "checkpoints",
        "result",
        "reporter",
        "State checkpoints written to Redis; result ok|error.",
    ),
    (
        REPORTER_LAST_CHECKPOINT,
        "gauge",
        "seconds",
        "",
        "reporter",
        "Unix time of the last successful checkpoint.",
    ),
)

#: Every phonebank metric: name → spec. ``docs/metrics.md`` is generated from this.
CATALOGUE: dict[str, MetricSpec] = {
    name: MetricSpec(name, kind, unit, tuple(labels.split()), service, text)
    for name, kind, unit, labels, service, text in _ROWS
}


def is_code(value: str) -> bool:
    """True if ``value`` may be a label value: a short code, not a number or a hash."""
    return bool(_LABEL_VALUE.match(value)) and sum(ch.isdigit() for ch in value) < _MAX_DIGITS


def check_labels(labels: dict[str, str]) -> None:
    """Refuse a label name outside :data:`ALLOWED_LABELS` or a value that is not a code.

    A 10-digit value (a phone number) or a long hash (a volunteer) fails here, so a
    careless caller cannot leak one into a time series.
    """
    for name, value in labels.items():
        if name not in ALLOWED_LABELS:
            raise ValueError(f"label {name!r} is not one of {sorted(ALLOWED_LABELS)}")
        if not is_code(value):
            raise ValueError(f"label {name} has a value that is not a short code")


def referenced_names(text: str) -> set[str]:
    """Metric names a dashboard or rules file uses, histogram series folded to the metric."""
    histograms = {name for name, spec in CATALOGUE.items() if spec.kind == "histogram"}
    names = set()
    for name in _METRIC_NAME.findall(text):
        base = next(
            (h for h in histograms for suffix in _HISTOGRAM_SUFFIXES if name == h + suffix), name
        )
        names.add(base)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Metric names in a /metrics text (``# TYPE`` lines), as catalogued (``_total`` kept)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE phonebank_"):
            _, _, name, kind = line.split(" ", 3)
            names.add(
                name + "_total" if kind == "counter" and not name.endswith("_total") else name
            )
    return names


def markdown_catalogue() -> str:
    """The table of ``docs/metrics.md``: one row per catalogued metric."""
    rows = [
        "| metric | type | unit | labels | exposed by | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for spec in CATALOGUE.values():
        labels = ", ".join(spec.labels) or "—"
        rows.append(
            f"| `{spec.name}` | {spec.kind} | {spec.unit} | {labels} "
            f"| {spec.service} | {spec.help} |"
        )
    return "\n".join(rows)


def start_metrics_server(
    port: int, registry: CollectorRegistry = REGISTRY, addr: str = ""
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread.

    ``addr`` "" listens on every interface (what a pod needs); tests pass 127.0.0.1.

    Returns the server (``server.server_port`` is the bound port when ``port`` is 0;
    ``server.shutdown()`` stops it) and its thread.
    """
    return start_http_server(port, addr=addr, registry=registry)
