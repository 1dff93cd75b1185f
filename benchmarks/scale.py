"""Benchmark: the campaign at 1 M, 4 M, 16 M and 40 M numbers, stage by stage.

For each size, in a fresh namespace on the local stack, every stage runs as the real
command in its own process (its peak RSS read from ``wait4``):

  generate  ``phonebank generate --count N`` from the shared registry into a file
  ingest    ``phonebank ingest FILE`` into Kafka (compressed chunks)
  assign    one ``phonebank assigner`` until every region's ready list is at its
            high watermark (or holds all of the region's numbers); the rest stays in
            Kafka as the backlog
  audit     ``phonebank audit --json`` of the namespace (when the command exists)

and prints, per size, wall seconds and numbers/s per stage, peak RSS per process, Kafka
bytes per number (the topic's log segments), Redis bytes per queued number (ready
lists) and the dedupe bitmaps' bytes. One JSON line per size.

Each command has a fixed cost whatever the size (the interpreter, the numbering plan,
Kafka metadata, the final flush: 1.5–4 s), which dominates at 1 M and vanishes at 40 M,
so raw numbers/s cannot agree across sizes. Cost linear in size is judged instead on
the model ``seconds = fixed + N / rate`` fitted (least squares) to the run's sizes: a
stage is linear when every size's time is within ±20 % of the fit
(:data:`LINEARITY_TOLERANCE`). The run starts with a tiny size
(:data:`FIXED_COST_NUMBERS`), whose times are the fixed costs measured directly, to
compare with the fitted ones. The assigner queues up to the watermarks only (not in
proportion to the size), so it is left out of that test. A last JSON line gives, per
stage, the fitted fixed seconds and rate, the largest deviation and the verdict;
``rate_ratio`` (raw numbers/s over the first size's) is printed per size too.

Run on purpose (minutes, GBs of disk at 40 M): ``phonebank stack up;
python benchmarks/scale.py [--sizes 1000000,4000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phonebank.infra.kafka import make_admin
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.leases.client import campaign_region_zones
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.local import stack
from phonebank.local.demo_services import phonebank
from phonebank.local.stack_settings import load_stack_settings
from phonebank.settings import Settings, child_env, load_settings, namespaced

REPO = Path(__file__).resolve().parents[1]
#: the shared Rossvyaz registry (never committed)
SHARED_REGISTRY = REPO.parent / "shared" / "data" / "numbering-plan" / "DEF-9xx.csv"
#: the sizes of a default run
DEFAULT_SIZES = (1_000_000, 4_000_000, 16_000_000, 40_000_000)
#: numbers of the tiny first run whose stage times are each command's fixed cost
FIXED_COST_NUMBERS = 10_000
#: stages whose work is in proportion to the size (the assigner stops at the watermarks)
LINEAR_STAGES = ("generate", "ingest", "audit")
#: largest deviation of a size's time from the fitted line for a linear stage (fraction)
LINEARITY_TOLERANCE = 0.20
#: kilobytes per unit of ru_maxrss on Linux
RSS_UNIT_BYTES = 1024
#: seconds between two probes of the queues while the assigner fills them
FILL_PROBE_SECONDS = 0.5
#: seconds the assigner may take to fill every region
FILL_TIMEOUT_SECONDS = 1800.0
#: seconds the broker may take to delete a size's topics before the next size starts
TOPIC_DELETION_TIMEOUT_SECONDS = 120.0
#: keys per SCAN batch when a size's namespace is dropped
CLEANUP_SCAN_COUNT = 1000
#: bytes of the run's throwaway volunteer secret (the services refuse the default)
THROWAWAY_SECRET_BYTES = 32
#: partitions of the numbers topic, as in production (one per region)
NUMBERS_PARTITIONS = 96


@dataclass
class Stage:
    """One stage's wall time and its process's peak RSS."""

    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def run_stage(command: list[str], env: dict[str, str], **popen: Any) -> Stage:
    """Run ``command`` to completion; its wall time and peak RSS (from ``wait4``)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, **popen)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in {0, 1}:
        raise RuntimeError(f"{' '.join(command[2:])} exited {process.returncode}")
    return Stage(time.perf_counter() - started, usage.ru_maxrss * RSS_UNIT_BYTES / 2**20)


def size_settings(base: Settings, count: int) -> Settings:
    """A fresh namespace for one size, with the shared registry."""
    namespace = f"scale{count // 1_000_000}m{uuid.uuid4().hex[:6]}"
    update: dict[str, Any] = {
        "numbers_partitions": NUMBERS_PARTITIONS,
        "assigner_metrics_port": 0,
        "ingest_metrics_port": 0,
    }
    if SHARED_REGISTRY.exists():
        update["numbering_plan"] = [str(SHARED_REGISTRY)]
    return namespaced(base, namespace, **update)


def filled(client: RedisClient, settings: Settings) -> bool:
    """Every region's ready list at its high watermark or holding all its numbers."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    ingested = {k: int(v) for k, v in client.hgetall(scheme.ingested).items()}
    queued = {k: int(v) for k, v in client.hgetall(scheme.queued).items()}
    return bool(ingested) and all(
        queued.get(region, 0) >= min(settings.queue_high_watermark, count)
        for region, count in ingested.items()
    )


def assign(settings: Settings, env: dict[str, str]) -> Stage:
    """One assigner until every region is filled, then SIGTERM; its time and peak RSS."""
    client = connect(settings, decode_responses=True)
    started = time.perf_counter()
    process = subprocess.Popen(phonebank("assigner"), env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + FILL_TIMEOUT_SECONDS
        while not filled(client, settings):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the assigner did not fill every region")
            time.sleep(FILL_PROBE_SECONDS)
        seconds = time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(process.pid, 0)
    stage = Stage(seconds, usage.ru_maxrss * RSS_UNIT_BYTES / 2**20)
    stage.extra = redis_bytes(client, settings)
    client.close()
    return stage


def redis_bytes(client: RedisClient, settings: Settings) -> dict[str, Any]:
    """Bytes of the ready lists per queued number, and of the dedupe bitmaps."""
    ready_bytes = queued = 0
    for region in campaign_region_zones(settings):
        keys = RegionKeys(settings.key_prefix, settings.campaign, region)
        length = int(client.llen(keys.ready))
        if length:
            queued += length
            ready_bytes += int(client.memory_usage(keys.ready) or 0)
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    bitmaps = sum(
        int(client.memory_usage(key) or 0)
        for key in client.scan_iter(match=scheme.seen("*"), count=1000)
    )
    return {
        "queued": queued,
        "redis_bytes_per_queued_number": round(ready_bytes / max(queued, 1), 2),
        "dedupe_bitmap_mb": round(bitmaps / 2**20, 1),
    }


def topic_bytes(topic: str) -> int:
    """Bytes of the topic's log segments in the local stack's broker."""
    kafka_data = stack.stack_paths(load_stack_settings()).kafka_data
    return sum(f.stat().st_size for f in kafka_data.glob(f"{topic}-*/*.log"))


def has_audit() -> bool:
    """Whether this checkout has ``phonebank audit``."""
    return (REPO / "services" / "ops" / "audit.py").exists()


def measure(base: Settings, count: int, folder: Path) -> dict[str, Any]:
    """Every stage at one size; the JSON line's fields."""
    settings = size_settings(base, count)
    env = child_env(settings)
    numbers = folder / f"numbers-{count}.txt"
    stages: dict[str, Stage] = {}
    with numbers.open("wb") as out:
        stages["generate"] = run_stage(
            phonebank("generate", "--count", str(count), "--seed", "1"), env, stdout=out
        )
    stages["ingest"] = run_stage(
        phonebank("ingest", str(numbers), "--summary", str(folder / f"summary-{count}.json")),
        env,
        stdout=subprocess.DEVNULL,
        cwd=folder,
    )
    numbers.unlink()
    summary = json.loads((folder / f"summary-{count}.json").read_text())
    # the rate inside the process: without the interpreter's start and the plan's load
    stages["ingest"].extra = {"ingest_in_process_numbers_per_second": summary["lines_per_second"]}
    stages["assign"] = assign(settings, env)
    audit: dict[str, Any] = {}
    if has_audit():
        audit_out = folder / f"audit-{count}.json"
        with audit_out.open("wb") as out:
            stages["audit"] = run_stage(phonebank("audit", "--json"), env, stdout=out)
        audit = json.loads(audit_out.read_text())
    result = line(count, settings, stages, audit)
    cleanup(settings)
    return result


def cleanup(settings: Settings) -> None:
    """Drop the size's namespace: its Redis keys and its topics."""
    client = connect(settings)
    for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=CLEANUP_SCAN_COUNT):
        client.unlink(key)
    client.close()
    admin = make_admin(settings)
    topics = [settings.numbers_topic, settings.outcomes_topic, settings.dnc_topic]
    admin.delete_topics([t for t in topics if t in set(admin.list_topics())])
    # the next size starts once the broker has let go of these topics: a deletion still
    # under way slowed the next ingest's topic creation and first sends by 1-2 s
    deadline = time.monotonic() + TOPIC_DELETION_TIMEOUT_SECONDS
    while set(topics) & set(admin.list_topics()) and time.monotonic() < deadline:
        time.sleep(FILL_PROBE_SECONDS)
    admin.close()


def line(
    count: int, settings: Settings, stages: dict[str, Stage], audit: dict[str, Any]
) -> dict[str, Any]:
    """The JSON line of one size."""
    result: dict[str, Any] = {"numbers": count, "namespace": settings.key_prefix}
    for name, stage in stages.items():
        # the assigner queues up to the watermarks only: its rate is of what it queued
        handled = stage.extra.get("queued", count)
        result[f"{name}_seconds"] = round(stage.seconds, 2)
        result[f"{name}_numbers_per_second"] = round(handled / stage.seconds)
        result[f"{name}_peak_rss_mb"] = round(stage.peak_rss_mb, 1)
        result.update(stage.extra)
    result["kafka_bytes_per_number"] = round(topic_bytes(settings.numbers_topic) / count, 2)
    if audit:
        result["audit_violations"] = int(audit["violations"]["total"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="comma list of sizes (numbers), smallest first",
    )
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    base = load_settings(volunteer_secret=secrets.token_urlsafe(THROWAWAY_SECRET_BYTES))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="phonebank-scale-") as tmp:
        fixed = measure(base, FIXED_COST_NUMBERS, Path(tmp))
        print(json.dumps({"fixed_cost_run": True, **fixed}), flush=True)
        for count in sizes:
            result = measure(base, count, Path(tmp))
            add_ratios(result, results[0] if results else result)
            results.append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps(linearity(results, fixed)), flush=True)
    return 0


def add_ratios(result: dict[str, Any], baseline: dict[str, Any]) -> None:
    """Raw numbers/s over the first measured size's."""
    for stage in ("generate", "ingest", "ingest_in_process", "assign", "audit"):
        key = f"{stage}_numbers_per_second"
        if key in result and key in baseline:
            result[f"{stage}_rate_ratio"] = round(result[key] / baseline[key], 2)


def linearity(results: list[dict[str, Any]], fixed: dict[str, Any]) -> dict[str, Any]:
    """Per linear stage: ``seconds = fixed + N / rate`` fitted to the sizes, the largest
    deviation from it and whether it is within :data:`LINEARITY_TOLERANCE`."""
    summary: dict[str, Any] = {"summary": "linearity", "sizes": [r["numbers"] for r in results]}
    for stage in LINEAR_STAGES:
        key = f"{stage}_seconds"
        points = [(r["numbers"], r[key]) for r in results if key in r]
        if len(points) < 2:
            continue
        sizes = np.array([n for n, _ in points], dtype=float)
        seconds = np.array([t for _, t in points], dtype=float)
        slope, intercept = np.polyfit(sizes, seconds, 1)
        fitted = intercept + slope * sizes
        deviation = float(np.max(np.abs(seconds - fitted) / fitted))
        summary[stage] = {
            "fitted_fixed_seconds": round(float(intercept), 2),
            "measured_fixed_seconds": fixed.get(key),
            "fitted_numbers_per_second": round(1 / float(slope)),
            "largest_deviation": round(deviation, 3),
            "linear": deviation <= LINEARITY_TOLERANCE,
        }
    return summary


if __name__ == "__main__":
    sys.exit(main())
