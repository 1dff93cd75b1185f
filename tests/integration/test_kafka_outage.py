"""An assigner lives through a Kafka outage longer than the one that used to end it.

A private stack (its own broker and redis-server, on the session's private ports) runs
the worker loop and the housekeeping threads as ``phonebank assigner`` wires them. The
broker is killed for longer than 35 s (an outage that used to end the worker on an
uncaught end-offsets error, and kill the relay on a flush timeout), then started again
on its data: the worker and the relay count their failures, keep running, and once the
broker is back a new chunk is queued and a new outcome relayed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from phonebank.assigner.housekeeping import start_housekeeping
from phonebank.assigner.metrics import AssignerMetrics
from phonebank.assigner.worker import AssignerWorker
from phonebank.infra import metrics as names
from phonebank.infra.kafka import ensure_topics
from phonebank.local import stack
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings
from tests.integration.assigner_helpers import chunk, produce, ready
from tests.integration.lease_helpers import FIRST, MOSCOW_ONLY, fill, lease_client, local_instant
from tests.integration.outage_helpers import wait_until
from tests.integration.test_housekeeping import call_one

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: failed lag measurements to wait for while the broker is down (one every 5 s + 2 s
#: timeout: six take over 35 s)
OUTAGE_LAG_FAILURES = 6
#: seconds a step of this test may take (broker restarts, group rejoin, 30 s flushes)
STEP_SECONDS = 150.0


@pytest.fixture
def private_stack(stack_settings: StackSettings, tmp_path: Path) -> Iterator[StackSettings]:
    """A broker and a redis-server of this test only, on the private ports."""
    root = tmp_path / "stack"
    root.mkdir()
    (root / "jars").symlink_to(stack.stack_paths(stack_settings).jars)
    private = stack_settings.model_copy(
        update={
            "stack_dir": root,
            "stack_kafka_port": int(os.environ.get("PHONEBANK_PRIVATE_KAFKA_PORT", "29092")),
            "stack_controller_port": int(
                os.environ.get("PHONEBANK_PRIVATE_CONTROLLER_PORT", "29093")
            ),
            "stack_redis_port": int(os.environ.get("PHONEBANK_PRIVATE_REDIS_PORT", "26479")) + 50,
        }
    )
    stack.up(private)
    yield private
    stack.down(private)


def kill_broker(private: StackSettings) -> None:
    """SIGKILL the private broker (a crash) and wait until it is gone."""
    paths = stack.stack_paths(private)
    pid = stack.read_pid(paths, "kafka")
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: stack.read_pid(paths, "kafka") is None, "the broker to die")


def restart_broker(private: StackSettings) -> None:
    """Start the private broker again on its data (no new format) and wait for it."""
    paths = stack.stack_paths(private)
    config = stack.render_server_properties(private, paths)
    stack.spawn(paths, "kafka", stack.java_command(private, paths, "kafka.Kafka", str(config)))
    wait_until(lambda: stack.kafka_ready(private), "the broker to be back", STEP_SECONDS)


def test_an_assigner_lives_through_a_long_kafka_outage(
    settings: Settings, private_stack: StackSettings
) -> None:
    """Given an assigner (worker + housekeeping) on a private stack that queued a chunk
    and relayed an outcome,
    When the broker is killed, an outcome is recorded while it is down, and the broker
    stays down through six failed lag measurements (over 35 s), then comes back,
    Then the worker and the relay counted their failures and kept running, and after the
    broker is back the waiting outcome is relayed and a new chunk queued."""
    local = settings.model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{private_stack.stack_kafka_port}",
            "redis_url": f"redis://127.0.0.1:{private_stack.stack_redis_port}/0",
            "redis_cluster": False,
        }
    )
    ensure_topics(local)
    client = redis.Redis.from_url(local.redis_url)
    metrics = AssignerMetrics(local, client)
    stop = threading.Event()
    worker = AssignerWorker(local, client, metrics)
    worker.stop = stop
    loop = threading.Thread(target=worker.run, name="worker")
    loop.start()
    background = start_housekeeping(local, client, metrics, stop)

    def sample(name: str, labels: dict[str, str] | None = None) -> float:
        return metrics.registry.get_sample_value(name, labels or {}) or 0.0

    def failures(operation: str) -> float:
        return sample(names.BACKGROUND_FAILURES, {"operation": operation, "reason": "kafka"})

    try:
        produce(local, [chunk("RU-MOW", 0, [FIRST + 100])])
        wait_until(lambda: ready(client, local, "RU-MOW") == [FIRST + 100], "chunk 0", STEP_SECONDS)
        fill(local, client, "RU-MOW", [FIRST, FIRST + 1])
        leases = lease_client(local, client, local_instant(12), MOSCOW_ONLY)
        call_one(leases, "bob")
        wait_until(lambda: sample(names.OUTCOMES_RELAYED) >= 1, "bob's outcome", STEP_SECONDS)
        kill_broker(private_stack)
        call_one(leases, "carol")
        wait_until(lambda: failures("lag") >= OUTAGE_LAG_FAILURES, "lag failures", STEP_SECONDS)
        wait_until(lambda: failures("relay") >= 1, "a relay failure", STEP_SECONDS)
        assert loop.is_alive() and all(thread.is_alive() for thread in background)
        restart_broker(private_stack)
        wait_until(lambda: sample(names.OUTCOMES_RELAYED) >= 2, "carol's outcome", STEP_SECONDS)
        produce(local, [chunk("RU-MOW", 1, [FIRST + 200])])
        wait_until(lambda: FIRST + 200 in ready(client, local, "RU-MOW"), "chunk 1", STEP_SECONDS)
        assert loop.is_alive() and all(thread.is_alive() for thread in background)
    finally:
        stop.set()
        loop.join(STEP_SECONDS)
        for thread in background:
            thread.join(STEP_SECONDS)
        client.close()
    assert not loop.is_alive() and not any(thread.is_alive() for thread in background)
