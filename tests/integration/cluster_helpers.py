"""Operating the local Redis Cluster from tests: who owns a slot, moving a slot, failover."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from phonebank.leases.keys import region_tag

#: the marks of a module that runs on the local Redis Cluster only (``-m cluster``)
CLUSTER_ONLY = [
    pytest.mark.integration,
    pytest.mark.cluster,
    pytest.mark.parametrize("redis_backend", ["cluster"], indirect=True),
]
#: seconds a cluster change (failover, slot move) may take to be seen by every node
SETTLE_TIMEOUT_SECONDS = 30.0
#: seconds between two looks at the cluster while it settles
POLL_SECONDS = 0.05
#: keys moved per MIGRATE call
MIGRATE_BATCH = 100


@dataclass(frozen=True)
class Master:
    """One master of the cluster, as CLUSTER SLOTS shows it."""

    node_id: str
    port: int
    slots: tuple[tuple[int, int], ...]

    def owns(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)

    def client(self) -> redis.Redis:
        """A client of this node alone (no redirects followed)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


def masters(any_port: int) -> list[Master]:
    """The masters and their slot ranges, asked of the node on ``any_port``."""
    node = redis.Redis(host="127.0.0.1", port=any_port, socket_timeout=5, decode_responses=True)
    try:
        shards = node.cluster("SLOTS")
    finally:
        node.close()
    by_id: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for low, high, primary, *_ in shards:
        port, node_id = int(primary[1]), str(primary[2])
        by_id.setdefault(node_id, (port, []))[1].append((int(low), int(high)))
    return sorted(
        (Master(node_id, port, tuple(ranges)) for node_id, (port, ranges) in by_id.items()),
        key=lambda master: master.port,
    )


def region_slot(region: str) -> int:
    """The Cluster slot of every key of ``region``."""
    return key_slot(region_tag(region)[1:-1].encode())


def owner(any_port: int, slot: int) -> Master:
    """The master serving ``slot``."""
    return next(master for master in masters(any_port) if master.owns(slot))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (a cluster change is seen by gossip, no event)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {SETTLE_TIMEOUT_SECONDS:.0f}s")
        time.sleep(POLL_SECONDS)


def start_migration(source: Master, target: Master, slot: int) -> None:
    """Mark ``slot`` importing on ``target`` and migrating on ``source``."""
    with target.client() as node:
        node.cluster("SETSLOT", slot, "IMPORTING", source.node_id)
    with source.client() as node:
        node.cluster("SETSLOT", slot, "MIGRATING", target.node_id)


def migrate_keys(source: Master, target: Master, slot: int) -> int:
    """MIGRATE every key of ``slot`` from ``source`` to ``target``; returns how many."""
    moved = 0
    with source.client() as node:
        while keys := node.cluster("GETKEYSINSLOT", slot, MIGRATE_BATCH):
            node.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
    return moved


def finish_migration(all_masters: list[Master], target: Master, slot: int) -> None:
    """Assign ``slot`` to ``target`` on every master (the end of a slot move)."""
    for master in [target, *(m for m in all_masters if m != target)]:
        with master.client() as node:
            node.cluster("SETSLOT", slot, "NODE", target.node_id)


def move_slot(any_port: int, slot: int, target: Master) -> None:
    """Move ``slot`` and its keys to ``target`` (what ``redis-cli --cluster reshard`` does)."""
    source = owner(any_port, slot)
    if source.node_id == target.node_id:
        return
    start_migration(source, target, slot)
    migrate_keys(source, target, slot)
    finish_migration(masters(any_port), target, slot)
    wait_for(
        lambda: owner(any_port, slot).node_id == target.node_id, f"slot {slot} on {target.port}"
    )


def slot_owner_port(client: RedisCluster, slot: int) -> int:
    """The port of the master ``client``'s slot map names for ``slot``."""
    return int(client.nodes_manager.get_node_from_slot(slot).port)


def command_calls(master: Master, command: str) -> int:
    """How many times ``master`` ran ``command`` since it started."""
    with master.client() as node:
        stats = node.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
