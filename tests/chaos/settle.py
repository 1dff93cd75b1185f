"""When a scenario has settled: nothing in flight between Redis, Kafka and the reporter.

Settled means, read from the real engines (no sleeping for a guessed time): no lease is
live in any region (completed, or expired and reaped),
every outcome stream in Redis is empty (relayed to Kafka), and the reporter's group has
consumed the outcomes topic to its end. Only then is the audit's verdict final. Numbers
still in Kafka behind full queues are no sign of unrest: the audit counts them as the
backlog.
"""

from __future__ import annotations

from kafka import TopicPartition

from phonebank.infra.kafka import make_consumer
from phonebank.infra.redis_client import connect
from phonebank.leases.client import campaign_region_zones
from phonebank.leases.keys import RegionKeys
from phonebank.settings import Settings


def group_lag(settings: Settings, group: str, topic: str) -> int:
    """Records of ``topic`` the consumer ``group`` has not committed yet (all partitions)."""
    # a consumer of the group that never subscribes only reads the committed offsets
    consumer = make_consumer(settings, group)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(end - (consumer.committed(tp) or 0) for tp, end in ends.items())
    finally:
        consumer.close()


def in_flight(settings: Settings) -> dict[str, int]:
    """Live leases and unrelayed outcome events over every region of the campaign."""
    client = connect(settings)
    try:
        leases = relaying = 0
        for region in campaign_region_zones(settings):
            keys = RegionKeys(settings.key_prefix, settings.campaign, region)
            leases += int(client.zcard(keys.leases))
            relaying += int(client.xlen(keys.outcomes))
        return {"leases": leases, "unrelayed": relaying}
    finally:
        client.close()


def settled(settings: Settings) -> bool:
    """True when nothing is in flight (see the module docstring)."""
    if any(in_flight(settings).values()):
        return False
    return group_lag(settings, settings.reporter_group, settings.outcomes_topic) == 0
