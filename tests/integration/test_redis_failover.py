"""A Redis Cluster master killed under load: its replica takes over; what async replication lost.

Runs on the local cluster only (``-m cluster``). One writer sends acknowledged SADDs
through the lease engine's batch transport to one region's slot while that slot's
master is SIGKILLed. Redis replicates asynchronously: a write the master acknowledged
but had not yet sent to its replica is gone after the failover. The test measures how
many, and checks the bound: what is lost is a suffix of the writes acknowledged before
the kill (replication is in order), and nothing acknowledged by the new master is lost.
The killed node is started again and rejoins as a replica.

The second test makes the loss certain (the replica's link is cut before the last
writes) and shows what finds and repairs it. The auditor (``phonebank audit``) had not
landed when this was written, so the detector here is the comparison the auditor makes
in bulk, Kafka's outcomes against Redis's queues, next to the invariant check of
tests/integration (``assert_conserved``), which cannot see this loss: the promoted
replica's state is consistent, only older.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import redis
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from redis.cluster import RedisCluster

from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_producer, read_topic
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.leases.scripts import Scripts
from phonebank.local import redis_cluster, stack
from phonebank.local.stack_settings import StackSettings
from phonebank.ops.rebuild import rebuild
from phonebank.settings import Settings
from tests.conftest import wipe_namespace
from tests.integration.assigner_helpers import chunk, produce, queue_all, ready
from tests.integration.cluster_helpers import (
    CLUSTER_ONLY,
    Master,
    masters,
    owner,
    region_slot,
    wait_for,
)
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    assert_conserved,
    lease_client,
    local_instant,
    scheme,
)

pytestmark = CLUSTER_ONLY

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


#: the campaign's numbers: FIRST … FIRST + 9
NUMBERS = [FIRST + i for i in range(10)]


def replica_of(master: Master) -> int:
    """The port of ``master``'s replica."""
    with master.client() as node:
        line = node.execute_command("CLUSTER", "REPLICAS", master.node_id)[0]
    text = line.decode() if isinstance(line, bytes) else str(line)
    return int(text.split()[1].split("@")[0].rsplit(":", 1)[1])


def pid_of(stack_settings: StackSettings, port: int) -> int:
    pid = stack.read_pid(stack.stack_paths(stack_settings), redis_cluster.process_name(port))
    assert pid is not None
    return pid


def call_and_relay(
    settings: Settings, client: RedisClient, producer: KafkaProducer, n: int
) -> None:
    """``n`` volunteers each reach their number; the outcomes are relayed to Kafka."""
    leases = lease_client(settings, client, local_instant(12), MOSCOW_ONLY)
    for index in range(n):
        lease = leases.acquire(f"volunteer-{index}-{uuid_suffix()}")
        assert lease is not None
        leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
    OutcomeRelay(settings, client, producer, RelayMetrics(CollectorRegistry())).relay_all()


def uuid_suffix() -> str:
    return os.urandom(4).hex()


def finished_in_kafka(settings: Settings) -> set[int]:
    """Numbers whose outcome (a conversation: final) the outcomes topic holds."""
    return {
        OutcomeEvent.decode(r.value).number for r in read_topic(settings, settings.outcomes_topic)
    }


def test_writes_lost_in_a_failover_are_found_against_kafka_and_repaired_by_rebuild(
    settings: Settings, cluster_client: RedisCluster, stack_settings: StackSettings
) -> None:
    # Given ten Moscow numbers queued from Kafka, two of them called and relayed
    moscow = settings.model_copy(update={"regions_include": ["RU-MOW"]})
    ensure_topics(moscow)
    produce(moscow, [chunk("RU-MOW", 0, NUMBERS)])
    producer = make_producer(moscow)
    queue_all(moscow, cluster_client)
    call_and_relay(moscow, cluster_client, producer, 2)
    # And Moscow's master cut off from its replica (stopped; the master drops the link)
    seed = stack_settings.stack_redis_cluster_port
    victim = owner(seed, region_slot("RU-MOW"))
    replica = replica_of(victim)
    replica_pid = pid_of(stack_settings, replica)
    os.kill(replica_pid, signal.SIGSTOP)
    try:
        with victim.client() as node:
            node.execute_command("CLIENT", "KILL", "TYPE", "replica")
        # When two more numbers are called and relayed, acknowledged by the master alone,
        call_and_relay(moscow, cluster_client, producer, 2)
        # and the master dies before its replica heard of them
        os.kill(pid_of(stack_settings, victim.port), signal.SIGKILL)
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    wait_for(lambda: _owner_port(seed, region_slot("RU-MOW")) == replica, "the replica promoted")
    # Then the promoted replica is consistent but older: the invariant check passes,
    leases = lease_client(moscow, cluster_client, local_instant(12), MOSCOW_ONLY)
    assert_conserved(moscow, cluster_client, "RU-MOW", leases.now_ms())
    # while Kafka holds four final outcomes and Redis queues two of those numbers again
    finished = finished_in_kafka(moscow)
    assert len(finished) == 4
    requeued = finished & set(ready(cluster_client, moscow, "RU-MOW"))
    assert len(requeued) == 2
    # When the campaign's keys are dropped and Redis rebuilt from Kafka
    wipe_namespace(cluster_client, moscow.key_prefix)
    summary = rebuild(moscow, cluster_client)
    queue_all(moscow, cluster_client)
    producer.close()
    # Then the four reached numbers are finished and only the six others are queued
    assert summary.states["done"] == 4
    assert sorted(ready(cluster_client, moscow, "RU-MOW")) == sorted(set(NUMBERS) - finished)
    assert_conserved(moscow, cluster_client, "RU-MOW", leases.now_ms())
    # Finally the killed node comes back as a replica
    redis_cluster.up(stack_settings)
    assert {m.port for m in masters(seed)} >= {replica}
