"""Benchmark: Redis commands per second of an idle assigner (queues full, no volunteers).

Starts a private redis-server (``INFO commandstats`` counts every client of a server, so
the shared one would count other sessions' work), fills the ready list of each of the 95
regions above the high-water mark, puts one chunk per region into a private 96-partition
numbers topic, and runs an assigner (worker + housekeeping threads, wired as
``phonebank assigner`` wires them, without /metrics) until every partition is held and
paused and the looks at full regions have backed off. It then reads the calls of
``INFO commandstats`` (INFO itself left out) over ``--windows`` windows of ``--seconds``.

It does so twice: ``after`` (the shipped housekeeping: one pipelined sweep a second) and
``before`` (the housekeeping it replaced: every second, for every region, the relay's
SET NX + XRANGE + GET + DEL and the reaper's ZRANGEBYSCORE + ZRANGE), and prints the
commands per second of each, the ratio, the commands of one /metrics scrape, and one
JSON line.

Run on the local stack (Kafka): ``python benchmarks/idle_assigner.py [--port 26479]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import redis
from prometheus_client import generate_latest

from phonebank.assigner.housekeeping import start_housekeeping
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import NumberChunk
from phonebank.domain.regions import REGIONS
from phonebank.infra.kafka import ensure_topics, make_admin, make_producer, partition_for_region
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.leases.queues import enqueue_chunk
from phonebank.leases.reaper import Reaper
from phonebank.leases.relay import (
    BATCH_ENTRIES,
    LOCK_TTL_MS,
    OutcomeRelay,
    RelayMetrics,
    StreamEntry,
)
from phonebank.settings import Settings, load_settings

#: ready numbers per region at which a region counts as full (and below which it resumes)
HIGH_WATERMARK = 20
LOW_WATERMARK = 10
#: numbers queued per region before the assigner starts (above the high-water mark)
FILL_NUMBERS = 25
#: first national number of the filled queues (a number per region and index)
FIRST_NUMBER = 9_000_000_000
#: seconds to wait for every partition to be held
HOLD_DEADLINE_SECONDS = 180.0
#: seconds between two looks while waiting for the holds
LOOK_SECONDS = 0.2
#: seconds the legacy housekeeping waited between rounds
LEGACY_PERIOD_SECONDS = 1.0


class LegacyRelay(OutcomeRelay):
    """The relay as it was: the lock released by GET then DEL (two commands)."""

    def relay_region(self, keys: RegionKeys) -> int:
        lock = keys.relay_lock
        if not self.redis.set(lock, self.owner, nx=True, px=LOCK_TTL_MS):
            return 0
        try:
            entries = self.redis.xrange(keys.outcomes, count=BATCH_ENTRIES)
            return self._send(keys, cast(list[StreamEntry], entries)) if entries else 0
        finally:
            if self.redis.get(lock) == self.owner.encode():
                self.redis.delete(lock)


def legacy_housekeeping(
    settings: Settings, client: RedisClient, metrics: AssignerMetrics, stop: threading.Event
) -> list[threading.Thread]:
    """The loop this issue replaced: reap every region, then relay every region, each second."""
    producer = make_producer(settings)
    relay = LegacyRelay(settings, client, producer, RelayMetrics(metrics.registry))
    reaper = Reaper(settings, client)

    def loop() -> None:
        while not stop.is_set():
            reaper.reap_all()
            relay.relay_all()
            stop.wait(LEGACY_PERIOD_SECONDS)
        producer.close()

    thread = threading.Thread(target=loop, name="legacy-housekeeping")
    thread.start()
    return [thread]


Housekeeping = Callable[
    [Settings, RedisClient, AssignerMetrics, threading.Event], list[threading.Thread]
]


@contextmanager
def private_redis(port: int) -> Iterator[str]:
    """A redis-server of this run only, without persistence; yields its URL."""
    with tempfile.TemporaryDirectory() as folder:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", folder]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            probe = redis.Redis(port=port)
            wait_for(lambda: answers(probe), "the private redis-server")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait()


def answers(probe: redis.Redis) -> bool:
    try:
        return bool(probe.ping())
    except redis.ConnectionError:
        return False


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HOLD_DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}: {condition.__doc__ or ''}")
        time.sleep(LOOK_SECONDS)


def prepare(settings: Settings, client: RedisClient) -> None:
    """Full queues in every region, and one chunk per region waiting in Kafka."""
    ensure_topics(settings)
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    producer = make_producer(settings)
    for index, region in enumerate(sorted(REGIONS)):
        base = FIRST_NUMBER + index * 1000
        enqueue_chunk(client, scheme, region, [base + i for i in range(FILL_NUMBERS)])
        client.sadd(scheme.regions, region)
        chunk = NumberChunk(
            campaign=settings.campaign, region=region, source="bench", seq=0, numbers=[base + 999]
        )
        partition = partition_for_region(region, settings.numbers_partitions)
        producer.send(settings.numbers_topic, value=chunk.encode(), partition=partition)
    producer.flush()
    producer.close()


def commands(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started, INFO left out."""
    stats = cast(dict[str, dict[str, int]], client.info("commandstats"))
    return {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in stats.items()
        if name != "cmdstat_info"
    }


def measure(client: redis.Redis, seconds: float, windows: int) -> list[dict[str, int]]:
    """Commands per window (each ``seconds`` long), per command name."""
    results = []
    for _ in range(windows):
        before = commands(client)
        time.sleep(seconds)
        after = commands(client)
        results.append(
            {
                name: calls - before.get(name, 0)
                for name, calls in after.items()
                if calls > before.get(name, 0)
            }
        )
    return results


def paused(worker: AssignerWorker) -> int:
    """Partitions the worker holds and has paused."""
    return sum(hold.paused for hold in list(worker.backpressure.holds.values()))


def run_mode(
    settings: Settings,
    client: redis.Redis,
    housekeeping: Housekeeping,
    args: argparse.Namespace,
) -> list[dict[str, int]]:
    """Run an assigner with ``housekeeping`` until idle, then measure its windows."""
    stop = threading.Event()
    metrics = AssignerMetrics(settings)
    worker = AssignerWorker(settings, client, metrics)
    worker.stop = stop
    loop = threading.Thread(target=worker.run, name="worker")
    loop.start()
    background = housekeeping(settings, client, metrics, stop)
    try:
        wait_for(lambda: paused(worker) == len(REGIONS), "every partition to be held")
        time.sleep(args.warmup)
        return measure(client, args.seconds, args.windows)
    finally:
        stop.set()
        loop.join()
        for thread in background:
            thread.join()


def scrape_commands(settings: Settings, client: redis.Redis) -> int:
    """Redis commands one /metrics scrape of the assigner issues."""
    metrics = AssignerMetrics(settings, client)
    before = sum(commands(client).values())
    generate_latest(metrics.registry)
    return sum(commands(client).values()) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_port = int(os.environ.get("PHONEBANK_PRIVATE_REDIS_PORT", "26479"))
    parser.add_argument("--port", type=int, default=default_port, help="private Redis port")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--windows", type=int, default=3, help="windows measured per mode")
    parser.add_argument("--warmup", type=float, default=40.0, help="seconds idle before measuring")
    parser.add_argument(
        "--modes", nargs="+", default=["after", "before"], choices=["after", "before"]
    )
    args = parser.parse_args()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    with private_redis(args.port) as url:
        settings = load_settings().model_copy(
            update={
                "redis_url": url,
                "redis_cluster": False,
                "key_prefix": namespace,
                "numbers_topic": f"{namespace}.numbers",
                "outcomes_topic": f"{namespace}.outcomes",
                "dnc_topic": f"{namespace}.dnc",
                "assigner_group": f"{namespace}-assigner",
                "queue_high_watermark": HIGH_WATERMARK,
                "queue_low_watermark": LOW_WATERMARK,
            }
        )
        client = redis.Redis.from_url(url)
        try:
            prepare(settings, client)
            figures = report(settings, client, args)
        finally:
            topics = [settings.numbers_topic, settings.outcomes_topic, settings.dnc_topic]
            admin = make_admin(settings)
            admin.delete_topics(topics)
            admin.close()
    print(json.dumps(figures))


def report(settings: Settings, client: redis.Redis, args: argparse.Namespace) -> dict[str, object]:
    """Measure both modes and print the figures; returns them."""
    figures: dict[str, object] = {"regions": len(REGIONS), "window_seconds": args.seconds}
    rates = {}
    modes: dict[str, Housekeeping] = {"after": start_housekeeping, "before": legacy_housekeeping}
    for mode in args.modes:
        housekeeping = modes[mode]
        windows = run_mode(settings, client, housekeeping, args)
        per_window = [sum(window.values()) / args.seconds for window in windows]
        rates[mode] = sum(per_window) / len(per_window)
        figures[mode] = {"commands_per_second": per_window, "last_window": windows[-1]}
        shown = ", ".join(f"{rate:.1f}" for rate in per_window)
        print(
            f"{mode:>6}: {rates[mode]:7.1f} Redis commands/s "
            f"(windows of {args.seconds:.0f} s: {shown})"
        )
        print(f"        last window by command: {dict(sorted(windows[-1].items()))}")
    if len(rates) == len(modes):
        figures["ratio_before_after"] = rates["before"] / rates["after"]
        print(f" ratio: {figures['ratio_before_after']:.0f}x fewer commands")
    figures["scrape_commands"] = scrape_commands(settings, client)
    print(f"one /metrics scrape: {figures['scrape_commands']} commands")
    return figures


if __name__ == "__main__":
    main()
