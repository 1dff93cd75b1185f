"""The assigner process's wiring: consumer worker, housekeeping threads, /metrics.

The worker consumes in the main thread; the sweep (reaper) and the outcomes relay run in
two threads of their own (:mod:`phonebank.assigner.housekeeping`). SIGTERM or SIGINT
sets one stop event: the worker finishes its chunk, commits and closes; the threads end
their round (the relay flushes what it holds and closes its producer). Nothing else
ends the process: Redis and Kafka outages are retried with backoff by every loop.
"""

from __future__ import annotations

import threading

from phonebank.assigner.housekeeping import start_housekeeping
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.assigner.worker import AssignerWorker
from phonebank.infra.kafka import ensure_topics
from phonebank.infra.metrics import start_metrics_server
from phonebank.infra.redis_client import connect
from phonebank.leases.scripts import load_all
from phonebank.settings import Settings


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
    background = start_housekeeping(settings, client, metrics, stop)
    try:
        worker.run()
    finally:
        stop.set()
        for thread in background:
            thread.join()
        client.close()
