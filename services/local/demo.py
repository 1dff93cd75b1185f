"""``phonebank demo``: generate → ingest → assigner → leases → relay → reporter, for real.

Brings the local stack up, then runs every component as its own process in a fresh
namespace (own topics, own Redis key prefix): ``phonebank generate`` writes numbers
from the numbering plan to a file, ``phonebank ingest`` sends it to Kafka, ``phonebank
assigner`` and ``phonebank reporter`` run in the background, and simulated volunteers
(threads here, each a frontend of the real lease client) call numbers until
``--duration`` runs out. Time is compressed by ``--speed`` (call durations, and the
hourly cap per volunteer, scale with it). It ends with the reporter's coverage table,
checks it against what the volunteers did, and keeps the report page up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, suppress
from http import HTTPStatus
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from phonebank.domain import clock
from phonebank.domain.calling_hours import CallingPolicy, open_regions
from phonebank.infra.redis_client import connect
from phonebank.leases.client import (
    GIL_SWITCH_INTERVAL_SECONDS,
    LeaseClient,
    campaign_region_zones,
)
from phonebank.leases.metrics import LeaseMetrics
from phonebank.local import stack
from phonebank.local.demo_screen import final_table, progress_line, tally_matches
from phonebank.local.simulated_volunteers import Tally, Volunteer
from phonebank.local.stack_settings import load_stack_settings
from phonebank.settings import Settings, env_name

#: seconds the demo waits for a background service to answer, or for the reporter to
#: have counted every outcome after the volunteers stopped
SERVICE_TIMEOUT_SECONDS = 120.0
#: seconds an HTTP request to the reporter may take
HTTP_TIMEOUT_SECONDS = 10.0
#: seconds between two progress lines (or screen refreshes on a terminal)
PROGRESS_INTERVAL_SECONDS = 1.0
#: the demo's calling window with --anytime (callee-local): every hour but the last minute
ANYTIME_WINDOW = ("00:00", "23:59")


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The demo's own namespace and time-compressed limits."""
    namespace = args.namespace or f"demo{int(time.time())}"
    update: dict[str, Any] = {
        "key_prefix": namespace,
        "numbers_topic": f"{namespace}.numbers",
        "outcomes_topic": f"{namespace}.outcomes",
        "assigner_group": f"{namespace}-assigner",
        "reporter_group": f"{namespace}-reporter",
        "assigner_metrics_port": free_port(),
        "ingest_metrics_port": free_port(),
        "reporter_port": args.port or free_port(),
        "volunteer_max_per_hour": max(1, int(settings.volunteer_max_per_hour * args.speed)),
    }
    if args.numbering_plan:
        update["numbering_plan"] = [str(path) for path in args.numbering_plan]
    if args.anytime or not any_region_open(settings):
        if not args.anytime:
            print(
                "no region is inside its calling window now: the demo simulates daytime "
                "(as with --anytime); real leases would wait for the window"
            )
        update["calling_window_start"], update["calling_window_end"] = ANYTIME_WINDOW
    return Settings.model_validate({**settings.model_dump(), **update})


def any_region_open(settings: Settings) -> bool:
    """Whether some region of the campaign is inside its calling window now."""
    now_ms = clock.now_ms()
    policy = CallingPolicy.from_settings(settings)
    return bool(open_regions(campaign_region_zones(settings), policy, now_ms))


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        env[env_name(name)] = ",".join(value) if isinstance(value, list) else str(value)
    env[env_name("volunteer_secret")] = settings.volunteer_secret.get_secret_value()
    return env


def phonebank(*args: str) -> list[str]:
    """A ``phonebank`` command line run by this interpreter."""
    return [sys.executable, "-m", "phonebank.cli", *args]


def load_numbers(settings: Settings, args: argparse.Namespace, folder: Path) -> None:
    """``phonebank generate`` into a file, then ``phonebank ingest`` of that file."""
    env = child_env(settings)
    numbers = folder / "numbers.txt"
    with numbers.open("wb") as out:
        subprocess.run(
            phonebank("generate", "--count", str(args.count), "--seed", str(args.seed)),
            env=env,
            stdout=out,
            check=True,
        )
    print(f"generated {args.count:,} numbers from the numbering plan into {numbers}")
    subprocess.run(
        phonebank(
            "ingest",
            str(numbers),
            "--rejects",
            str(folder / "rejects.tsv"),
            "--summary",
            str(folder / "summary.json"),
            "--checkpoint-dir",
            str(folder / "checkpoints"),
            "--metrics-out",
            str(folder / "ingest.metrics"),
        ),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    summary = json.loads((folder / "summary.json").read_text())
    print(f"ingested into Kafka: {json.dumps(summary.get('counts', summary))[:200]}")


def start_services(settings: Settings, folder: Path, exits: ExitStack) -> str:
    """Start the assigner and the reporter; returns the report URL once it answers."""
    env = child_env(settings)
    for name in ("assigner", "reporter"):
        log = (folder / f"{name}.log").open("wb")
        exits.callback(log.close)
        process = subprocess.Popen(phonebank(name), env=env, stdout=log, stderr=subprocess.STDOUT)
        exits.callback(stop_process, process)
    url = f"http://127.0.0.1:{settings.reporter_port}"
    deadline = time.monotonic() + SERVICE_TIMEOUT_SECONDS
    while True:
        with suppress(OSError):
            if http_get(settings.reporter_port, "/readyz")[0] == HTTPStatus.OK:
                return url
        if time.monotonic() > deadline:
            raise RuntimeError(f"the reporter did not become ready; see {folder}/reporter.log")
        time.sleep(PROGRESS_INTERVAL_SECONDS)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, SIGKILL as a last resort."""
    process.terminate()
    try:
        process.wait(timeout=SERVICE_TIMEOUT_SECONDS / 4)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of ``GET http://127.0.0.1:PORT/PATH``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def fetch_report(port: int) -> dict[str, Any]:
    """The reporter's ``/report.json``."""
    status, body = http_get(port, "/report.json")
    if status != HTTPStatus.OK:
        raise RuntimeError(f"/report.json answered {status}")
    report: dict[str, Any] = json.loads(body)
    return report


def save_snapshots(settings: Settings, folder: Path, volunteers: CollectorRegistry) -> None:
    """Keep the final report page and each service's /metrics next to the demo's logs
    (ingest wrote its own, ``ingest.metrics``, when it finished)."""
    (folder / "volunteers.metrics").write_bytes(generate_latest(volunteers))
    pages = {
        "report.html": (settings.reporter_port, "/"),
        "reporter.metrics": (settings.reporter_port, "/metrics"),
        "assigner.metrics": (settings.assigner_metrics_port, "/metrics"),
    }
    for name, (port, path) in pages.items():
        status, body = http_get(port, path)
        if status == HTTPStatus.OK:
            (folder / name).write_bytes(body)
    print(f"report page, /metrics of each service: {folder}")


def call(settings: Settings, args: argparse.Namespace, registry: CollectorRegistry) -> Tally:
    """Run the volunteers for ``--duration`` seconds, showing progress."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    client = connect(settings)
    leases = LeaseClient(settings, client, metrics=LeaseMetrics(registry))
    tally = Tally()
    stop = threading.Event()
    crew = [
        Volunteer(
            f"volunteer-{i}", leases, speed=args.speed, tally=tally, stop=stop, seed=args.seed + i
        )
        for i in range(args.volunteers)
    ]
    for volunteer in crew:
        volunteer.start()
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < args.duration:
            report = fetch_report(settings.reporter_port)
            print(progress_line(elapsed, tally, report), end="\r", flush=True)
            stop.wait(PROGRESS_INTERVAL_SECONDS)
    except KeyboardInterrupt:
        print("\ninterrupted: finishing the calls in progress")
    stop.set()
    for volunteer in crew:
        volunteer.join()
    print()
    client.close()
    return tally


def wait_counted(settings: Settings, tally: Tally) -> dict[str, Any]:
    """The report once the reporter has counted every call the volunteers completed."""
    deadline = time.monotonic() + SERVICE_TIMEOUT_SECONDS
    while True:
        report = fetch_report(settings.reporter_port)
        if tally_matches(report, tally) or time.monotonic() > deadline:
            return report
        time.sleep(PROGRESS_INTERVAL_SECONDS)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo; 0 when the reporter's table matches what the volunteers did."""
    stack_settings = load_stack_settings()
    stack.up(stack_settings)
    settings = demo_settings(settings, args)
    folder = (stack_settings.stack_dir / "demo" / settings.key_prefix).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"demo namespace {settings.key_prefix}; logs and files in {folder}")
    with ExitStack() as exits:
        load_numbers(settings, args, folder)
        url = start_services(settings, folder, exits)
        print(f"report page: {url}/   metrics: {url}/metrics")
        volunteers = CollectorRegistry()
        tally = call(settings, args, volunteers)
        report = wait_counted(settings, tally)
        print(final_table(report))
        save_snapshots(settings, folder, volunteers)
        matches = tally_matches(report, tally)
        print("reporter matches the volunteers' own tally: " + ("yes" if matches else "NO"))
        if args.report_out:
            Path(args.report_out).write_text(json.dumps(report, indent=1))
        if not args.no_wait:
            print(f"report page up at {url}/ — Ctrl-C to stop")
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0 if matches else 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank demo``."""
    parser = commands.add_parser("demo", help="the whole pipeline on the local stack")
    parser.add_argument(
        "--numbering-plan",
        action="append",
        type=Path,
        metavar="PATH",
        help="registry CSV (repeatable); default: the shipped fixture",
    )
    parser.add_argument("--count", type=int, default=200_000, help="numbers to generate")
    parser.add_argument("--volunteers", type=int, default=20, help="simulated volunteers")
    parser.add_argument(
        "--speed",
        type=float,
        default=30.0,
        help="time compression: simulated seconds per real second",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="real seconds of calling")
    parser.add_argument("--seed", type=int, default=1, help="seed of numbers and outcomes")
    parser.add_argument(
        "--anytime",
        action="store_true",
        help="simulate daytime everywhere (the default when no region is open now)",
    )
    parser.add_argument("--namespace", help="topics and key prefix (default: a fresh one)")
    parser.add_argument("--port", type=int, help="report page port (default: a free one)")
    parser.add_argument("--report-out", metavar="PATH", help="write the final report JSON here")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="exit after the table instead of serving the page until Ctrl-C",
    )
    parser.set_defaults(handler=cmd_demo)
