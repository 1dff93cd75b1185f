"""The reporter's consumer lag, read from Kafka's admin API, and its Redis-state figures
when a dependency is down: they go absent, never stale or zero."""

from __future__ import annotations

import pytest
import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from phonebank.domain.records import NumberChunk
from phonebank.infra import metrics as names
from phonebank.infra.kafka import ensure_topics, make_producer, partition_for_region
from phonebank.infra.redis_client import connect
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import enqueue_chunk
from phonebank.reporter.lag import LagCollector, LagMonitor
from phonebank.reporter.redis_state import RedisStateCollector
from phonebank.settings import Settings

pytestmark = [pytest.mark.integration]

#: a national number for the chunks
NUMBER = 9161234567
#: a loopback port nothing listens on
DEAD_PORT = 1


def two_regions_on_two_partitions(settings: Settings) -> tuple[str, str]:
    first = "RU-MOW"
    for other in ("RU-SPE", "RU-KAM", "RU-NVS", "RU-SVE", "RU-TA"):
        if partition_for_region(other, settings.numbers_partitions) != partition_for_region(
            first, settings.numbers_partitions
        ):
            return first, other
    raise AssertionError("no second partition")


def produce(settings: Settings, regions: list[str]) -> None:
    producer = make_producer(settings)
    for seq, region in enumerate(regions):
        chunk = NumberChunk(
            campaign="default", region=region, source="t", seq=seq, numbers=[NUMBER]
        )
        producer.send(
            settings.numbers_topic,
            value=chunk.encode(),
            partition=partition_for_region(region, settings.numbers_partitions),
        )
    producer.flush()
    producer.close()


def commit(settings: Settings, region: str, offset: int) -> None:
    """The assigner group commits ``offset`` on ``region``'s partition (as a member would)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=settings.assigner_group
    )
    partition = TopicPartition(
        settings.numbers_topic, partition_for_region(region, settings.numbers_partitions)
    )
    consumer.assign([partition])
    consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
    consumer.close(autocommit=False)


def test_lag_is_read_from_kafka_while_no_assigner_runs(settings: Settings) -> None:
    """Given three chunks of one region and one of another in the numbers topic, and no
    assigner running
    When the reporter's lag monitor measures, and again after the group commits two
    Then the assigner group's lag and each region's backlog are what Kafka holds."""
    ensure_topics(settings)
    first, second = two_regions_on_two_partitions(settings)
    produce(settings, [first, first, first, second])
    monitor = LagMonitor(settings)
    figures = monitor.measure()
    assert figures.groups == {"assigner": 4, "reporter": 0}
    assert (figures.regions[first], figures.regions[second]) == (3, 1)
    commit(settings, first, 2)
    figures = monitor.measure()
    assert figures.groups["assigner"] == 2
    assert (figures.regions[first], figures.regions[second]) == (1, 1)
    exported = {
        (family.name, tuple(sample.labels.values())): sample.value
        for family in LagCollector(monitor).collect()
        for sample in family.samples
    }
    assert exported[(names.CONSUMER_LAG, ("assigner",))] == 2


def test_unreachable_kafka_leaves_the_lag_absent(settings: Settings) -> None:
    """Given brokers nobody can reach, When the monitor measures,
    Then it exports no lag at all (the absent() alert fires) rather than a zero."""
    dead = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{DEAD_PORT}"})
    monitor = LagMonitor(dead)
    assert not monitor.measure().measured
    assert list(LagCollector(monitor).collect()) == []


def test_a_missing_topic_is_not_a_zero_lag(settings: Settings) -> None:
    """Given a numbers topic that does not exist, When the monitor measures,
    Then nothing is exported."""
    monitor = LagMonitor(settings)
    assert not monitor.measure().measured
    assert list(LagCollector(monitor).collect()) == []


def test_unreachable_redis_exports_no_queue_figures(settings: Settings) -> None:
    """Given a Redis nobody can reach, When Prometheus scrapes the reporter,
    Then no queue figure is exported (none stale), only the clock's open regions."""
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{DEAD_PORT}/0"})
    client = connect(dead)
    try:
        families = [family.name for family in RedisStateCollector(client, dead).collect()]
    finally:
        client.close()
    assert families == [names.REGION_OPEN]


def test_the_redis_figures_are_read_at_scrape_time(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given a region with two ready numbers, When the collector is scraped twice with a
    number added in between, Then each scrape shows Redis as it is."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    collector = RedisStateCollector(redis_client, settings)

    def ready() -> float:
        family = next(f for f in collector.collect() if f.name == names.QUEUE_READY)
        return sum(s.value for s in family.samples if s.labels["region"] == "RU-MOW")

    enqueue_chunk(redis_client, scheme, "RU-MOW", [9161234567, 9161234568])
    assert ready() == 2
    enqueue_chunk(redis_client, scheme, "RU-MOW", [9161234569])
    assert ready() == 3
