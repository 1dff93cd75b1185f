"""Reporter benchmark: aggregation throughput and /metrics render time.

Targets (issue 5): aggregation ≥ 100,000 outcome events/s; /metrics rendered in ≤ 50 ms
with 100 regions × 10 outcomes. Same-run baseline: the naive per-event design (a Redis
round trip per counter, as a reporter without in-memory state and checkpoints would do),
measured against the local stack's Redis when it is up. Prints one JSON line at the end.

    python3 benchmarks/reporter.py [--events N] [--baseline-events N]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid

import redis

from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.checkpoint import Checkpoint, encode
from phonebank.reporter.exporter import make_registry, render_metrics
from phonebank.reporter.status import ReporterStatus
from phonebank.settings import load_settings

#: regions and outcomes of the /metrics target shape
REGIONS = 100
#: realistic outcome mix of a phone bank (weights)
MIX = {
    Outcome.NO_ANSWER: 40,
    Outcome.BUSY: 8,
    Outcome.VOICEMAIL: 12,
    Outcome.REFUSED: 15,
    Outcome.CONVERSATION: 8,
    Outcome.CALLBACK: 3,
    Outcome.WRONG_NUMBER: 4,
    Outcome.NOT_IN_SERVICE: 5,
    Outcome.DO_NOT_CALL: 3,
    Outcome.SKIPPED: 1,
    Outcome.EXPIRED: 1,
}
#: epoch ms the synthetic stream starts at, and ms between events (a busy campaign)
START_MS = 1_780_000_000_000
STEP_MS = 50
#: numbers each region draws from (so many numbers get several calls)
NUMBERS_PER_REGION = 20_000
#: /metrics renders timed
RENDER_RUNS = 50
#: targets
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_RENDER_MS = 50.0


def synthetic_events(count: int, seed: int = 7) -> list[OutcomeEvent]:
    """``count`` events over 100 regions with the outcome mix above."""
    rng = random.Random(seed)
    outcomes = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    return [
        OutcomeEvent(
            event_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            campaign="default",
            region=f"RU-B{i % REGIONS:02d}",
            number=9_000_000_000
            + (i % REGIONS) * NUMBERS_PER_REGION
            + rng.randrange(NUMBERS_PER_REGION),
            outcome=outcome,
            attempt=1,
            lease_id=f"l{i}",
            volunteer=f"vh{rng.randrange(3000)}",
            guideline=f"calm@{1 + i % 3}",
            leased_at_ms=START_MS + i * STEP_MS - 60_000,
            completed_at_ms=START_MS + i * STEP_MS,
        )
        for i, outcome in enumerate(outcomes)
    ]


def time_aggregation(events: list[OutcomeEvent]) -> tuple[float, Aggregator]:
    """Events per second of :meth:`Aggregator.apply_all` (best of three)."""
    best = float("inf")
    aggregator = Aggregator()
    for _ in range(3):
        aggregator = Aggregator()
        started = time.perf_counter()
        aggregator.apply_all(events)
        best = min(best, time.perf_counter() - started)
    return len(events) / best, aggregator


def time_decode_and_aggregate(events: list[OutcomeEvent]) -> float:
    """Events per second from Kafka record bytes: pydantic decode plus aggregation."""
    values = [event.encode() for event in events]
    aggregator = Aggregator()
    started = time.perf_counter()
    aggregator.apply_all(OutcomeEvent.decode(value) for value in values)
    return len(values) / (time.perf_counter() - started)


def time_naive_redis(events: list[OutcomeEvent]) -> float | None:
    """Events per second of the naive design: Redis round trips per event, no batching."""
    settings = load_settings()
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"bench-reporter-{uuid.uuid4().hex[:8]}"
    try:
        client.ping()
    except redis.RedisError:
        return None
    try:
        started = time.perf_counter()
        for event in events:
            if not client.sadd(f"{prefix}:seen", event.event_id):
                continue
            client.hincrby(f"{prefix}:outcomes", f"{event.region}:{event.outcome}", 1)
            if client.sadd(f"{prefix}:attempted:{event.region}", event.number):
                client.hincrby(f"{prefix}:attempted", event.region, 1)
        return len(events) / (time.perf_counter() - started)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def time_metrics(aggregator: Aggregator) -> dict[str, float]:
    """Milliseconds to render /metrics for the aggregated state (100 regions × outcomes)."""
    ingested = {code: NUMBERS_PER_REGION for code in aggregator.regions}
    status = ReporterStatus("default", aggregator, ingested=ingested)
    registry = make_registry(status)
    body = render_metrics(registry)
    runs = []
    for _ in range(RENDER_RUNS):
        started = time.perf_counter()
        render_metrics(registry)
        runs.append((time.perf_counter() - started) * 1000)
    runs.sort()
    return {
        "median_ms": round(statistics.median(runs), 2),
        "p95_ms": round(runs[int(len(runs) * 0.95) - 1], 2),
        "max_ms": round(runs[-1], 2),
        "bytes": len(body),
        "series": sum(1 for line in body.splitlines() if not line.startswith(b"#")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--baseline-events", type=int, default=10_000)
    args = parser.parse_args()

    events = synthetic_events(args.events)
    rate, aggregator = time_aggregation(events)
    print(
        f"aggregation: {rate:,.0f} events/s over {len(events):,} events "
        f"({len(aggregator.regions)} regions)"
    )
    decode_rate = time_decode_and_aggregate(events[:100_000])
    print(f"decode + aggregation from record bytes: {decode_rate:,.0f} events/s")
    naive = time_naive_redis(events[: args.baseline_events])
    if naive is None:
        print("naive per-event Redis baseline: skipped (Redis not reachable)")
    else:
        print(
            f"naive per-event Redis baseline: {naive:,.0f} events/s "
            f"→ in-memory is {rate / naive:,.0f}x faster"
        )
    render = time_metrics(aggregator)
    print(
        f"/metrics: median {render['median_ms']} ms, p95 {render['p95_ms']} ms, "
        f"{render['series']:.0f} series, {render['bytes']:.0f} bytes"
    )
    started = time.perf_counter()
    aggregator.numbers.mark_all_dirty()
    stored = encode(
        Checkpoint("bench", aggregator, {0: len(events)}),
        aggregator.numbers.take_dirty(),
        generation=1,
    )
    blob_bytes = len(stored.document) + sum(len(b) for b in stored.segments.values())
    checkpoint_ms = (time.perf_counter() - started) * 1000
    print(f"checkpoint: {blob_bytes:,} bytes in {checkpoint_ms:.0f} ms")
    figures = {
        "benchmark": "reporter",
        "events": len(events),
        "aggregation_events_per_second": round(rate),
        "decode_and_aggregation_events_per_second": round(decode_rate),
        "naive_redis_events_per_second": None if naive is None else round(naive),
        "speedup_vs_naive": None if naive is None else round(rate / naive, 1),
        "metrics_render_median_ms": render["median_ms"],
        "metrics_render_p95_ms": render["p95_ms"],
        "metrics_series": render["series"],
        "checkpoint_bytes": blob_bytes,
        "checkpoint_encode_ms": round(checkpoint_ms, 1),
        "targets_met": rate >= TARGET_EVENTS_PER_SECOND and render["p95_ms"] <= TARGET_RENDER_MS,
    }
    print(json.dumps(figures))
    return 0 if figures["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
