"""Redis Cluster: regions spread over every master; batches follow ASK, TRYAGAIN and MOVED.

Runs on the local cluster only (``-m cluster``). The tests that move a slot leave it on
its new master: the cluster stays whole (every slot served), only its map changes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import pytest
from redis.cluster import RedisCluster

from phonebank.domain.records import Outcome
from phonebank.domain.regions import REGIONS
from phonebank.infra.redis_client import connect
from phonebank.leases import transport
from phonebank.leases.queues import enqueue_chunk
from phonebank.leases.scripts import Scripts
from phonebank.settings import Settings
from tests.integration.cluster_helpers import (
    CLUSTER_ONLY,
    Master,
    command_calls,
    finish_migration,
    masters,
    migrate_keys,
    owner,
    region_slot,
    slot_owner_port,
    start_migration,
)
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    lease_client,
    local_instant,
    scheme,
)

pytestmark = CLUSTER_ONLY

#: fewest regions each of the 3 masters must serve (95 regions; 27–34 each today)
MIN_REGIONS_PER_MASTER = 20


def seed_port(settings: Settings) -> int:
    """The port of the first seed node."""
    return int(settings.redis_url.split(",", maxsplit=1)[0].rsplit(":", 1)[1])


def test_every_master_serves_its_share_of_the_regions(
    settings: Settings, cluster_client: RedisCluster
) -> None:
    # Given one number queued in every region
    keys = scheme(settings)
    scripts = Scripts(cluster_client)
    for offset, region in enumerate(sorted(REGIONS)):
        assert enqueue_chunk(cluster_client, keys, region, [FIRST + offset], scripts=scripts) == 1
    # When each master is asked, without redirects, which ready lists it holds
    nodes = masters(seed_port(settings))
    served: Counter[int] = Counter()
    for master in nodes:
        with master.client() as node:
            for region in REGIONS:
                if master.owns(region_slot(region)):
                    assert node.exists(keys.region(region).ready) == 1, region
                    served[master.port] += 1
    # Then every region's list is on the master of its slot, and all three share them
    assert sum(served.values()) == len(REGIONS)
    assert len(nodes) == 3
    assert min(served[master.port] for master in nodes) >= MIN_REGIONS_PER_MASTER


def other_master(settings: Settings, slot: int) -> tuple[Master, Master]:
    """The slot's owner and another master to move it to."""
    source = owner(seed_port(settings), slot)
    target = next(m for m in masters(seed_port(settings)) if m.node_id != source.node_id)
    return source, target


def test_a_batch_follows_ask_then_moved_while_its_region_moves(
    settings: Settings, cluster_client: RedisCluster
) -> None:
    # Given a leased number in Moscow, and Moscow's slot half moved to another master
    leases = lease_client(settings, cluster_client, local_instant(12), MOSCOW_ONLY)
    keys = scheme(settings).region("RU-MOW")
    enqueue_chunk(cluster_client, scheme(settings), "RU-MOW", [FIRST, FIRST + 1])
    lease = leases.acquire("v1")
    assert lease is not None
    slot = region_slot("RU-MOW")
    source, target = other_master(settings, slot)
    start_migration(source, target, slot)
    assert migrate_keys(source, target, slot) > 0
    asked = command_calls(target, "asking")
    # When the lease is renewed (its keys are on the importing node now)
    deadline = leases.renew(lease.lease_id, lease.token)
    # Then the batch followed the ASK: the importing node ran it
    assert deadline >= lease.deadline_ms
    assert command_calls(target, "asking") > asked
    assert slot_owner_port(cluster_client, slot) == source.port
    # When the move is finished and the lease completed with the old slot map
    finish_migration(masters(seed_port(settings)), target, slot)
    completion = leases.complete(lease.lease_id, lease.token, Outcome.CONVERSATION)
    # Then the batch followed the MOVED and the slot map was read again
    assert completion.status.value == "recorded"
    assert slot_owner_port(cluster_client, slot) == target.port
    assert cluster_client.llen(keys.ready) == 1


def test_a_script_over_a_half_moved_slot_is_refused_and_changes_nothing(
    settings: Settings, cluster_client: RedisCluster
) -> None:
    # Given Moscow's queue, its slot migrating and only its ready list moved so far
    keys = scheme(settings).region("RU-MOW")
    enqueue_chunk(cluster_client, scheme(settings), "RU-MOW", [FIRST, FIRST + 1])
    slot = region_slot("RU-MOW")
    source, target = other_master(settings, slot)
    start_migration(source, target, slot)
    with source.client() as node:
        node.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", keys.ready)
    # When more numbers are queued (a script over moved and unmoved keys: TRYAGAIN)
    with pytest.raises(transport.TooManyRedirectsError):
        enqueue_chunk(cluster_client, scheme(settings), "RU-MOW", [FIRST + 2])
    # Then nothing ran: once the move is finished the queue holds the first two only
    migrate_keys(source, target, slot)
    finish_migration(masters(seed_port(settings)), target, slot)
    assert [int(n) for n in cluster_client.lrange(keys.ready, 0, -1)] == [FIRST, FIRST + 1]
    assert cluster_client.hget(keys.counters, "enqueued") == b"2"


def test_connect_reads_the_slot_map_from_any_seed(settings: Settings) -> None:
    # Given seeds of which the first does not answer
    seeds = settings.redis_url.split(",")
    unreachable = settings.model_copy(
        update={"redis_url": ",".join(["redis://127.0.0.1:1", *seeds[1:]])}
    )
    # When a client is made from them, Then it serves every slot
    client = connect(unreachable)
    try:
        assert isinstance(client, RedisCluster)
        assert client.ping() is True
        assert {master.port for master in masters(seed_port(settings))} == {
            int(node.port)
            for node in cast(list[Any], client.get_primaries())  # type: ignore[no-untyped-call]
        }
    finally:
        client.close()
