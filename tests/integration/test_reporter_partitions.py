"""The reporter holds every partition of the outcomes topic, whenever the topic appears.

Against the real broker: a reporter started before the topic exists, one started at the
same moment as an assigner creates the topics, and partitions added while it runs
(issue 11, item 7: a reporter once sat on no partition, ready, with lag 0).
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
import uuid

import pytest
from kafka.admin import NewPartitions, NewTopic

from phonebank.domain import clock
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_admin, make_producer
from phonebank.reporter import consumer as reporter_consumer
from phonebank.reporter.app import Reporter
from phonebank.reporter.consumer import ReporterService
from phonebank.settings import Settings
from tests.helpers import wait_applied

pytestmark = [pytest.mark.integration]

#: seconds to wait for the reporter to become ready or count what was produced
WAIT_SECONDS = 30.0
#: seconds a reporter that must not become ready is given to (wrongly) become ready
NOT_READY_SECONDS = 2.0
#: partitions the topic grows to in the "added while it runs" test
GROWN_PARTITIONS = 4


def event(number: int) -> OutcomeEvent:
    now = clock.now_ms()
    return OutcomeEvent(
        event_id=uuid.uuid4().hex,
        campaign="default",
        region="RU-MOW",
        number=number,
        outcome=Outcome.NO_ANSWER,
        attempt=1,
        lease_id=uuid.uuid4().hex,
        volunteer="vh-a",
        guideline="calm@1",
        leased_at_ms=now - 60_000,
        completed_at_ms=now,
    )


def produce_to_each(settings: Settings, partitions: range) -> int:
    """One event into each of ``partitions`` (explicitly placed); return how many."""
    producer = make_producer(settings)
    try:
        for partition in partitions:
            record = event(9_160_000_000 + partition)
            producer.send(settings.outcomes_topic, value=record.encode(), partition=partition)
        producer.flush(10)
    finally:
        producer.close()
    return len(partitions)


def readyz(reporter: Reporter) -> int:
    try:
        with urllib.request.urlopen(reporter.url + "/readyz", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def held(reporter: Reporter) -> list[int]:
    return sorted(tp.partition for tp in reporter.service._partitions)


def test_reporter_waits_not_ready_for_a_topic_created_after_it_started(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a reporter that cannot create the outcomes topic (someone else will)
    When it starts before the topic exists, and the topic is created later
    Then it is not ready while the topic is missing, then holds every partition,
    is ready and counts events from each."""
    monkeypatch.setattr(reporter_consumer, "ensure_topic", lambda *args, **kwargs: False)
    reporter = Reporter(settings, port=0).start()
    try:
        assert not reporter.wait_ready(NOT_READY_SECONDS)
        assert readyz(reporter) == 503
        admin = make_admin(settings)
        try:
            topic = NewTopic(settings.outcomes_topic, settings.outcomes_partitions, -1)
            admin.create_topics([topic])
        finally:
            admin.close()
        assert reporter.wait_ready(WAIT_SECONDS)
        assert readyz(reporter) == 200
        assert held(reporter) == list(range(settings.outcomes_partitions))
        sent = produce_to_each(settings, range(settings.outcomes_partitions))
        assert wait_applied(reporter.service.status, sent, WAIT_SECONDS)
    finally:
        reporter.stop()


def test_reporter_started_before_the_topic_exists_creates_it_and_holds_it_all(
    settings: Settings,
) -> None:
    """Given no outcomes topic
    When a reporter starts
    Then it creates the topic, holds every partition and counts an event from each."""
    reporter = Reporter(settings, port=0).start()
    try:
        assert reporter.wait_ready(WAIT_SECONDS)
        assert held(reporter) == list(range(settings.outcomes_partitions))
        sent = produce_to_each(settings, range(settings.outcomes_partitions))
        assert wait_applied(reporter.service.status, sent, WAIT_SECONDS)
        assert readyz(reporter) == 200
    finally:
        reporter.stop()


def _assigner_start(barrier: threading.Barrier, settings: Settings) -> None:
    """What an assigner does first: create the topics (``ensure_topics``), on the barrier."""
    barrier.wait()
    ensure_topics(settings)


def test_reporter_started_at_the_same_moment_as_an_assigner_holds_every_partition(
    settings: Settings,
) -> None:
    """Given a fresh namespace with no topics
    When a reporter starts at the same moment as an assigner creates the topics
    Then the reporter holds every partition and counts an event from each."""
    for _ in range(3):
        namespace = f"{settings.key_prefix}.r{uuid.uuid4().hex[:4]}"
        fresh = settings.model_copy(
            update={
                "numbers_topic": f"{namespace}.numbers",
                "outcomes_topic": f"{namespace}.outcomes",
                "dnc_topic": f"{namespace}.dnc",
                "reporter_group": f"{namespace}-reporter",
            }
        )
        barrier = threading.Barrier(2)
        reporter = Reporter(fresh, port=0)
        assigner = threading.Thread(target=_assigner_start, args=(barrier, fresh))
        assigner.start()
        barrier.wait()
        reporter.start()
        try:
            assigner.join(WAIT_SECONDS)
            assert reporter.wait_ready(WAIT_SECONDS)
            assert held(reporter) == list(range(fresh.outcomes_partitions))
            sent = produce_to_each(fresh, range(fresh.outcomes_partitions))
            assert wait_applied(reporter.service.status, sent, WAIT_SECONDS)
        finally:
            reporter.stop()


def test_partitions_added_while_the_reporter_runs_are_consumed_without_restart(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a running reporter holding the topic's 2 partitions
    When the topic grows to 4 partitions and events land in the new ones
    Then the reporter assigns itself the new partitions and counts those events."""
    monkeypatch.setattr(reporter_consumer, "METADATA_MAX_AGE_MS", 500)
    monkeypatch.setattr(reporter_consumer, "REFRESH_INTERVAL_SECONDS", 0.2)
    reporter = Reporter(settings, port=0).start()
    try:
        assert reporter.wait_ready(WAIT_SECONDS)
        assert held(reporter) == [0, 1]
        admin = make_admin(settings)
        try:
            admin.create_partitions({settings.outcomes_topic: NewPartitions(GROWN_PARTITIONS)})
        finally:
            admin.close()
        sent = produce_to_each(settings, range(settings.outcomes_partitions, GROWN_PARTITIONS))
        assert wait_applied(reporter.service.status, sent, WAIT_SECONDS)
        assert held(reporter) == list(range(GROWN_PARTITIONS))
        assert reporter.service.status.partitions == GROWN_PARTITIONS
    finally:
        reporter.stop()


class _EmptyMetadataFirst:
    """A consumer whose metadata knows no partition for its first reads (as a read made
    while the topic is being created can answer), then two."""

    def __init__(self, empty_reads: int) -> None:
        self.empty_reads = empty_reads
        self.assigned: list[int] = []

    def partitions_for_topic(self, topic: str) -> set[int]:
        if self.empty_reads:
            self.empty_reads -= 1
            return set()
        return {0, 1}

    def assign(self, partitions: list[object]) -> None:
        self.assigned = [p.partition for p in partitions]  # type: ignore[attr-defined]

    def seek_to_beginning(self, *partitions: object) -> None:
        pass


def test_an_empty_first_metadata_read_is_retried_not_assigned(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a consumer whose first metadata reads know no partition of the topic
    When the reporter syncs its partitions and waits for them
    Then it is not ready while it holds none, and then holds both."""
    monkeypatch.setattr(reporter_consumer, "PARTITION_WAIT_SECONDS", 0.01)
    service = ReporterService(settings)
    fake = _EmptyMetadataFirst(empty_reads=3)
    try:
        assert service.sync_partitions(fake) == []
        service.status.ready_event.set()
        assert not service.status.ready
        assert service.wait_for_partitions(fake, threading.Event())
        assert fake.assigned == [0, 1]
        assert service.status.ready
    finally:
        service.redis.close()
