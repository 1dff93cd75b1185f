"""The ``phonebank`` command: one entry point, one subcommand per service or tool.

Each service module offers ``add_parser(subparsers)``; the parser it adds sets
``handler`` to a function taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from phonebank import __version__
from phonebank.assigner import cli as assigner_service
from phonebank.gateway import cli as gateway_service
from phonebank.ingest import cli as ingest_cli
from phonebank.local import demo as demo_run
from phonebank.local import docs, kafka_cluster, redis_cluster, stack
from phonebank.local.stack_settings import StackSettings, load_stack_settings
from phonebank.ops import audit as audit_cli
from phonebank.ops import dnc as dnc_cli
from phonebank.ops import rebuild
from phonebank.ops import redis_acl as redis_acl_cli
from phonebank.ops import volunteers as volunteers_cli
from phonebank.reporter import cli as reporter_cli
from phonebank.settings import Settings, SettingsError, load_settings

#: A service's hook that adds its subcommand(s) to the ``phonebank`` parser.
AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

#: Exit code for a usage or configuration error.
EXIT_USAGE = 2
#: Exit code for a failure of the local stack.
EXIT_STACK = 3


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings, secrets masked (or the README's table of them)."""
    if args.markdown:
        print(docs.settings_tables())
    else:
        print(json.dumps(settings.masked(), indent=2, sort_keys=True))
    return 0


def stack_up(args: argparse.Namespace, settings: StackSettings) -> None:
    """``stack up``: the stack, and the clusters the options ask for."""
    started = stack.up(settings)
    if args.redis_cluster:
        started = redis_cluster.up(settings) or started
        print(
            f"Redis Cluster: PHONEBANK_REDIS_CLUSTER=true PHONEBANK_REDIS_URL="
            f"{redis_cluster.seeds_url(settings)}"
        )
    if args.kafka_brokers == kafka_cluster.BROKERS:
        started = kafka_cluster.up(settings) or started
        print(
            "Kafka cluster: PHONEBANK_KAFKA_BOOTSTRAP_SERVERS="
            f"{kafka_cluster.bootstrap_servers(settings)}"
        )
    print("stack started" if started else "stack already running")


def stack_status(args: argparse.Namespace, settings: StackSettings) -> int:
    """``stack status``: 0 when every process shown is ready."""
    report = stack.status(settings)
    if args.redis_cluster:
        report.update(redis_cluster.status(settings))
    if args.kafka_brokers == kafka_cluster.BROKERS:
        report.update(kafka_cluster.status(settings))
    for name, state in report.items():
        print(f"{name}: {state}")
    return 0 if all(s.startswith("ready") for s in report.values()) else 1


def cmd_stack(args: argparse.Namespace, _: Settings) -> int:
    """Run one stack action (the stack has its own settings, ``PHONEBANK_STACK_*``)."""
    try:
        settings = load_stack_settings()
        if args.action == "up":
            stack_up(args, settings)
        elif args.action == "down":
            stopped = stack.down(settings)
            print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
        elif args.action == "status":
            return stack_status(args, settings)
        else:
            names = ["kafka", "redis"]
            if args.kafka_brokers == kafka_cluster.BROKERS:
                names += map(kafka_cluster.process_name, kafka_cluster.node_ids())
            for name in names:
                print(f"==> {name} <==\n{stack.log_tail(settings, name, args.lines)}")
    except stack.StackError as exc:
        print(f"phonebank stack: {exc}", file=sys.stderr)
        return EXIT_STACK
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    parser = argparse.ArgumentParser(
        prog="phonebank", description="A distributed phone bank: ingest, assign, report."
    )
    parser.add_argument("--version", action="version", version=f"phonebank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="print the effective settings (secrets masked)")
    config.add_argument(
        "--markdown", action="store_true", help="print the README's configuration table instead"
    )
    config.set_defaults(handler=cmd_config)

    stack_parser = commands.add_parser("stack", help="run the local Kafka + Redis stack")
    stack_parser.add_argument("action", choices=["up", "down", "status", "logs"])
    stack_parser.add_argument("--lines", type=int, default=40, help="log lines to show")
    stack_parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="up: also a local Redis Cluster (3 masters, 3 replicas); status: show its nodes",
    )
    stack_parser.add_argument(
        "--kafka-brokers",
        type=int,
        choices=[1, kafka_cluster.BROKERS],
        default=1,
        help="up: 3 also runs a local three-broker Kafka (KRaft quorum, docs/kafka-cluster.md); "
        "status, logs: show its brokers",
    )
    stack_parser.set_defaults(handler=cmd_stack)

    for add_parser in _service_parsers():
        add_parser(commands)
    return parser


def _service_parsers() -> list[AddParser]:
    """The ``add_parser`` functions of the services."""
    return [
        ingest_cli.add_ingest_parser,
        ingest_cli.add_generate_parser,
        assigner_service.add_parser,
        dnc_cli.add_parser,
        rebuild.add_parser,
        audit_cli.add_parser,
        reporter_cli.add_parser,
        demo_run.add_parser,
        gateway_service.add_parser,
        volunteers_cli.add_parser,
        redis_acl_cli.add_parser,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``phonebank`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"phonebank: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # kafka-python narrates every connection at INFO; keep its warnings only.
    kafka_level = max(logging.WARNING, logging.getLevelNamesMapping()[settings.log_level])
    logging.getLogger("kafka").setLevel(kafka_level)
    code: int = args.handler(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
