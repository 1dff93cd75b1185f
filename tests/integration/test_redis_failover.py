"""A Redis Cluster master killed under load: its replica takes over; what async replication lost.

Runs on the local cluster only (``-m cluster``). One writer sends acknowledged SADDs
through the lease engine's batch transport to one region's slot while that slot's
master is SIGKILLed. Redis replicates asynchronously: a write the master acknowledged
but had not yet sent to its replica is gone after the failover. The test measures how
many, and checks the bound: what is lost is a suffix of the writes acknowledged before
the kill (replication is in order), and nothing acknowledged by the new master is lost.
The killed node is started again and rejoins as a replica.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.scripts import Scripts
from phonebank.local import redis_cluster, stack
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings
from tests.integration.cluster_helpers import owner, region_slot, wait_for
from tests.integration.lease_helpers import scheme

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cluster,
    pytest.mark.parametrize("redis_backend", ["cluster"], indirect=True),
]

#: writes acknowledged before the master is killed
WRITES_BEFORE_KILL = 3000
#: writes acknowledged by the new master before the writer stops
WRITES_AFTER_FAILOVER = 200


class Writer(threading.Thread):
    """Adds 0, 1, 2 … to one set, one batch each, recording which were acknowledged."""

    def __init__(self, client: RedisClient, key: str) -> None:
        super().__init__(name="writer", daemon=True)
        self.client, self.key = client, key
        self.scripts = Scripts(client)
        self.acked: list[int] = []
        self.unknown: list[int] = []  # sent, connection lost: may or may not have run
        self.failed_at: int | None = None  # acked count when the first error came
        self.enough = threading.Event()
        self.killed_after = threading.Event()
        self.stop_at: int | None = None

    def run(self) -> None:
        value = 0
        while self.stop_at is None or len(self.acked) < self.stop_at:
            batch = self.scripts.pipeline(self.client)
            batch.sadd(self.key, str(value))
            try:
                batch.execute()
            except redis.RedisError:
                self.unknown.append(value)
                self.failed_at = self.failed_at or len(self.acked)
            else:
                self.acked.append(value)
            value += 1
            if len(self.acked) >= WRITES_BEFORE_KILL:
                self.enough.set()


@pytest.fixture
def cluster_client(redis_client: RedisClient) -> Iterator[RedisCluster]:
    assert isinstance(redis_client, RedisCluster)
    yield redis_client


def test_a_killed_master_is_replaced_and_loses_at_most_its_last_writes(
    settings: Settings, cluster_client: RedisCluster, stack_settings: StackSettings
) -> None:
    # Given a writer adding to a set in Moscow's slot, as fast as it can
    key = scheme(settings).region("RU-MOW").parked
    slot = region_slot("RU-MOW")
    seed = stack_settings.stack_redis_cluster_port
    victim = owner(seed, slot)
    writer = Writer(cluster_client, key)
    writer.start()
    assert writer.enough.wait(timeout=60)
    # When the slot's master is SIGKILLed under load
    paths = stack.stack_paths(stack_settings)
    pid = stack.read_pid(paths, redis_cluster.process_name(victim.port))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    acked_at_kill = len(writer.acked)
    # Then its replica takes over and the writer's batches reach it
    wait_for(lambda: _owner_port(seed, slot) not in (None, victim.port), "a new master")
    writer.stop_at = acked_at_kill + WRITES_AFTER_FAILOVER
    writer.join(timeout=60)
    assert not writer.is_alive()
    present = {int(member) for member in cluster_client.smembers(key)}
    # Then what was lost is a suffix of what the old master acknowledged, nothing after
    before = writer.acked[: writer.failed_at]
    after = writer.acked[writer.failed_at :]
    lost = [value for value in before if value not in present]
    assert lost == before[len(before) - len(lost) :]
    assert set(after) <= present
    print(
        json.dumps(
            {
                "acked_before_kill": len(before),
                "lost_after_failover": len(lost),
                "in_doubt_connection_errors": len(writer.unknown),
                "in_doubt_applied": len(set(writer.unknown) & present),
            }
        )
    )
    # Finally the killed node comes back as a replica: the cluster is whole again
    redis_cluster.up(stack_settings)


def _owner_port(seed: int, slot: int) -> int | None:
    """The port of the master serving ``slot`` now (None while the cluster cannot say)."""
    for port in (seed + index for index in range(redis_cluster.NODES)):
        try:
            return owner(port, slot).port
        except (redis.RedisError, StopIteration):
            continue
    return None
