"""The ``phonebank reporter`` subcommand's parser."""

from __future__ import annotations

import argparse

from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.cli import add_parser, cmd_reporter
from phonebank.reporter.report import ReportInputs, build_report


def test_reporter_subcommand_parses_its_options() -> None:
    # Given the phonebank parser with the reporter's subcommand added
    parser = argparse.ArgumentParser(prog="phonebank")
    add_parser(parser.add_subparsers(dest="command"))
    # When the options are parsed
    args = parser.parse_args(["reporter", "--port", "0", "--rebuild"])
    # Then they reach the handler
    assert (args.handler, args.port, args.rebuild) == (cmd_reporter, 0, True)
    defaults = parser.parse_args(["reporter"])
    assert (defaults.port, defaults.rebuild) == (None, False)


def test_nothing_ingested_has_no_projection() -> None:
    report = build_report(Aggregator(), ReportInputs("default", 1_000_000, {}))
    assert report["totals"]["projected_days"] is None
    assert report["regions"] == []
