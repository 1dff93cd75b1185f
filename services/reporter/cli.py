"""The ``phonebank reporter`` subcommand: run the reporter in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import sys

from phonebank.infra.shutdown import stop_on_signals
from phonebank.leases.client import GIL_SWITCH_INTERVAL_SECONDS
from phonebank.reporter.app import run_reporter
from phonebank.settings import Settings


def cmd_reporter(args: argparse.Namespace, settings: Settings) -> int:
    """Consume outcomes and serve the report until SIGTERM or Ctrl-C; exit code 0."""
    stop = stop_on_signals("reporter")
    # Readers are served from a thread beside the CPU-bound consumer (decode, apply,
    # checkpoint encoding): with CPython's 5 ms switch interval each of a request's GIL
    # hand-overs may wait that long (the gateway does the same, for the same reason).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    return run_reporter(settings, stop, port=args.port, rebuild=args.rebuild)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank reporter`` to the ``phonebank`` command."""
    parser = commands.add_parser(
        "reporter",
        help="aggregate outcomes: coverage report, /report.json, /metrics",
        description="Consume the outcomes topic into per-region coverage; serve / (report "
        "page), /report.json, /metrics, /healthz and /readyz.",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP port (default: PHONEBANK_REPORTER_PORT)"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="drop the saved state and recount from the start of the topic",
    )
    parser.set_defaults(handler=cmd_reporter)
