"""Lease benchmark: N concurrent simulated volunteers doing acquire → complete on Redis.

Every campaign region (the full region table) has numbers queued, at noon Moscow time:
each acquire chooses among all the regions open then, as in production.

Phases on the same Redis, in the same run, with the same client library:

1. paced: N threads acquire and complete at a fixed total rate (default 1,000
   cycles/s, the threads' arrivals spread evenly), for latency under a realistic load
   (the issue's target: p99 acquire <= 5 ms at 1,000 cycles/s);
2. rounds (default 3), each of:
   a. peak: N threads acquire and complete as fast as they can (cycles/s, p50/p99);
   b. ping: N threads sending PING as fast as they can, each PING one batch of the
      lease client's own transport (pooled connection, hiredis packing): the raw
      round-trip rate of the same client, which the ratio is taken against;
   c. redis-py ping: the same through ``redis.Redis.ping()`` (redis-py's command path,
      which costs more client CPU per round trip), printed as a second ratio.
   The median round's ratio is the figure; the lowest is printed beside it. On two
   cores the client and Redis share, one round's figures swing with anything else the
   machine does, which is why each ratio pairs figures taken seconds apart.

It prints a table and ends with one JSON line of the figures. Keys live under a
throwaway prefix, deleted at the end. Usage::

    python benchmarks/leases.py --redis-url redis://127.0.0.1:16379/0 --concurrency 16
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import redis

from phonebank.domain.records import Outcome
from phonebank.leases.client import GIL_SWITCH_INTERVAL_SECONDS, LeaseClient, campaign_region_zones
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import enqueue_chunk
from phonebank.leases.scripts import Scripts
from phonebank.settings import load_settings, namespaced

#: the zone whose noon the benchmark runs at (most regions are open then)
ZONE = "Europe/Moscow"
#: first national number queued
FIRST_NUMBER = 9_160_000_000
#: cycles one simulated volunteer id runs before the next takes over (under the hourly cap)
CYCLES_PER_VOLUNTEER = 500
SECOND_MS = 1000
#: seconds of unmeasured acquire → complete before the phases (scripts loaded, weights read)
WARM_UP_SECONDS = 1.0
#: numbers per enqueue call while filling the queues
QUEUE_BATCH = 5000
#: round trips of one acquire → complete: the reservation and acquire batch, the
#: do-not-call check of the granted number (its prefix shard, another Cluster slot),
#: the complete batch
ROUND_TRIPS_PER_CYCLE = 3
#: bytes of the throwaway volunteer secret the run signs its tokens and receipts with
THROWAWAY_SECRET_BYTES = 32


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``samples`` (milliseconds), 0 when empty."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Recorder:
    """Latencies per operation (milliseconds), merged from every thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: dict[str, list[float]] = {"acquire": [], "complete": [], "ping": []}
        self.cycles = 0

    def add(self, local: dict[str, list[float]], cycles: int) -> None:
        with self._lock:
            for name, values in local.items():
                self.samples[name].extend(values)
            self.cycles += cycles

    def summary(self, name: str) -> dict[str, float]:
        values = self.samples[name]
        return {
            "p50_ms": round(percentile(values, 0.50), 3),
            "p99_ms": round(percentile(values, 0.99), 3),
            "mean_ms": round(statistics.fmean(values), 3) if values else 0.0,
        }


def volunteer_loop(
    leases: LeaseClient,
    worker: int,
    stop: threading.Event,
    recorder: Recorder,
    interval_s: float,
    concurrency: int = 1,
) -> None:
    """acquire → complete until ``stop``; paced to one cycle per ``interval_s`` if > 0."""
    local: dict[str, list[float]] = {"acquire": [], "complete": []}
    cycles = 0
    # paced threads are spread evenly over one interval: arrivals at a steady rate,
    # not in bursts of N at once
    next_start = time.perf_counter() + interval_s * (worker % concurrency) / concurrency
    if interval_s:
        time.sleep(max(0.0, next_start - time.perf_counter()))
    while not stop.is_set():
        if interval_s:
            next_start += interval_s
        started = time.perf_counter()
        lease = leases.acquire(f"bench-{worker}-{cycles // CYCLES_PER_VOLUNTEER}")
        acquired = time.perf_counter()
        if lease is None:
            break
        leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
        finished = time.perf_counter()
        local["acquire"].append((acquired - started) * SECOND_MS)
        local["complete"].append((finished - acquired) * SECOND_MS)
        cycles += 1
        if interval_s:
            time.sleep(max(0.0, next_start - time.perf_counter()))
    recorder.add(local, cycles)


def ping_loop(send_ping: Callable[[], object], stop: threading.Event, recorder: Recorder) -> None:
    """PING until ``stop``."""
    local: dict[str, list[float]] = {"ping": []}
    count = 0
    while not stop.is_set():
        started = time.perf_counter()
        send_ping()
        local["ping"].append((time.perf_counter() - started) * SECOND_MS)
        count += 1
    recorder.add(local, count)


def lease_path_ping(scripts: Scripts, client: redis.Redis) -> Callable[[], object]:
    """A PING sent the way the lease client sends its batches (one round trip)."""

    def send_ping() -> object:
        batch = scripts.pipeline(client)
        batch.ping()
        return batch.execute()

    return send_ping


def run_threads(
    target: Callable[[int, threading.Event, Recorder], None], concurrency: int, seconds: float
) -> tuple[Recorder, float]:
    """Run ``concurrency`` threads for ``seconds``; returns the recorder and elapsed time."""
    stop = threading.Event()
    recorder = Recorder()
    threads = [
        threading.Thread(target=target, args=(index, stop, recorder))
        for index in range(concurrency)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return recorder, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--concurrency", type=int, default=16, help="simulated volunteers")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each phase")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="peak + PING rounds; the median round's ratio is reported",
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="paced phase cycles/s")
    parser.add_argument("--numbers", type=int, default=400_000, help="numbers queued")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=GIL_SWITCH_INTERVAL_SECONDS,
        help="seconds; sys.setswitchinterval, as a volunteer-serving process "
        "sets it (CPython's default is 0.005)",
    )
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = namespaced(
        load_settings(
            redis_url=args.redis_url,
            volunteer_secret=secrets.token_urlsafe(THROWAWAY_SECRET_BYTES),
        ),
        prefix,
        volunteer_max_per_hour=1000,
    )
    client = redis.Redis.from_url(args.redis_url, max_connections=args.concurrency * 2 + 4)
    keys = KeyScheme(prefix, settings.campaign)
    region_zones = campaign_region_zones(settings)
    share = args.numbers // len(region_zones)
    for index, region in enumerate(region_zones):
        first = FIRST_NUMBER + index * share
        last = first + share
        for start in range(first, last, QUEUE_BATCH):
            enqueue_chunk(client, keys, region, range(start, min(start + QUEUE_BATCH, last)))
    noon = dt.datetime.combine(dt.date(2026, 3, 10), dt.time(12), tzinfo=ZoneInfo(ZONE))
    offset_ms = int(noon.timestamp() * SECOND_MS) - int(time.time() * SECOND_MS)
    leases = LeaseClient(settings, client, region_zones, clock_offset_ms=offset_ms)
    open_regions = len(leases.calendar.open_now(leases.now_ms()))
    scripts = Scripts(client)
    interval = args.concurrency / args.rate
    try:
        run_threads(
            lambda i, stop, rec: volunteer_loop(leases, 20_000 + i, stop, rec, 0.0),
            args.concurrency,
            WARM_UP_SECONDS,
        )
        paced, paced_s = run_threads(
            lambda i, stop, rec: volunteer_loop(
                leases, 10_000 + i, stop, rec, interval, args.concurrency
            ),
            args.concurrency,
            args.seconds,
        )
        rounds = [
            measure_round(leases, scripts, client, args, index) for index in range(args.rounds)
        ]
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.unlink(key)
    middle = sorted(rounds, key=lambda one: one.ratio)[len(rounds) // 2]
    figures = {
        "benchmark": "leases",
        "concurrency": args.concurrency,
        "regions": len(region_zones),
        "regions_open": open_regions,
        "switch_interval_s": args.switch_interval,
        "seconds_per_phase": args.seconds,
        "rounds": [one.figures() for one in rounds],
        "peak_cycles_per_s": round(middle.peak_rate, 1),
        "peak_acquire": middle.peak.summary("acquire"),
        "peak_complete": middle.peak.summary("complete"),
        "paced_target_cycles_per_s": args.rate,
        "paced_cycles_per_s": round(paced.cycles / paced_s, 1),
        "paced_acquire": paced.summary("acquire"),
        "paced_complete": paced.summary("complete"),
        "ping_per_s": round(middle.ping_rate, 1),
        "redis_py_ping_per_s": round(middle.api_ping_rate, 1),
        "cycles_to_ping_ratio": round(middle.ratio, 3),
        "cycles_to_ping_ratio_min": round(min(one.ratio for one in rounds), 3),
        "cycles_to_redis_py_ping_ratio": round(middle.peak_rate / middle.api_ping_rate, 3),
        "round_trips_per_cycle": ROUND_TRIPS_PER_CYCLE,
    }
    for index, one in enumerate(rounds):
        print(
            f"round {index + 1}: peak {one.peak_rate:8.1f} cycles/s, PING {one.ping_rate:8.1f}/s "
            f"(lease client's path), {one.api_ping_rate:8.1f}/s (redis-py ping()): "
            f"ratio {one.ratio:.3f}"
        )
    print(
        f"peak   {middle.peak_rate:10.1f} cycles/s (median round)  acquire "
        f"{figures['peak_acquire']}  complete {figures['peak_complete']}"
    )
    print(
        f"paced  {figures['paced_cycles_per_s']:10.1f} cycles/s  acquire "
        f"{figures['paced_acquire']}  complete {figures['paced_complete']}"
    )
    print(
        f"ratio  {figures['cycles_to_ping_ratio']} (median of {len(rounds)} rounds; lowest "
        f"{figures['cycles_to_ping_ratio_min']}) to the lease path's PING, "
        f"{figures['cycles_to_redis_py_ping_ratio']} to redis-py's "
        f"(a cycle is {ROUND_TRIPS_PER_CYCLE} round trips, 3 Lua scripts)"
    )
    print(json.dumps(figures))


@dataclass
class Round:
    """One peak phase and the two PING phases right after it."""

    peak: Recorder
    peak_rate: float
    ping_rate: float
    api_ping_rate: float

    @property
    def ratio(self) -> float:
        """Peak cycles per PING round trip of the lease client's own path."""
        return self.peak_rate / self.ping_rate

    def figures(self) -> dict[str, float]:
        return {
            "peak_cycles_per_s": round(self.peak_rate, 1),
            "ping_per_s": round(self.ping_rate, 1),
            "redis_py_ping_per_s": round(self.api_ping_rate, 1),
            "ratio": round(self.ratio, 3),
        }


def measure_round(
    leases: LeaseClient, scripts: Scripts, client: redis.Redis, args: argparse.Namespace, index: int
) -> Round:
    """Peak cycles, then PING on the lease client's path, then redis-py's ``ping()``: the
    baselines are taken right after the figure they are compared with, so that the
    machine's drift over a run (other load on the cores) touches both alike."""
    peak, peak_s = run_threads(
        lambda i, stop, rec: volunteer_loop(leases, (index + 1) * 1_000 + i, stop, rec, 0.0),
        args.concurrency,
        args.seconds,
    )
    send_ping = lease_path_ping(scripts, client)
    ping, ping_s = run_threads(
        lambda _, stop, rec: ping_loop(send_ping, stop, rec), args.concurrency, args.seconds
    )
    api_ping, api_ping_s = run_threads(
        lambda _, stop, rec: ping_loop(client.ping, stop, rec), args.concurrency, args.seconds
    )
    return Round(peak, peak.cycles / peak_s, ping.cycles / ping_s, api_ping.cycles / api_ping_s)


if __name__ == "__main__":
    main()
