"""``phonebank demo``: generate → ingest → assigner → gateway → relay → reporter, for real.

Brings the local stack up, then runs every component as its own process in a fresh
namespace (own topics, own Redis key prefix) with a throwaway volunteer secret of its
own: ``phonebank generate`` writes numbers from the numbering plan to a file,
``phonebank ingest`` sends it to Kafka, ``phonebank assigner``, ``phonebank reporter``
and ``phonebank gateway`` run in the background, and simulated volunteers (threads
here, each an HTTP frontend of the gateway with its own token) call numbers until
``--duration`` runs out. It prints a volunteer page link with a token of its own, so a
person can take a real number in a browser meanwhile. Time is compressed by ``--speed``
(call durations, and the hourly cap per volunteer, scale with it). It ends with the
reporter's coverage table, checks it against what the volunteers did, and keeps the
report page and the volunteer page up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import threading
import time
from contextlib import ExitStack, suppress
from http import HTTPStatus
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from phonebank.domain import clock
from phonebank.domain.calling_hours import CallingPolicy, open_regions
from phonebank.gateway.tokens import mint
from phonebank.infra import metrics as names
from phonebank.leases.client import campaign_region_zones
from phonebank.local import stack
from phonebank.local.demo_screen import final_table, progress_line, tally_matches
from phonebank.local.demo_services import http_get, phonebank, start_services
from phonebank.local.gateway_client import GatewayClient
from phonebank.local.simulated_volunteers import Tally, Volunteer
from phonebank.local.stack_settings import load_stack_settings
from phonebank.settings import Settings, child_env, namespaced

#: seconds the demo waits for the reporter to have counted every outcome after the
#: volunteers stopped
SERVICE_TIMEOUT_SECONDS = 120.0
#: bytes of the throwaway volunteer secret the demo gives every process it starts
DEMO_SECRET_BYTES = 32
#: seconds the demo's volunteer tokens live (the demo's own secret dies with it anyway)
DEMO_TOKEN_TTL_SECONDS = 24 * 3600
#: the gateway's rate limits in the demo (limits notation): far above what it sends
DEMO_RATE_LIMIT = "1000000/minute"
#: volunteer id of the person who takes numbers in a browser
NEWCOMER_ID = "demo-newcomer"
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
        "assigner_metrics_port": free_port(),
        "ingest_metrics_port": free_port(),
        "reporter_port": args.port or free_port(),
        "gateway_port": args.gateway_port or free_port(),
        "volunteer_secret": secrets.token_urlsafe(DEMO_SECRET_BYTES),
        # every simulated volunteer calls from 127.0.0.1, time compressed: no rate limits
        "gateway_rate_per_token": DEMO_RATE_LIMIT,
        "gateway_rate_per_address": DEMO_RATE_LIMIT,
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
    return namespaced(settings, namespace, **update)


def any_region_open(settings: Settings) -> bool:
    """Whether some region of the campaign is inside its calling window now."""
    now_ms = clock.now_ms()
    policy = CallingPolicy.from_settings(settings)
    return bool(open_regions(campaign_region_zones(settings), policy, now_ms))


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


def volunteer_token(settings: Settings, volunteer_id: str) -> str:
    """A bearer token of the demo's secret for ``volunteer_id``."""
    secret = settings.volunteer_secret.get_secret_value()
    return mint(secret, volunteer_id, settings.campaign, DEMO_TOKEN_TTL_SECONDS)


def page_link(settings: Settings) -> str:
    """The volunteer page, signed in by the token in the fragment (never sent to servers)."""
    token = volunteer_token(settings, NEWCOMER_ID)
    return f"http://127.0.0.1:{settings.gateway_port}/#token={token}"


def fetch_report(port: int) -> dict[str, Any]:
    """The reporter's ``/report.json``."""
    status, body = http_get(port, "/report.json")
    if status != HTTPStatus.OK:
        raise RuntimeError(f"/report.json answered {status}")
    report: dict[str, Any] = json.loads(body)
    return report


def save_snapshots(settings: Settings, folder: Path) -> None:
    """Keep the final report page and each service's /metrics next to the demo's logs
    (ingest wrote its own, ``ingest.metrics``, when it finished)."""
    pages = {
        "report.html": (settings.reporter_port, "/"),
        "reporter.metrics": (settings.reporter_port, "/metrics"),
        "assigner.metrics": (settings.assigner_metrics_port, "/metrics"),
        "gateway.metrics": (settings.gateway_port, "/metrics"),
    }
    for name, (port, path) in pages.items():
        status, body = http_get(port, path)
        if status == HTTPStatus.OK:
            (folder / name).write_bytes(body)
    print(f"report page, /metrics of each service: {folder}")


def call(settings: Settings, args: argparse.Namespace) -> Tally:
    """Run the volunteers for ``--duration`` seconds through the gateway, showing progress."""
    tally = Tally()
    stop = threading.Event()
    crew = [
        Volunteer(
            f"volunteer-{i}",
            GatewayClient(
                "127.0.0.1", settings.gateway_port, volunteer_token(settings, f"volunteer-{i}")
            ),
            speed=args.speed,
            tally=tally,
            stop=stop,
            seed=args.seed + i,
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
    return tally


def gateway_requests(settings: Settings) -> dict[tuple[str, str], int]:
    """The gateway's own count of requests, ``(operation, result) → count``."""
    status, body = http_get(settings.gateway_port, "/metrics")
    if status != HTTPStatus.OK:
        raise RuntimeError(f"the gateway's /metrics answered {status}")
    counts: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == names.GATEWAY_REQUESTS:
                key = (sample.labels["operation"], sample.labels["result"])
                counts[key] = int(sample.value)
    return counts


def browser_outcomes(settings: Settings, tally: Tally) -> int:
    """Outcomes the gateway recorded beyond the simulated volunteers' (a person's, in a
    browser); a repeated complete counts here too, so this is an upper bound."""
    recorded = gateway_requests(settings).get(("complete", "ok"), 0)
    return max(0, recorded - tally.completed)


def wait_counted(settings: Settings, tally: Tally, extra: int) -> dict[str, Any]:
    """The report once the reporter has counted every call the volunteers completed."""
    deadline = time.monotonic() + SERVICE_TIMEOUT_SECONDS
    while True:
        report = fetch_report(settings.reporter_port)
        if tally_matches(report, tally, extra) or time.monotonic() > deadline:
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
        start_services(settings, folder, exits)
        report_url = f"http://127.0.0.1:{settings.reporter_port}"
        print(f"report page: {report_url}/   metrics: {report_url}/metrics")
        print(f"volunteer page (take a real number in a browser): {page_link(settings)}")
        tally = call(settings, args)
        matches = finish(settings, args, folder, tally)
        if not args.no_wait:
            print(
                f"report page up at {report_url}/ and the volunteer page at "
                f"http://127.0.0.1:{settings.gateway_port}/ — Ctrl-C to stop"
            )
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0 if matches else 1


def finish(settings: Settings, args: argparse.Namespace, folder: Path, tally: Tally) -> bool:
    """The final table, the snapshots and the check against the volunteers' tally."""
    extra = browser_outcomes(settings, tally)
    report = wait_counted(settings, tally, extra)
    print(final_table(report))
    save_snapshots(settings, folder)
    requests = gateway_requests(settings)
    print(
        f"through the gateway: {requests.get(('acquire', 'created'), 0):,} numbers granted, "
        f"{requests.get(('complete', 'ok'), 0):,} outcomes recorded "
        f"({extra:,} of them from the volunteer page)"
    )
    matches = tally_matches(report, tally, extra)
    print("reporter matches the volunteers' own tally: " + ("yes" if matches else "NO"))
    if args.report_out:
        Path(args.report_out).write_text(json.dumps(report, indent=1))
    return matches


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
    parser.add_argument(
        "--gateway-port", type=int, help="volunteer page and API port (default: a free one)"
    )
    parser.add_argument("--report-out", metavar="PATH", help="write the final report JSON here")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="exit after the table instead of serving the page until Ctrl-C",
    )
    parser.set_defaults(handler=cmd_demo)
