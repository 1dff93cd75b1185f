"""``phonebank dnc add NUMBER… | import FILE | check NUMBER | reindex``: the do-not-call list.

Numbers are accepted in every format ingest accepts. ``add`` and ``import`` write to the
compacted Kafka topic ``phonebank.dnc`` first, then to Redis. Do-not-call is global across
campaigns and final (see :mod:`phonebank.leases.dnc`). Output never shows a number in
full; ``check`` answers through its exit code too (0 listed, 1 not listed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from phonebank.domain import clock
from phonebank.domain.normalize import OK, REASONS, normalize_text
from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import DncRecord, masked
from phonebank.infra.kafka import DNC_PARTITIONS, DNC_TOPIC_CONFIG, ensure_topic, make_producer
from phonebank.infra.redis_client import connect
from phonebank.leases import dnc
from phonebank.leases.dnc import UNPLACED_REGION, RegionOf
from phonebank.settings import Settings

#: seconds Kafka may take to acknowledge the do-not-call records
KAFKA_FLUSH_SECONDS = 30.0
#: Exit code of ``check`` for a number that is not listed, and of a bad argument.
EXIT_NOT_LISTED = 1
EXIT_BAD_NUMBER = 2


def parse_number(text: str) -> int | None:
    """The national number of one written number, or None if it is not a Russian number."""
    national, reason = normalize_text(text.strip().encode("utf-8", "replace"))
    return national if reason == OK else None


def _lines(path: str) -> Iterator[str]:
    if path == "-":
        yield from sys.stdin
        return
    with Path(path).open(encoding="utf-8", errors="replace") as source:
        yield from source


def record_in_kafka(settings: Settings, numbers: list[int], region_of: RegionOf) -> None:
    """Write the numbers to ``phonebank.dnc`` first and wait until every record is
    acknowledged (an error otherwise, and Redis is not touched): Kafka is the system of
    record, so a Redis rebuilt from Kafka (``phonebank rebuild``) still has them."""
    ensure_topic(settings, settings.dnc_topic, DNC_PARTITIONS, DNC_TOPIC_CONFIG)
    producer = make_producer(settings)
    now_ms = clock.now_ms()
    try:
        sent = []
        for number in numbers:
            entry = DncRecord(
                number=number, region=region_of(number) or UNPLACED_REGION, added_at_ms=now_ms
            )
            sent.append(
                producer.send(settings.dnc_topic, key=str(number).encode(), value=entry.encode())
            )
        producer.flush(timeout=KAFKA_FLUSH_SECONDS)
        for future in sent:
            future.get(timeout=KAFKA_FLUSH_SECONDS)  # raises unless acknowledged
    finally:
        producer.close()


def cmd_dnc(args: argparse.Namespace, settings: Settings) -> int:
    """Run one do-not-call action."""
    plan = NumberingPlan.from_settings(settings.numbering_plan)
    client = connect(settings)
    try:
        if args.action == "reindex":
            added = dnc.reindex(client, settings.key_prefix, campaign=settings.campaign)
            print(f"reindexed: {added} numbers newly on the list")
            return 0
        if args.action == "import":
            numbers, unparseable = dnc.parse_lines(_lines(args.file), parse_number)
            record_in_kafka(settings, numbers, plan.region_of)
            result = dnc.add_numbers(
                client, settings.key_prefix, numbers, plan.region_of, campaign=settings.campaign
            )
            print(
                f"added {result.added}, already listed {result.already_listed}, "
                f"unplaced {result.unplaced}, unparseable {unparseable}"
            )
            return 0
        numbers = []
        for text in args.numbers:
            number = parse_number(text)
            if number is None:
                reason = REASONS[normalize_text(text.encode("utf-8", "replace"))[1]]
                print(f"phonebank dnc: not a Russian number ({reason})", file=sys.stderr)
                return EXIT_BAD_NUMBER
            numbers.append(number)
        if args.action == "add":
            record_in_kafka(settings, numbers, plan.region_of)
            result = dnc.add_numbers(
                client, settings.key_prefix, numbers, plan.region_of, campaign=settings.campaign
            )
            print(f"added {result.added}, already listed {result.already_listed}")
            return 0
        listed = [dnc.is_listed(client, settings.key_prefix, n, plan.region_of) for n in numbers]
        for number, is_listed in zip(numbers, listed, strict=True):
            print(f"{masked(number)}: {'listed' if is_listed else 'not listed'}")
        return 0 if all(listed) else EXIT_NOT_LISTED
    finally:
        client.close()


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank dnc``."""
    parser = commands.add_parser("dnc", help="do-not-call list: add, import, check")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="put numbers on the do-not-call list")
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    check = actions.add_parser("check", help="exit 0 if every number is listed, 1 if not")
    check.add_argument("numbers", nargs="+", metavar="NUMBER")
    imported = actions.add_parser("import", help="add every number of a file, one per line")
    imported.add_argument("file", metavar="FILE", help="a text file, or - for stdin")
    actions.add_parser(
        "reindex",
        help="copy the per-region do-not-call sets of an older version into the one list",
    )
    parser.set_defaults(handler=cmd_dnc)
