"""Helpers of the audit and rebuild tests: a small campaign on the real stack, driven through
the services' own code paths (ingest's Kafka sink, an assigner worker, the lease client,
the reaper, the relay, the reporter), with a script clock that only moves forward."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain import chunk_codec
from phonebank.domain.clock import MINUTE_MS, SECOND_MS
from phonebank.domain.lease_types import Lease
from phonebank.domain.records import Outcome
from phonebank.infra.kafka import ensure_topics, make_producer
from phonebank.infra.redis_client import RedisClient
from phonebank.ingest.chunks import EncodedChunk, KafkaSink
from phonebank.leases.client import LeaseClient
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.ops.audit import audit
from phonebank.ops.audit_report import AuditReport
from phonebank.reporter.consumer import ReporterService
from phonebank.settings import Settings
from tests.integration.assigner_helpers import consumed_to_end, step_until
from tests.integration.lease_helpers import (
    MOSCOW_ONLY,
    lease_client,
    local_instant,
    offset_to,
    reaper,
)
from tests.integration.test_reporter_service import consume_until

#: the campaign's region
REGION = "RU-MOW"


class Campaign:
    """A Moscow campaign whose script clock starts at 12:00 local and moves forward."""

    def __init__(self, settings: Settings, client: RedisClient) -> None:
        self.settings = settings.model_copy(update={"regions_include": [REGION]})
        self.redis = client
        self.minute = 0
        ensure_topics(self.settings)
        self.producer: KafkaProducer = make_producer(self.settings)

    def close(self) -> None:
        """Close the producer."""
        self.producer.close()

    @property
    def instant(self) -> dt.datetime:
        """The script clock's current local instant."""
        return local_instant(12) + dt.timedelta(minutes=self.minute)

    def leases(self, minutes: int = 1) -> LeaseClient:
        """A lease client ``minutes`` later than the last one."""
        self.minute += minutes
        return lease_client(self.settings, self.redis, self.instant, MOSCOW_ONLY)

    @property
    def offset_ms(self) -> int:
        """The current clock offset (for the audit's snapshot instant)."""
        return offset_to(self.instant)

    def ingest(self, numbers: Sequence[int], seq: int = 0) -> None:
        """Store one chunk through ingest's Kafka sink (which counts it as ingested)."""
        sink = KafkaSink(self.settings)
        value = chunk_codec.encode(
            self.settings.campaign, REGION, "test", seq, np.asarray(numbers, dtype=np.int64)
        )
        sink.send(EncodedChunk(REGION, seq, len(numbers), value))
        sink.flush()
        sink.close()

    def queue_all(self) -> None:
        """Run an assigner worker until every number of the topic is queued."""
        worker = AssignerWorker(self.settings, self.redis)
        try:
            step_until(worker, lambda: consumed_to_end(worker))
        finally:
            worker.consumer.close(autocommit=False)

    def call(self, outcome: Outcome, volunteer: str) -> Lease:
        """Lease one number and complete it with ``outcome``."""
        client = self.leases()
        lease = self.acquire(client, volunteer)
        client.complete(lease.lease_id, lease.token, outcome)
        return lease

    @staticmethod
    def acquire(client: LeaseClient, volunteer: str) -> Lease:
        """A lease (asserted granted)."""
        lease = client.acquire(volunteer)
        assert lease is not None, "nothing leasable"
        return lease

    def reap(self) -> int:
        """Move the clock past every lease's deadline and reap."""
        self.minute += self.settings.lease_ttl_seconds // 60 + 1
        offset = offset_to(self.instant) + SECOND_MS
        return reaper(self.settings, self.redis, offset).reap_all().reaped

    def relay(self) -> int:
        """Relay every region's stream to Kafka once."""
        metrics = RelayMetrics(CollectorRegistry())
        return OutcomeRelay(self.settings, self.redis, self.producer, metrics).relay_all()

    def report(self, events: int) -> None:
        """Run a reporter until it counted ``events``, and checkpoint."""
        service = ReporterService(self.settings)
        consumer = service.open_consumer()
        try:
            consume_until(service, consumer, events)
            assert service.checkpoint(consumer, force=True)
        finally:
            consumer.close()

    def audit(self) -> AuditReport:
        """The audit of the campaign as of the script clock (a minute ahead of the last
        client's instant: that client's clock has run on since it was made)."""
        return audit(self.settings, self.redis, clock_offset_ms=self.offset_ms + MINUTE_MS)


def busy_day(campaign: Campaign) -> None:
    """Answers of every kind, expiries, a late answer, a release, a live lease; part relayed."""
    for index, outcome in enumerate(
        [Outcome.CONVERSATION, Outcome.DO_NOT_CALL, Outcome.NO_ANSWER, Outcome.WRONG_NUMBER]
    ):
        campaign.call(outcome, f"caller-{index}")
    leases = campaign.leases()
    abandoned = [campaign.acquire(leases, f"sleeper-{i}") for i in range(2)]
    campaign.reap()
    later = campaign.leases()
    # the first abandoned number is leased again (reaped numbers go to the front)
    again = campaign.acquire(later, "second-caller")
    assert again.national_number in {lease.national_number for lease in abandoned}
    for lease in abandoned:  # late answers: one moves its number, one must not
        later.complete(lease.lease_id, lease.token, Outcome.REFUSED)
    released = campaign.acquire(later, "releaser")
    later.release(released.lease_id, released.token)
    campaign.relay()
    campaign.report(events=4 + 2 + 2)
    campaign.call(Outcome.BUSY, "unrelayed")  # its event stays in the stream


def kinds(report: AuditReport) -> set[str]:
    """The kinds of violation found."""
    return {v.kind for v in report.violations}


def outcome_counts(report: AuditReport) -> dict[str, int]:
    """States of the region with a count."""
    return {state: n for state, n in report.states.get(REGION, {}).items() if n}


__all__ = ["REGION", "Campaign", "Outcome", "busy_day", "kinds", "outcome_counts"]
