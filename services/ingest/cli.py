"""The ``phonebank ingest`` and ``phonebank generate`` subcommands.

``add_ingest_parser`` and ``add_generate_parser`` add them to the ``phonebank`` parser;
each sets ``handler`` to a function of ``(args, settings)`` returning the exit code:
0 done, 1 the run failed (Kafka), 2 a usage, source or numbering-plan error (one line on
stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from phonebank.domain.numbering import NumberingPlan, NumberingPlanError
from phonebank.domain.regions import UnknownRegionError, select_regions
from phonebank.infra.metrics import start_metrics_server
from phonebank.ingest.checkpoint import DEFAULT_CHECKPOINT_DIR
from phonebank.ingest.chunks import DEFAULT_CHUNK_SIZE, IngestError, KafkaSink
from phonebank.ingest.generate import STRATIFICATIONS, iter_generated_batches
from phonebank.ingest.metrics import ingest_registry, write_metrics_file
from phonebank.ingest.runner import CHECKPOINT_LINES, IngestOptions, IngestRun
from phonebank.ingest.sources import SourceError
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: exit code: the run failed part way (Kafka)
EXIT_FAILED = 1
#: exit code: bad usage, source or numbering plan
EXIT_USAGE = 2


def _plan_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--numbering-plan",
        action="append",
        type=Path,
        default=None,
        metavar="PATH",
        help="registry CSV (repeatable); default: "
        "PHONEBANK_NUMBERING_PLAN, else the shipped fixture",
    )


def add_ingest_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank ingest``."""
    parser = subparsers.add_parser("ingest", help="classify number files and send them to Kafka")
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="file (.txt, .csv, .gz of either), directory, or - for stdin",
    )
    _plan_argument(parser)
    parser.add_argument("--column", help="CSV column: header NAME or INDEX counted from 1")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="classify only: nothing is sent, no checkpoint is written",
    )
    parser.add_argument(
        "--report", metavar="PATH", help="dry run: write the JSON Lines report here (- for stdout)"
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        metavar="PATH",
        help="append rejected lines here (default for a real run: ingest-rejects.tsv)",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        metavar="PATH",
        help="write the JSON summary here (default for a real run: ingest-summary.json)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=DEFAULT_CHECKPOINT_DIR,
        metavar="DIR",
        help="folder of per-source checkpoints",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help="numbers per Kafka record (default %(default)s)",
    )
    parser.add_argument(
        "--checkpoint-lines",
        type=int,
        default=CHECKPOINT_LINES,
        metavar="N",
        help="lines between checkpoints (default %(default)s); a kill -9 "
        "re-sends at most this many",
    )
    parser.add_argument(
        "--metrics-out",
        type=Path,
        metavar="PATH",
        help="write the run's final /metrics exposition here (textfile)",
    )
    parser.set_defaults(handler=cmd_ingest)


def add_generate_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``phonebank generate``."""
    parser = subparsers.add_parser("generate", help="random-digit dialing inside allocated ranges")
    _plan_argument(parser)
    parser.add_argument(
        "--count", type=int, required=True, metavar="N", help="distinct numbers to generate"
    )
    parser.add_argument(
        "--region",
        action="append",
        metavar="CODE",
        help="region code (repeatable); default: the campaign's regions",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed (same seed, same numbers)")
    parser.add_argument(
        "--stratify",
        choices=STRATIFICATIONS,
        default="capacity",
        help="quota per region: by capacity (default) or equal",
    )
    parser.set_defaults(handler=cmd_generate)


def serve_metrics(settings: Settings, registry: CollectorRegistry) -> None:
    """Serve /metrics during the run; a port already in use only costs the live view."""
    try:
        start_metrics_server(settings.ingest_metrics_port, registry, settings.bind_address)
    except OSError as exc:
        log.warning("no live /metrics on port %d: %s", settings.ingest_metrics_port, exc)


def _load_plan(args: argparse.Namespace, settings: Settings) -> NumberingPlan:
    if args.numbering_plan:
        return NumberingPlan.load(args.numbering_plan)
    return NumberingPlan.from_settings(settings.numbering_plan)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``phonebank ingest``."""
    report_to_stdout = args.report == "-"
    try:
        plan = _load_plan(args, settings)
        with _report_stream(args.report) as report:
            options = IngestOptions(
                sources=args.sources,
                column=args.column,
                dry_run=args.dry_run,
                report=report if args.dry_run else None,
                rejects=args.rejects or (None if args.dry_run else Path("ingest-rejects.tsv")),
                checkpoint_dir=args.checkpoint_dir,
                chunk_size=args.chunk_size,
                checkpoint_lines=args.checkpoint_lines,
            )
            sink = None if args.dry_run else (lambda: KafkaSink(settings))
            run = IngestRun(settings, plan, options, sink)
            registry = ingest_registry(run.progress)
            if not args.dry_run:
                serve_metrics(settings, registry)
            summary = run.run()
            if args.metrics_out:
                write_metrics_file(registry, args.metrics_out)
    except (SourceError, NumberingPlanError, UnknownRegionError, OSError) as exc:
        print(f"phonebank ingest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except IngestError as exc:
        print(f"phonebank ingest: {exc}; run again to resume", file=sys.stderr)
        return EXIT_FAILED
    _write_summary(
        summary,
        args.summary or (None if args.dry_run else Path("ingest-summary.json")),
        sys.stderr if report_to_stdout else sys.stdout,
    )
    return 0


@contextmanager
def _report_stream(target: str | None) -> Iterator[TextIO | None]:
    """The dry-run report stream: stdout for ``-``, a file for a path, None otherwise."""
    if target == "-":
        yield sys.stdout
    elif target:
        with Path(target).open("w", encoding="utf-8") as stream:
            yield stream
    else:
        yield None


def _write_summary(summary: dict[str, Any], path: Path | None, out: TextIO) -> None:
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    if path is not None:
        path.write_text(text + "\n", encoding="utf-8")
    print(text, file=out)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``phonebank generate``."""
    try:
        plan = _load_plan(args, settings)
        regions = args.region or sorted(
            set(plan.regions()) & select_regions(settings.regions_include, settings.regions_exclude)
        )
        batches = iter_generated_batches(plan, args.count, regions, args.seed, args.stratify)
        for _, numbers in batches:
            sys.stdout.write("".join(f"+7{n}\n" for n in numbers.tolist()))
    except (ValueError, OSError) as exc:
        print(f"phonebank generate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
