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
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

import anyio.to_thread
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from phonebank.infra.http import RunningServer, SecurityHeaders, error_body, start

#: prometheus_client's switch for the ``*_created`` series (the library leaves it untyped).
_disable_created_series: Callable[[], None] = disable_created_metrics
# phonebank exposes no ``*_created`` series: they are not in the catalogue, and every
# service imports this module before it makes a metric.
_disable_created_series()

#: The prefix of every phonebank metric name.
PREFIX = "phonebank_"
#: The only label names a phonebank metric may carry (plus ``le`` inside histograms).
ALLOWED_LABELS = frozenset({"region", "outcome", "operation", "result", "reason", "group"})
#: Label values must look like codes; anything else (e.g. a phone number) is refused.
_LABEL_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:@-]{0,63}$")
#: digits from which a label value could be (part of) a phone number
_MAX_DIGITS = 7

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
ASSIGNER_LAG = "phonebank_assigner_lag_records"
QUEUE_REMAINING = "phonebank_queue_remaining_numbers"
QUEUE_BACKLOG = "phonebank_queue_backlog_records"
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
    (QUEUE_READY, "gauge", "numbers", "region", "reporter", "Numbers in the region's ready list."),
    (
        QUEUE_DUE,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Numbers waiting in the region's due set (retries and callbacks).",
    ),
    (
        NUMBERS_PARKED,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Numbers parked after too many lease expiries (Redis parked set).",
    ),
    (
        REGION_OPEN,
        "gauge",
        "boolean",
        "region",
        "reporter",
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
        "group",
        "reporter",
        "Records of a topic a consumer group has not committed yet (end offset minus committed "
        "offset, summed over partitions; group assigner|reporter), read from Kafka's admin API.",
    ),
    (
        ASSIGNER_LAG,
        "gauge",
        "records",
        "",
        "assigner",
        "Records behind the end of the partitions this assigner holds now (its own share: "
        "sum() over replicas is the group's lag, stale during a rebalance).",
    ),
    (
        QUEUE_REMAINING,
        "gauge",
        "numbers",
        "region",
        "reporter",
        "Distinct numbers queued and not finished: ready + due + leased (duplicates, "
        "do-not-call, done, retired and parked excluded).",
    ),
    (
        QUEUE_BACKLOG,
        "gauge",
        "records",
        "region",
        "reporter",
        "Number chunks of the region's partition the assigner group has not committed yet "
        "(the region's share of the Kafka backlog; regions sharing a partition show the same).",
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
        "reporter",
        "Live leases (numbers being called now).",
    ),
    (LEASES_GRANTED, "counter", "leases", "region", "lease-client", "Leases granted."),
    (LEASE_EXPIRIES, "counter", "leases", "region", "reporter", "Leases the reaper found expired."),
    (LEASE_OLDEST_AGE, "gauge", "seconds", "region", "reporter", "Age of the oldest live lease."),
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
        "reporter",
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


def metrics_app(registry: CollectorRegistry) -> Starlette:
    """``GET /metrics`` (collected in a worker thread: some collectors read Redis) and
    ``GET /healthz``; anything else a JSON 404/405, every answer with the security headers."""

    async def metrics(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status": "ok"}', media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else HTTPStatus.NOT_FOUND
        name = "not_found" if code == HTTPStatus.NOT_FOUND else "method_not_allowed"
        body = error_body(name, HTTPStatus(code).phrase.lower())
        return Response(body, code, media_type="application/json")

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error},
    )


def start_metrics_server(
    port: int, registry: CollectorRegistry = REGISTRY, addr: str = ""
) -> RunningServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread, on the
    project's one HTTP layer (:mod:`phonebank.infra.http`: uvicorn, its limits and
    security headers), as the gateway and the reporter are.

    ``addr`` "" listens on every interface (what a pod needs); tests pass 127.0.0.1.

    Returns the running server (``server.port`` is the bound port when ``port`` is 0;
    ``server.stop()`` stops it).
    """
    return start(metrics_app(registry), addr, port, name="metrics")
