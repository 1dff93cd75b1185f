"""Benchmark: how long an acknowledged outcome lives only in Redis before it is in Kafka.

A complete is acknowledged to the volunteer once the outcome event is in the region's
Redis stream; the assigner's relay moves it to Kafka ``phonebank.outcomes`` on its next
round. Until then, losing Redis loses the outcome: this is the window the README states
for Redis loss. The benchmark runs a real ``phonebank assigner`` (its relay) in a fresh
namespace, completes leases at a steady rate through the lease client, and reads the
outcomes topic: per event, the time from the complete's return to the record's arrival
at a consumer (one clock, this process's). It prints p50/p99/max, and the same-run
baseline: the relay's round period (the ratio p99 / period says how many rounds an
event waits). One JSON line at the end.

Run on the local stack: ``phonebank stack up; python benchmarks/relay_latency.py``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import threading
import time
import uuid
from typing import Any

from phonebank.assigner.housekeeping import QUIET_LOOK_SECONDS, SWEEP_PERIOD_SECONDS
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_admin, make_consumer
from phonebank.infra.redis_client import connect
from phonebank.leases.client import LeaseClient, campaign_region_zones
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import enqueue_chunk
from phonebank.local.demo import ANYTIME_WINDOW
from phonebank.local.demo_services import phonebank, stop_process
from phonebank.settings import Settings, child_env, load_settings

#: first national number queued
FIRST_NUMBER = 9_160_000_000
#: seconds the consumer may take to see every event after the last complete
DRAIN_TIMEOUT_SECONDS = 60.0
#: milliseconds the consumer waits in one poll
POLL_TIMEOUT_MS = 100
#: seconds beyond the quiet period the quiet phase waits, so the region is surely quiet
QUIET_MARGIN_SECONDS = 2.0
#: keys per SCAN batch when the namespace is dropped
CLEANUP_SCAN_COUNT = 1000
#: bytes of the run's throwaway volunteer secret (the services refuse the default)
THROWAWAY_SECRET_BYTES = 32
#: the region the benchmark's numbers are queued in
REGION = "RU-MOW"


def bench_settings() -> Settings:
    """A fresh namespace, every hour a calling hour, no hourly cap in the way."""
    namespace = f"relay{uuid.uuid4().hex[:8]}"
    return load_settings(
        key_prefix=namespace,
        numbers_topic=f"{namespace}.numbers",
        outcomes_topic=f"{namespace}.outcomes",
        dnc_topic=f"{namespace}.dnc",
        assigner_group=f"{namespace}-assigner",
        assigner_metrics_port=0,
        volunteer_max_per_hour=100_000,
        calling_window_start=ANYTIME_WINDOW[0],
        calling_window_end=ANYTIME_WINDOW[1],
        volunteer_secret=secrets.token_urlsafe(THROWAWAY_SECRET_BYTES),
    )


class Arrivals(threading.Thread):
    """Reads the outcomes topic; the arrival time of each lease's event."""

    def __init__(self, settings: Settings, expected: int) -> None:
        super().__init__(daemon=True)
        self.consumer = make_consumer(
            settings, f"{settings.key_prefix}-probe", settings.outcomes_topic
        )
        self.expected = expected
        self.seen: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while len(self.seen) < self.expected and not self.done.is_set():
                for records in self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS).values():
                    now = time.time()
                    for record in records:
                        self.seen.setdefault(OutcomeEvent.decode(record.value).lease_id, now)
        finally:
            self.consumer.close()
            self.done.set()


def complete_paced(leases: LeaseClient, count: int, rate: float) -> dict[str, float]:
    """Acquire → complete ``count`` leases at ``rate``/s; each complete's return time."""
    returned: dict[str, float] = {}
    interval = 1.0 / rate
    next_start = time.perf_counter()
    for i in range(count):
        lease = leases.acquire(f"relay-bench-{i % 100}")
        if lease is None:
            raise RuntimeError("the queue ran dry")
        leases.complete(lease.lease_id, lease.token, Outcome.NO_ANSWER)
        returned[lease.lease_id] = time.time()
        next_start += interval
        time.sleep(max(0.0, next_start - time.perf_counter()))
    return returned


def wait_arrived(arrivals: Arrivals, lease_ids: set[str]) -> None:
    """Wait until the events of ``lease_ids`` have been read from Kafka."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while not lease_ids <= set(arrivals.seen):
        if time.monotonic() > deadline or arrivals.done.is_set():
            raise RuntimeError("the warm-up event never reached Kafka")
        time.sleep(POLL_TIMEOUT_MS / 1000)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def quiet_latencies(leases: LeaseClient, arrivals: Arrivals, samples: int) -> list[float]:
    """The first event of a region the sweep found quiet: wait until its slow look is
    due (the region has had no lease and no event for longer than the quiet period),
    then one lease acquired and completed at once; its time to Kafka."""
    found: list[float] = []
    for _ in range(samples):
        time.sleep(QUIET_LOOK_SECONDS + QUIET_MARGIN_SECONDS)
        returned = complete_paced(leases, 1, 1.0)
        wait_arrived(arrivals, set(returned))
        found.extend(arrivals.seen[lease] - at for lease, at in returned.items())
    return found


def measure(settings: Settings, count: int, rate: float, quiet: int) -> dict[str, Any]:
    """Run the assigner, complete ``count`` leases, time their arrival in Kafka; then
    ``quiet`` single events in a region gone quiet."""
    ensure_topics(settings)
    client = connect(settings)
    keys = KeyScheme(settings.key_prefix, settings.campaign)
    total = count + 1 + quiet
    enqueue_chunk(client, keys, REGION, range(FIRST_NUMBER, FIRST_NUMBER + total))
    leases = LeaseClient(settings, client, campaign_region_zones(settings))
    arrivals = Arrivals(settings, total)
    arrivals.start()
    assigner = subprocess.Popen(
        phonebank("assigner"), env=child_env(settings), stdout=subprocess.DEVNULL
    )
    try:
        # warm-up: the relay runs once the first event has crossed; not measured
        warm_up = complete_paced(leases, 1, rate)
        wait_arrived(arrivals, set(warm_up))
        returned = complete_paced(leases, count, rate)
        wait_arrived(arrivals, set(returned))
        quiet_seen = quiet_latencies(leases, arrivals, quiet)
    finally:
        arrivals.done.set()
        stop_process(assigner)
        for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=CLEANUP_SCAN_COUNT):
            client.unlink(key)
        client.close()
    latencies = [
        arrivals.seen[lease] - at for lease, at in returned.items() if lease in arrivals.seen
    ]
    p99 = percentile(latencies, 0.99)
    return {
        "benchmark": "relay_latency",
        "events": count,
        "rate_per_s": rate,
        "arrived": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(p99, 3),
        "latency_max_s": round(max(latencies), 3),
        "relay_period_s": SWEEP_PERIOD_SECONDS,
        "p99_to_period_ratio": round(p99 / SWEEP_PERIOD_SECONDS, 2),
        "events_exposed_at_p99": round(rate * p99),
        "quiet_region_samples": len(quiet_seen),
        "quiet_region_latency_max_s": round(max(quiet_seen, default=0.0), 3),
        "quiet_look_s": QUIET_LOOK_SECONDS,
    }


def drop_topics(settings: Settings) -> None:
    admin = make_admin(settings)
    topics = [settings.numbers_topic, settings.outcomes_topic, settings.dnc_topic]
    admin.delete_topics([t for t in topics if t in set(admin.list_topics())])
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="leases completed")
    parser.add_argument("--rate", type=float, default=200.0, help="completes per second")
    parser.add_argument(
        "--quiet-samples", type=int, default=3, help="single events after a quiet period"
    )
    args = parser.parse_args()
    settings = bench_settings()
    try:
        figures = measure(settings, args.events, args.rate, args.quiet_samples)
    finally:
        drop_topics(settings)
    print(
        f"acknowledged → in Kafka: p50 {figures['latency_p50_s']} s, p99 "
        f"{figures['latency_p99_s']} s, max {figures['latency_max_s']} s "
        f"({figures['arrived']}/{args.events} arrived); relay period "
        f"{SWEEP_PERIOD_SECONDS} s: ratio {figures['p99_to_period_ratio']}; first event "
        f"of a quiet region: at most {figures['quiet_region_latency_max_s']} s "
        f"(quiet look every {QUIET_LOOK_SECONDS} s)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
