"""Topics created on the three-broker Kafka: three replicas, two of them in sync for a write."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from phonebank.infra.kafka import ensure_topics, make_admin
from phonebank.local import kafka_cluster
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.kafka_cluster]


def test_phonebank_topics_get_three_replicas_and_two_in_sync(
    cluster_settings: Settings, stack_settings: StackSettings
) -> None:
    """Given the three-broker Kafka and the automatic replication settings,
    When phonebank creates its topics,
    Then every partition has 3 replicas, all in sync, and each topic says
    min.insync.replicas=2."""
    ensure_topics(cluster_settings)
    topics = [cluster_settings.numbers_topic, cluster_settings.outcomes_topic]
    topics.append(cluster_settings.dnc_topic)
    partitions = kafka_cluster.partitions_of(stack_settings, topics)
    assert len(partitions) == sum(
        (cluster_settings.numbers_partitions, cluster_settings.outcomes_partitions, 1)
    )
    assert {len(p["replica_nodes"]) for p in partitions} == {3}
    assert kafka_cluster.fully_replicated(stack_settings, topics)
    admin = make_admin(cluster_settings)
    try:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, configs=["min.insync.replicas"])
            for topic in topics
        ]
        described = admin.describe_configs(resources)["topic"]
    finally:
        admin.close()
    assert {described[t]["min.insync.replicas"]["value"] for t in topics} == {"2"}
