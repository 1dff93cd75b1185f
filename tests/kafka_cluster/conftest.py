"""Fixtures of the ``-m kafka_cluster`` suite: the local three-broker Kafka and its faults.

The cluster (``phonebank stack up --kafka-brokers 3``) is started once per session if it
is not running and left as found. Each test gets ``cluster_settings``: its own namespace
(the root conftest's ``settings``: Redis keys on the stack's Redis) with its topics on
the three brokers, and ``brokers``, which kills a broker with SIGKILL and, after the
test, starts every killed one again and waits until each partition of the test's topics
(and the group offsets) has all three replicas back in sync, so the next test starts on
a whole cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phonebank.local import kafka_cluster
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings
from tests.conftest import drop_topics
from tests.kafka_cluster.helpers import OFFSETS_TOPIC


@pytest.fixture(scope="session")
def kafka_cluster_stack(local_stack: Settings, stack_settings: StackSettings) -> Iterator[None]:
    """The local three-broker Kafka (started if it is not running; left as found)."""
    started = kafka_cluster.up(stack_settings)
    yield
    if started:
        kafka_cluster.down(stack_settings)


class Brokers:
    """Kills brokers of the local cluster during a test; :meth:`restore` restarts them."""

    def __init__(self, stack: StackSettings, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings
        self.killed: list[int] = []

    def leader_of(self, topic: str, partition: int) -> int:
        """The node leading ``topic``/``partition`` now."""
        return kafka_cluster.leader_of(self.stack, topic, partition)

    def kill(self, node: int) -> None:
        """SIGKILL broker ``node`` (it is restarted after the test)."""
        kafka_cluster.kill_broker(self.stack, node)
        self.killed.append(node)

    def restore(self) -> None:
        """Start the killed brokers again; wait until all replicas are in sync."""
        for node in self.killed:
            kafka_cluster.start_broker(self.stack, node)
        kafka_cluster.wait_ready(self.stack)
        topics = [
            self.settings.numbers_topic,
            self.settings.outcomes_topic,
            self.settings.dnc_topic,
            OFFSETS_TOPIC,
        ]
        present = sorted(kafka_cluster.existing_topics(self.stack) & set(topics))
        kafka_cluster.wait_until(
            "every replica back in sync",
            lambda: kafka_cluster.fully_replicated(self.stack, present),
        )
        self.killed.clear()


@pytest.fixture
def cluster_settings(
    settings: Settings, kafka_cluster_stack: None, stack_settings: StackSettings
) -> Iterator[Settings]:
    """The test's namespace with its topics on the three brokers (dropped afterwards)."""
    on_cluster = kafka_cluster.cluster_settings(settings, stack_settings)
    yield on_cluster
    drop_topics(on_cluster)


@pytest.fixture
def brokers(cluster_settings: Settings, stack_settings: StackSettings) -> Iterator[Brokers]:
    """Broker faults for one test; every killed broker is back, in sync, afterwards."""
    handle = Brokers(stack_settings, cluster_settings)
    yield handle
    handle.restore()
