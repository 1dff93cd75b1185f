"""The reporter against the real Kafka and Redis: restart-safety, rebuild, HTTP, promtool."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
import redis
from kafka import KafkaConsumer

from phonebank.domain import clock
from phonebank.domain.clock import HOUR_MS
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topic, make_producer
from phonebank.infra.metrics import CATALOGUE
from phonebank.leases.keys import KeyScheme
from phonebank.reporter.app import Reporter
from phonebank.reporter.consumer import ReporterService
from phonebank.settings import Settings
from tests.helpers import exposed_names, wait_applied

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: seconds to wait for the reporter to count what was produced
COUNT_TIMEOUT_SECONDS = 20.0


def outcome(
    number: int,
    kind: Outcome,
    *,
    region: str = "RU-MOW",
    volunteer: str = "vh-a",
    at_ms: int | None = None,
    event_id: str | None = None,
) -> OutcomeEvent:
    completed = at_ms if at_ms is not None else clock.now_ms()
    return OutcomeEvent(
        event_id=event_id or uuid.uuid4().hex,
        campaign="default",
        region=region,
        number=number,
        outcome=kind,
        attempt=1,
        lease_id=uuid.uuid4().hex,
        volunteer=volunteer,
        guideline="calm@1",
        leased_at_ms=completed - 60_000,
        completed_at_ms=completed,
    )


def produce(settings: Settings, events: list[OutcomeEvent], raw: tuple[bytes, ...] = ()) -> None:
    producer = make_producer(settings)
    try:
        for event in events:
            producer.send(settings.outcomes_topic, key=event.region.encode(), value=event.encode())
        for value in raw:
            producer.send(settings.outcomes_topic, key=b"RU-MOW", value=value)
        producer.flush(10)
    finally:
        producer.close()


def consume_until(service: ReporterService, consumer: KafkaConsumer, events: int) -> int:
    """Poll (in this thread) until ``events`` new events are counted; return records read."""
    deadline = time.monotonic() + COUNT_TIMEOUT_SECONDS
    read = 0
    while service.status.aggregator.applied < events:
        assert time.monotonic() < deadline, f"only {service.status.aggregator.applied} counted"
        read += service.poll_once(consumer)
    return read


def region_counts(service: ReporterService) -> dict[str, tuple[int, int, int]]:
    return {
        code: (t.attempted, t.reached, t.calls)
        for code, t in service.status.aggregator.regions.items()
    }


@pytest.fixture
def topic(settings: Settings) -> Iterator[Settings]:
    ensure_topic(settings, settings.outcomes_topic, settings.outcomes_partitions)
    yield settings


FIRST = [
    outcome(9_160_000_001, Outcome.NO_ANSWER),
    outcome(9_160_000_001, Outcome.CONVERSATION),
    outcome(9_160_000_002, Outcome.REFUSED),
    outcome(9_120_000_001, Outcome.BUSY, region="RU-SPE"),
]
SECOND = [
    outcome(9_160_000_003, Outcome.DO_NOT_CALL),
    outcome(9_120_000_001, Outcome.CALLBACK, region="RU-SPE"),
]
#: per region (attempted, reached, calls) after FIRST and SECOND
EXPECTED = {"RU-MOW": (3, 2, 4), "RU-SPE": (1, 1, 2)}


def test_restart_resumes_from_the_checkpoint_without_double_counting(topic: Settings) -> None:
    settings = topic
    # Given a reporter that counted and checkpointed FIRST
    produce(settings, FIRST)
    first = ReporterService(settings)
    consumer = first.open_consumer()
    consume_until(first, consumer, len(FIRST))
    assert first.checkpoint(consumer, force=True)
    # And then counted SECOND plus a relay duplicate, but crashed before checkpointing it
    produce(settings, [*SECOND, FIRST[0]])
    consume_until(first, consumer, len(FIRST) + len(SECOND))
    consumer.close()
    # When a new reporter starts
    second = ReporterService(settings)
    consumer = second.open_consumer()
    try:
        assert second.status.aggregator.applied == len(FIRST)
        read = consume_until(second, consumer, len(FIRST) + len(SECOND))
        # Then it resumed at the checkpointed offsets (re-reading only what followed),
        # counted SECOND once and the duplicate not at all
        assert read == len(SECOND) + 1
        assert second.status.aggregator.duplicates == 1
        assert region_counts(second) == EXPECTED
        assert second.status.aggregator.applied == len(FIRST) + len(SECOND)
    finally:
        consumer.close()


def test_rebuild_recounts_the_topic_from_the_start(topic: Settings) -> None:
    settings = topic
    # Given a checkpoint of FIRST, and SECOND produced afterwards
    produce(settings, FIRST)
    first = ReporterService(settings)
    consumer = first.open_consumer()
    consume_until(first, consumer, len(FIRST))
    first.checkpoint(consumer, force=True)
    consumer.close()
    produce(settings, SECOND)
    # When a reporter starts with --rebuild
    rebuilt = ReporterService(settings, rebuild=True)
    consumer = rebuilt.open_consumer()
    try:
        read = consume_until(rebuilt, consumer, len(FIRST) + len(SECOND))
        # Then it counted everything once, from offset 0
        assert read == len(FIRST) + len(SECOND)
        assert region_counts(rebuilt) == EXPECTED
    finally:
        consumer.close()


def test_active_volunteers_and_ingested_counts_come_from_redis(
    topic: Settings, redis_client: redis.Redis
) -> None:
    settings = topic
    keys = KeyScheme(settings.key_prefix, settings.campaign)
    # Given the assigner's ingested counts, and outcomes by three volunteers now and a
    # fourth two hours ago, plus a record that is not an event and one whose region
    # would put a phone number into a label
    redis_client.hset(keys.ingested, mapping={"RU-MOW": 8, "RU-SPE": 2})
    now_ms = clock.now_ms()
    events = [outcome(9_160_000_010 + i, Outcome.NO_ANSWER, volunteer=f"vh-{i}") for i in range(3)]
    events.append(
        outcome(9_160_000_020, Outcome.REFUSED, volunteer="vh-old", at_ms=now_ms - 2 * HOUR_MS)
    )
    leaky = outcome(9_160_000_030, Outcome.BUSY, region="9161234567")
    produce(settings, [*events, events[0], leaky], raw=(b"not json",))
    service = ReporterService(settings)
    consumer = service.open_consumer()
    try:
        consume_until(service, consumer, len(events))
        # When the Redis-derived inputs are refreshed
        service.refresh(consumer, force=True)
    finally:
        consumer.close()
    # Then volunteers are counted per window, ingested per region, bad records noted
    report = service.status.report()
    assert (
        report["totals"]["volunteers_active_15m"],
        report["totals"]["volunteers_active_24h"],
    ) == (3, 4)
    assert {r["code"]: r["coverage_ratio"] for r in report["regions"]} == {
        "RU-MOW": 0.5,
        "RU-SPE": 0.0,
    }
    assert report["events"] == {"applied": 4, "duplicates": 1, "invalid": 2}
    assert service.status.consumer_lag == 0


def metrics_names(exposition: bytes) -> set[str]:
    names = exposed_names(exposition.decode())
    assert names, "no phonebank metric exposed"
    return names


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read()


def test_http_endpoints_and_promtool_on_real_metrics(
    topic: Settings, redis_client: redis.Redis
) -> None:
    settings = topic
    redis_client.hset(
        KeyScheme(settings.key_prefix, settings.campaign).ingested,
        mapping={"RU-MOW": 10, "RU-SPE": 5},
    )
    produce(settings, FIRST + SECOND)
    # Given a running reporter (threads, ephemeral port) that has counted the stream
    reporter = Reporter(settings, port=0).start()
    try:
        assert reporter.wait_ready(COUNT_TIMEOUT_SECONDS)
        assert wait_applied(reporter.service.status, len(FIRST + SECOND), COUNT_TIMEOUT_SECONDS)
        # When each endpoint is fetched
        _, metrics_type, metrics = _get(reporter.url + "/metrics")
        _, json_type, body = _get(reporter.url + "/report.json")
        _, html_type, page = _get(reporter.url + "/")
        health = _get(reporter.url + "/healthz")[0]
        ready = _get(reporter.url + "/readyz")[0]
    finally:
        reporter.stop()
    # Then they answer with the counted figures
    report = json.loads(body)
    assert json_type == "application/json"
    assert {
        r["code"]: (r["attempted"], r["reached"], r["calls"]) for r in report["regions"]
    } == EXPECTED
    assert html_type.startswith("text/html") and b"Regions by coverage" in page
    assert (health, ready) == (200, 200)
    assert metrics_type.startswith("text/plain")
    assert b'phonebank_coverage_attempted_numbers{region="RU-MOW"} 3.0' in metrics
    # And every metric is catalogued, and promtool finds nothing to say about them
    assert metrics_names(metrics) <= set(CATALOGUE)
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    check = subprocess.run(
        [tool, "check", "metrics"], input=metrics, capture_output=True, check=False
    )
    assert (check.returncode, check.stdout + check.stderr) == (0, b"")
