"""The assigner process's wiring: consumer worker, housekeeping threads, /metrics.

The worker consumes in the main thread; the sweep (reaper) and the outcomes relay run in
two threads of their own (:mod:`phonebank.assigner.housekeeping`). SIGTERM or SIGINT
sets one stop event: the worker finishes its chunk, commits and closes; the threads end
their round (the relay flushes what it holds and closes its producer). Nothing else
ends the process: Redis and Kafka outages are retried with backoff by every loop, and a
broker down at start is waited for (operation ``startup``).
"""

from __future__ import annotations

import threading

from phonebank.assigner.housekeeping import start_housekeeping
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.assigner.worker import AssignerWorker
from phonebank.infra.kafka import ensure_topics
from phonebank.infra.metrics import start_metrics_server
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.infra.retry import DEPENDENCY_ERRORS, Backoff
from phonebank.leases.scripts import load_all
from phonebank.settings import Settings

#: seconds a Redis command or connection may take before it fails (a Redis that hangs, or
#: a network partition, then counts as an outage instead of blocking a loop for good)
REDIS_TIMEOUT_SECONDS = 10.0


def connect_redis(settings: Settings) -> RedisClient:
    """The assigner's Redis client: every command and connection bounded in time."""
    return connect(
        settings, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def start_worker(
    settings: Settings, client: RedisClient, metrics: AssignerMetrics, stop: threading.Event
) -> AssignerWorker | None:
    """Load the lease scripts (for the users that may only EVALSHA, deploy/redis/users.acl),
    create the topics and the worker, retrying with backoff while Redis or Kafka is down
    (an assigner started in an outage waits for it, /metrics up); None if stopped first."""
    backoff = Backoff("startup", metrics.failures, stop)
    while not stop.is_set():
        try:
            load_all(client)
            ensure_topics(settings)
            worker = AssignerWorker(settings, client, metrics)
        except DEPENDENCY_ERRORS as exc:
            backoff.failed(exc)
            continue
        worker.stop = stop
        return worker
    return None


def run_assigner(settings: Settings, stop: threading.Event, metrics_port: int | None) -> None:
    """Run one assigner until ``stop`` is set."""
    client = connect_redis(settings)
    metrics = AssignerMetrics(settings, client)
    if metrics_port is not None:
        start_metrics_server(metrics_port, metrics.registry, settings.bind_address)
    worker = start_worker(settings, client, metrics, stop)
    if worker is None:
        client.close()
        return
    background = start_housekeeping(settings, client, metrics, stop)
    try:
        worker.run()
    finally:
        stop.set()
        for thread in background:
            thread.join()
        client.close()
