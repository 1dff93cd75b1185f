"""The ``phonebank assigner`` subcommand: run one assigner in the foreground until SIGTERM."""

from __future__ import annotations

import argparse

from phonebank.assigner.app import run_assigner
from phonebank.infra.shutdown import stop_on_signals
from phonebank.settings import Settings


def cmd_assigner(args: argparse.Namespace, settings: Settings) -> int:
    """Consume, queue, reap and relay until SIGTERM or Ctrl-C; exit code 0."""
    stop = stop_on_signals("assigner")
    port = None if args.no_metrics else settings.assigner_metrics_port
    run_assigner(settings, stop, port)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank assigner`` to the ``phonebank`` command."""
    parser = commands.add_parser(
        "assigner", help="consume number chunks into per-region Redis queues; relay outcomes"
    )
    parser.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    parser.set_defaults(handler=cmd_assigner)
