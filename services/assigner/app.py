"""The ``phonebank assigner`` process: consumer worker, outcomes relay, reaper, /metrics.

The worker consumes in the main thread; the relay and the reaper run in one background
thread on a fixed period. SIGTERM or SIGINT sets one stop event: the worker finishes
its chunk, commits and closes; the background thread ends its round; the producer is
flushed and closed.
"""

from __future__ import annotations

import argparse
import logging
import threading

import redis

from phonebank.assigner.metrics import AssignerMetrics
from phonebank.assigner.worker import AssignerWorker
from phonebank.infra.kafka import ensure_topics, make_producer
from phonebank.infra.metrics import start_metrics_server
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.infra.shutdown import stop_on_signals
from phonebank.leases.reaper import Reaper
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.leases.scripts import load_all
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: seconds between two rounds of relaying outcomes and reaping expired leases
HOUSEKEEPING_PERIOD_SECONDS = 1.0


def housekeeping(
    settings: Settings, client: RedisClient, metrics: AssignerMetrics, stop: threading.Event
) -> None:
    """Relay outcomes and reap expired leases until ``stop`` is set."""
    producer = make_producer(settings)
    relay = OutcomeRelay(settings, client, producer, RelayMetrics(metrics.registry))
    reaper = Reaper(settings, client)
    try:
        while not stop.is_set():
            try:
                metrics.reclaim_lag.set(reaper.reap_all().reclaim_lag_ms / 1000)
                relay.relay_all()
            except redis.RedisError as exc:
                log.warning("housekeeping round failed, retrying: %s", exc)
            stop.wait(HOUSEKEEPING_PERIOD_SECONDS)
        relay.relay_all()
    finally:
        producer.close()


def run_assigner(settings: Settings, stop: threading.Event, metrics_port: int | None) -> None:
    """Run one assigner until ``stop`` is set."""
    ensure_topics(settings)
    client = connect(settings)
    load_all(client)  # for the users that may only EVALSHA (deploy/redis/users.acl)
    metrics = AssignerMetrics(settings, client)
    if metrics_port is not None:
        start_metrics_server(metrics_port, metrics.registry, settings.bind_address)
    worker = AssignerWorker(settings, client, metrics)
    worker.stop = stop
    background = threading.Thread(
        target=housekeeping, args=(settings, client, metrics, stop), name="housekeeping"
    )
    background.start()
    try:
        worker.run()
    finally:
        stop.set()
        background.join()
        client.close()


def cmd_assigner(args: argparse.Namespace, settings: Settings) -> int:
    """``phonebank assigner``: run until SIGTERM/SIGINT."""
    stop = stop_on_signals("assigner")
    port = None if args.no_metrics else settings.assigner_metrics_port
    run_assigner(settings, stop, port)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank assigner``."""
    parser = commands.add_parser(
        "assigner", help="consume number chunks into per-region Redis queues; relay outcomes"
    )
    parser.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    parser.set_defaults(handler=cmd_assigner)
