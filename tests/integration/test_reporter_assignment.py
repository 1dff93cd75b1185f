"""The reporter reads every partition of the outcomes topic, however the topic came to be.

A topic created a moment ago (by the reporter itself, or by an assigner starting in the
same second) can be missing from the broker's metadata for a while; the reporter used to
assign itself the empty set it was then given, and read nothing, forever, reporting lag 0.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer

from phonebank.domain.records import Outcome
from phonebank.infra.kafka import ensure_topics, make_consumer
from phonebank.reporter.consumer import ReporterService
from phonebank.settings import Settings
from tests.integration.outage_helpers import wait_until
from tests.integration.test_reporter_service import outcome, produce

pytestmark = pytest.mark.integration

#: metadata answers without the topic's partitions before the real one (a slow broker)
EMPTY_ANSWERS = 3
EVENTS = [outcome(9_160_000_000 + i, Outcome.CONVERSATION) for i in range(8)]


class Running:
    """A reporter's loop in a thread, stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        self.service = ReporterService(settings)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,))

    def __enter__(self) -> ReporterService:
        self.thread.start()
        return self.service

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def counted(service: ReporterService) -> int:
    return service.status.aggregator.applied


def test_a_reporter_started_before_the_topic_exists_reads_every_partition(
    settings: Settings,
) -> None:
    """Given no outcomes topic yet,
    When a reporter starts (and creates it), then events are produced,
    Then it holds every partition and counts every event."""
    with Running(settings) as service:
        wait_until(service.status.ready_event.is_set, "the reporter to be ready")
        produce(settings, EVENTS)
        wait_until(lambda: counted(service) == len(EVENTS), "every event counted")
        assert len(service._partitions) == settings.outcomes_partitions


def test_a_reporter_started_with_an_assigner_reads_every_partition(settings: Settings) -> None:
    """Given no topics yet,
    When a reporter and an assigner's topic setup start at the same moment,
    Then the reporter holds every partition and counts every event produced."""
    assigner = threading.Thread(target=ensure_topics, args=(settings,))
    running = Running(settings)
    assigner.start()
    with running as service:
        assigner.join()
        wait_until(service.status.ready_event.is_set, "the reporter to be ready")
        produce(settings, EVENTS)
        wait_until(lambda: counted(service) == len(EVENTS), "every event counted")
        assert len(service._partitions) == settings.outcomes_partitions


@pytest.fixture
def slow_metadata(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The reporter's consumer: its first metadata answers lack the topic's partitions;
    yields the list of partition counts it answered."""
    answers: list[int] = []

    def make(settings: Settings, group: str) -> KafkaConsumer:
        consumer = make_consumer(settings, group)
        real_partitions = consumer.partitions_for_topic

        def partitions_for_topic(topic: str) -> set[int]:
            listed: set[int] = (
                set(real_partitions(topic)) if len(answers) >= EMPTY_ANSWERS else set()
            )
            answers.append(len(listed))
            return listed

        monkeypatch.setattr(consumer, "partitions_for_topic", partitions_for_topic)
        return consumer

    monkeypatch.setattr("phonebank.reporter.consumer.make_consumer", make)
    yield answers


def test_partitions_missing_from_the_first_metadata_are_asked_for_again(
    settings: Settings, slow_metadata: list[int]
) -> None:
    """Given a broker whose first three metadata answers list no partition of the topic,
    When the reporter starts, Then it asks again until it gets them, holds every
    partition and counts every event."""
    with Running(settings) as service:
        wait_until(service.status.ready_event.is_set, "the reporter to be ready")
        produce(settings, EVENTS)
        wait_until(lambda: counted(service) == len(EVENTS), "every event counted")
    assert slow_metadata[:EMPTY_ANSWERS] == [0] * EMPTY_ANSWERS
    assert len(service._partitions) == settings.outcomes_partitions
