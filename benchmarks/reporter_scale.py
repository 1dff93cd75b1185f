"""Reporter at campaign scale: memory, checkpoint time and reader latency with N numbers called.

Targets (issue 12, item 5) at 10 M distinct numbers called: RSS ≤ 1 GiB, checkpoint
≤ 1 s, ``/report.json`` and ``/metrics`` p99 ≤ 100 ms during a checkpoint.

What it does, in one process plus one HTTP client process (so the client's own work does
not share the reporter's interpreter lock):

1. counts N first calls (uniform over 80 regions × 11.25 M-number blocks: ~1 % of the
   number space called, as 10 M of a campaign's 40 M numbers would be), in batches of
   5,000 like the consumer, through :meth:`Aggregator.apply_all`;
2. starts the real HTTP server on the state and a client process that fetches
   ``/report.json`` and ``/metrics`` in turn, 20 a second (``--rate``; 0: back to
   back), for the rest of the run;
3. a *full* checkpoint (the first one after a start: every segment) into the local
   stack's Redis, through :meth:`ReporterService.checkpoint` (the service's own
   periodic path: rounds of at most ``REWRITE_SEGMENTS_PER_ROUND`` segments, one right
   after another, until the stored checkpoint is replaced; each round is one
   checkpoint call, the figure the target is about);
4. an idle phase (the same-run baseline: readers alone);
5. the steady state: cycles of one 5,000-record poll (record bytes decoded, half new
   numbers, half repeat calls) through :meth:`ReporterService.poll_once`, then an
   incremental checkpoint; then one more full rewrite.

Requests are classed by overlap with a checkpoint (monotonic clock, shared by both
processes on Linux). Prints one JSON line; exit 1 if a target is missed.

    python3 benchmarks/reporter_scale.py [--numbers 10000000] [--cycles 10] [--rate 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import resource
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from phonebank.domain.clock import HOUR_MS
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.redis_client import connect
from phonebank.leases.client import GIL_SWITCH_INTERVAL_SECONDS
from phonebank.reporter.aggregate import NOT_CALLS, Aggregator, RegionTally
from phonebank.reporter.consumer import MAX_POLL_RECORDS, ReporterService
from phonebank.reporter.exporter import render_metrics
from phonebank.reporter.number_states import NUMBER_BITS
from phonebank.reporter.server import serve
from phonebank.reporter.status import ReporterStatus
from phonebank.settings import Settings, load_settings

#: regions the numbers are spread over
REGIONS = 80
#: national numbers in each region's block (80 × 11.25 M = 900 M: the mobile space)
BLOCK_NUMBERS = 11_250_000
#: first national number of the first block
FIRST_NUMBER = 9_000_000_000
#: epoch ms of the synthetic stream's first event, ms between events
START_MS = 1_780_000_000_000
STEP_MS = 5
#: outcomes of the synthetic calls (weights: a phone bank's mix)
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
    Outcome.EXPIRED: 2,
}
#: first calls counted event by event (through Aggregator.apply_all); the rest in bulk
REAL_EVENTS = 200_000
#: numbers per bulk step
BULK_CHUNK = 1_000_000
#: seconds of the idle (baseline) phase
IDLE_SECONDS = 3.0
#: seconds the client keeps going after the last checkpoint
TAIL_SECONDS = 0.5
#: requests a second of the HTTP client: far above a real reporter's readers (one scrape
#: every 15 s, report pages refreshing every 30 s), low enough not to starve the
#: consumer thread of the interpreter lock as a back-to-back client does
CLIENT_RATE_PER_SECOND = 20.0
#: paths the client fetches in turn
PATHS = ("/report.json", "/metrics")
#: renders timed for the CPU cost of a reader
RENDER_RUNS = 15
#: targets
TARGET_RSS_BYTES = 1 << 30
TARGET_CHECKPOINT_SECONDS = 1.0
#: rounds a full rewrite may take before the benchmark gives up (count)
MAX_REWRITE_ROUNDS = 100
TARGET_P99_MS = 100.0

Numbers = npt.NDArray[np.int64]


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    """Largest resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def called_numbers(count: int, seed: int) -> tuple[Numbers, npt.NDArray[np.int16]]:
    """``count`` distinct (number, region index) pairs, shuffled: a uniform sample of the
    80 blocks."""
    rng = np.random.default_rng(seed)
    per_region = -(-count // REGIONS)
    numbers = np.concatenate(
        [
            FIRST_NUMBER
            + r * BLOCK_NUMBERS
            + rng.choice(BLOCK_NUMBERS, size=per_region, replace=False)
            for r in range(REGIONS)
        ]
    )
    regions = np.repeat(np.arange(REGIONS, dtype=np.int16), per_region)
    order = rng.permutation(len(numbers))[:count]
    return numbers[order].astype(np.int64), regions[order]


def make_event(i: int, number: int, region: int, outcome: Outcome) -> OutcomeEvent:
    """One synthetic event (validated construction skipped: the fields are known good)."""
    at_ms = START_MS + i * STEP_MS
    return OutcomeEvent.model_construct(
        event_id=uuid.UUID(int=(i << 32) | 0xBEEF).hex,
        campaign="default",
        region=f"RU-B{region:02d}",
        number=number,
        outcome=outcome,
        attempt=1,
        lease_id=f"l{i}",
        volunteer=f"vh{i % 3000}",
        guideline=f"calm@{1 + i % 3}",
        leased_at_ms=at_ms - 60_000,
        completed_at_ms=at_ms,
        late=False,
    )


def batches(numbers: Numbers, regions: npt.NDArray[np.int16], seed: int) -> Iterator[list[Any]]:
    """The first calls of ``numbers`` as batches of one poll's size."""
    rng = random.Random(seed)
    kinds = list(MIX)
    weights = list(MIX.values())
    for start in range(0, len(numbers), MAX_POLL_RECORDS):
        chunk = range(start, min(start + MAX_POLL_RECORDS, len(numbers)))
        outcomes = rng.choices(kinds, weights=weights, k=len(chunk))
        yield [
            make_event(i, int(numbers[i]), int(regions[i]), o)
            for i, o in zip(chunk, outcomes, strict=True)
        ]


@dataclass
class Record:
    """What :meth:`ReporterService.poll_once` reads of a Kafka record."""

    value: bytes
    offset: int


@dataclass
class FakeConsumer:
    """A consumer that returns prepared polls and accepts commits (Kafka is not measured)."""

    topic: str
    polls: list[list[Record]] = field(default_factory=list)

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        return {TopicPartition(self.topic, 0): self.polls.pop(0)} if self.polls else {}

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        pass


@dataclass
class Phases:
    """Monotonic intervals of the run, for classing requests."""

    idle: tuple[float, float] = (0.0, 0.0)
    checkpoints: list[tuple[float, float]] = field(default_factory=list)
    #: per full rewrite, the seconds of each of its rounds
    full_rounds: list[list[float]] = field(default_factory=list)
    incremental_seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)


def timed_checkpoint(service: ReporterService, consumer: FakeConsumer, phases: Phases) -> bool:
    """One periodic checkpoint through the service, made due now; its interval and CPU
    are recorded. True when the stored checkpoint was replaced (False: a round of a
    full rewrite)."""
    started, cpu = time.monotonic(), time.thread_time()
    service._dirty = True
    service._last_checkpoint = -math.inf
    saved = service.checkpoint(consumer)
    ended = time.monotonic()
    phases.checkpoints.append((started, ended))
    phases.cpu_seconds.append(time.thread_time() - cpu)
    return saved


def timed_rewrite(service: ReporterService, consumer: FakeConsumer, phases: Phases) -> None:
    """A full rewrite as a process that loaded nothing runs it: periodic rounds, one
    right after another, until the stored checkpoint is replaced."""
    service.store._owned = None  # as after a start: every segment is rewritten
    rounds: list[float] = []
    for _ in range(MAX_REWRITE_ROUNDS):
        done = timed_checkpoint(service, consumer, phases)
        rounds.append(phases.checkpoints[-1][1] - phases.checkpoints[-1][0])
        if done:
            phases.full_rounds.append(rounds)
            return
    raise RuntimeError(f"the full rewrite did not end in {MAX_REWRITE_ROUNDS} rounds")


def steady_polls(
    numbers: Numbers, regions: npt.NDArray[np.int16], cycles: int
) -> list[list[Record]]:
    """``cycles`` polls of record bytes: half new numbers, half repeat calls of old ones."""
    rng = np.random.default_rng(99)
    fresh = FIRST_NUMBER + rng.integers(0, REGIONS * BLOCK_NUMBERS, size=cycles * MAX_POLL_RECORDS)
    polls = []
    offset = len(numbers)
    for cycle in range(cycles):
        records = []
        for j in range(MAX_POLL_RECORDS):
            i = cycle * MAX_POLL_RECORDS + j
            if j % 2:
                number, region = int(fresh[i]), int((fresh[i] - FIRST_NUMBER) // BLOCK_NUMBERS)
            else:
                pick = int(rng.integers(len(numbers)))
                number, region = int(numbers[pick]), int(regions[pick])
            event = make_event(offset + i, number, region, Outcome.NO_ANSWER)
            records.append(Record(event.encode(), offset + i))
        polls.append(records)
    return polls


def start_client(url: str, rate: float) -> subprocess.Popen[bytes]:
    """The HTTP client process; it reads until its stdin closes."""
    return subprocess.Popen(
        [sys.executable, __file__, "--client", url, "--rate", str(rate)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def client_main(url: str, rate: float) -> int:
    """Fetch the paths in turn, ``rate`` requests a second (0: back to back), until stdin
    closes; print (start, ms, path) samples as JSON."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    samples: list[tuple[float, float, str]] = []
    turn = 0
    next_at = time.monotonic()
    while not select.select([sys.stdin], [], [], max(0.0, next_at - time.monotonic()))[0]:
        next_at += 1 / rate if rate > 0 else 0.0
        path = PATHS[turn % len(PATHS)]
        turn += 1
        started = time.monotonic()
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        samples.append((started, (time.monotonic() - started) * 1000, path))
    print(json.dumps(samples))
    return 0


def p99(values: list[float]) -> float | None:
    """The 99th percentile (nearest rank), None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1)


def overlaps(start: float, ms: float, intervals: list[tuple[float, float]]) -> bool:
    end = start + ms / 1000
    return any(start < b and end > a for a, b in intervals)


def latency_figures(samples: list[list[Any]], phases: Phases) -> dict[str, Any]:
    """p99 per path idle and during checkpoints, and the ratio (during / idle)."""
    figures: dict[str, Any] = {}
    idle = [phases.idle]
    for path in PATHS:
        name = path.strip("/").replace(".json", "")
        mine = [(s, ms) for s, ms, p in samples if p == path]
        during = [ms for s, ms in mine if overlaps(s, ms, phases.checkpoints)]
        quiet = [ms for s, ms in mine if overlaps(s, ms, idle)]
        figures[f"{name}_p99_ms_during_checkpoint"] = p99(during)
        figures[f"{name}_p99_ms_idle"] = p99(quiet)
        figures[f"{name}_requests_during_checkpoint"] = len(during)
        base = p99(quiet)
        worst = p99(during)
        figures[f"{name}_p99_ratio_during_vs_idle"] = (
            round(worst / base, 2) if worst is not None and base else None
        )
    return figures


def bulk_first_calls(
    aggregator: Aggregator, numbers: Numbers, regions: npt.NDArray[np.int16], seed: int
) -> None:
    """First calls of ``numbers`` counted in bulk: each number's state set with
    :meth:`NumberStates.set_many`, the region tallies through :meth:`RegionTally.call`
    (what :meth:`Aggregator.apply` does per event, minus decoding and dedupe)."""
    rng = np.random.default_rng(seed)
    calls = [o for o in MIX if o not in NOT_CALLS]
    weights = np.array([MIX[o] for o in calls], dtype=float)
    picks = rng.choice(len(calls), size=len(numbers), p=weights / weights.sum())
    hour = START_MS // HOUR_MS
    for start in range(0, len(numbers), BULK_CHUNK):
        part = slice(start, start + BULK_CHUNK)
        codes = [f"RU-B{r:02d}" for r in range(REGIONS)]
        index = np.array([aggregator.region_index[c] for c in codes], dtype=np.int64)
        keys = (index[regions[part]] << NUMBER_BITS) | numbers[part]
        states = np.zeros(len(keys), dtype=np.uint32)
        for kind, outcome in enumerate(calls):
            chosen = picks[part] == kind
            states[chosen] = RegionTally().call(0, outcome, hour)
            for r, n in enumerate(np.bincount(regions[part][chosen], minlength=REGIONS)):
                tally = aggregator.regions[codes[r]]
                tally.outcomes[outcome] = tally.outcomes.get(outcome, 0) + int(n)
                for _ in range(int(n)):
                    tally.call(0, outcome, hour)
        aggregator.numbers.set_many(keys, states)
    aggregator.applied += len(numbers)


def build(service: ReporterService, count: int) -> tuple[Numbers, npt.NDArray[np.int16], float]:
    """Count ``count`` first calls (the first :data:`REAL_EVENTS` event by event, the rest
    in bulk); return the numbers, their regions and the event-by-event rate (events/s)."""
    numbers, regions = called_numbers(count, seed=7)
    real = min(REAL_EVENTS, count)
    aggregator = service.status.aggregator
    started = time.perf_counter()
    for batch in batches(numbers[:real], regions[:real], seed=7):
        with service.status.lock:
            aggregator.apply_all(batch)
    rate = real / (time.perf_counter() - started)
    with service.status.lock:
        bulk_first_calls(aggregator, numbers[real:], regions[real:], seed=8)
    service.offsets[0] = count
    return numbers, regions, rate


def run_phases(
    service: ReporterService, numbers: Numbers, regions: npt.NDArray[np.int16], cycles: int
) -> Phases:
    """Full checkpoint, idle, steady cycles, full checkpoint again."""
    consumer = FakeConsumer(service.topic, steady_polls(numbers, regions, cycles))
    phases = Phases()
    timed_rewrite(service, consumer, phases)
    idle_start = time.monotonic()
    time.sleep(IDLE_SECONDS)
    phases.idle = (idle_start, time.monotonic())
    for _ in range(cycles):
        service.poll_once(consumer)
        assert timed_checkpoint(service, consumer, phases)
        phases.incremental_seconds.append(phases.checkpoints[-1][1] - phases.checkpoints[-1][0])
    timed_rewrite(service, consumer, phases)
    time.sleep(TAIL_SECONDS)
    return phases


def render_cpu_ms(status: ReporterStatus, registry: CollectorRegistry) -> dict[str, float]:
    """CPU milliseconds (median of :data:`RENDER_RUNS`) to build and encode the report
    document, and to render /metrics, with nothing else running: what a reader costs,
    whatever the machine's load."""
    figures = {}
    for name, render in (
        ("report", lambda: json.dumps(status.report(now_ms=START_MS))),
        ("metrics", lambda: render_metrics(registry)),
    ):
        runs = []
        for _ in range(RENDER_RUNS):
            started = time.process_time()
            render()
            runs.append((time.process_time() - started) * 1000)
        figures[f"{name}_render_cpu_ms"] = round(sorted(runs)[len(runs) // 2], 2)
    return figures


def isolated(settings: Settings) -> Settings:
    namespace = f"bench-repscale-{uuid.uuid4().hex[:8]}"
    return settings.model_copy(
        update={"key_prefix": namespace, "outcomes_topic": f"{namespace}.outcomes"}
    )


def drop(settings: Settings) -> None:
    client = connect(settings)
    try:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def measure(count: int, cycles: int, rate: float) -> dict[str, Any]:
    """Every figure of one run."""
    settings = isolated(load_settings())
    service = ReporterService(settings)
    try:
        numbers, regions, rate = build(service, count)
        rss_state = rss_bytes()
        server = serve(service.status, 0, "127.0.0.1")
        render = render_cpu_ms(service.status, server.registry)
        client = start_client(f"http://127.0.0.1:{server.port}", rate)
        try:
            phases = run_phases(service, numbers, regions, cycles)
        finally:
            out, _ = client.communicate(b"stop\n")
            server.stop()
        samples = json.loads(out)
        stored = service.redis.memory_usage(service.store.stored_numbers_key(), samples=0) or 0
    finally:
        drop(settings)
        service.redis.close()
    return {
        "numbers_called": len(service.status.aggregator.numbers),
        "build_events_per_second": round(rate),
        "rss_bytes_after_build": rss_state,
        "peak_rss_bytes": peak_rss_bytes(),
        "state_bytes": service.status.aggregator.numbers.nbytes,
        "checkpoint_segments_redis_bytes": stored,
        "checkpoint_full_seconds": [round(sum(r), 3) for r in phases.full_rounds],
        "checkpoint_full_rounds": [len(r) for r in phases.full_rounds],
        "checkpoint_full_round_seconds_max": round(max(max(r) for r in phases.full_rounds), 3),
        "checkpoint_incremental_seconds_max": round(max(phases.incremental_seconds), 3),
        "checkpoint_incremental_seconds_median": round(
            sorted(phases.incremental_seconds)[len(phases.incremental_seconds) // 2], 3
        ),
        "checkpoint_cpu_seconds_max": round(max(phases.cpu_seconds), 3),
        **render,
        **latency_figures(samples, phases),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cores": os.cpu_count(),
    }


def met(figures: dict[str, Any]) -> bool:
    """Whether every target holds."""
    worst_checkpoint = max(
        figures["checkpoint_full_round_seconds_max"], figures["checkpoint_incremental_seconds_max"]
    )
    p99s = [figures[f"{n}_p99_ms_during_checkpoint"] or 0.0 for n in ("report", "metrics")]
    return (
        figures["peak_rss_bytes"] <= TARGET_RSS_BYTES
        and worst_checkpoint <= TARGET_CHECKPOINT_SECONDS
        and max(p99s) <= TARGET_P99_MS
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=GIL_SWITCH_INTERVAL_SECONDS,
        help="seconds; sys.setswitchinterval, as `phonebank reporter` sets it",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=CLIENT_RATE_PER_SECOND,
        help="requests a second of the HTTP client (0: back to back)",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args.client, args.rate)
    sys.setswitchinterval(args.switch_interval)
    figures: dict[str, Any] = {"benchmark": "reporter_scale"}
    figures.update(
        measure(args.numbers, args.cycles, args.rate),
        switch_interval_s=args.switch_interval,
        client_requests_per_second=args.rate,
    )
    figures["targets_met"] = met(figures)
    print(json.dumps(figures))
    return 0 if figures["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
