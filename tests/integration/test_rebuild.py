"""Invariant 6: Redis can be wiped and rebuilt from Kafka (``phonebank rebuild``)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.infra.kafka import ensure_topics, make_producer
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases import dnc
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.ops.dnc import record_in_kafka
from phonebank.ops.rebuild import RebuildError, rebuild
from phonebank.settings import Settings
from tests.conftest import wipe_namespace
from tests.integration.assigner_helpers import (
    chunk,
    produce,
    queue_all,
    ready,
    step_until,
)
from tests.integration.audit_helpers import Campaign, busy_day, outcome_counts
from tests.integration.lease_helpers import (
    FIRST,
    MOSCOW_ONLY,
    assert_conserved,
    lease_client,
    local_instant,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: the numbers of the campaign: FIRST … FIRST + 9
NUMBERS = [FIRST + i for i in range(10)]
#: the numbers of the audited campaigns
AUDITED = [FIRST + i for i in range(30)]
#: what the volunteers answered for the first four numbers leased
ANSWERS = [Outcome.CONVERSATION, Outcome.DO_NOT_CALL, Outcome.NO_ANSWER, Outcome.WRONG_NUMBER]


def test_wiped_redis_is_rebuilt_from_kafka(settings: Settings, redis_client: RedisClient) -> None:
    moscow = settings.model_copy(update={"regions_include": ["RU-MOW"]})
    ensure_topics(moscow)
    produce(moscow, [chunk("RU-MOW", 0, NUMBERS)])
    producer = make_producer(moscow)
    # Given ten queued numbers, four of them called with four different answers,
    queue_all(moscow, redis_client)
    client = lease_client(moscow, redis_client, local_instant(12), MOSCOW_ONLY)
    for answer in ANSWERS:
        lease = client.acquire(f"volunteer-{answer}")
        assert lease is not None
        client.complete(lease.lease_id, lease.token, answer)
    # and an operator's do-not-call for a fifth, the outcomes relayed to Kafka
    record_in_kafka(moscow, [FIRST + 4], lambda number: "RU-MOW")
    dnc.add_numbers(redis_client, moscow.key_prefix, [FIRST + 4], lambda number: "RU-MOW")
    OutcomeRelay(moscow, redis_client, producer, RelayMetrics(CollectorRegistry())).relay_all()
    producer.close()
    # When Redis loses everything, the state is rebuilt from Kafka and a worker re-reads
    wipe_namespace(redis_client, moscow.key_prefix)
    assert ready(redis_client, moscow, "RU-MOW") == []
    summary = rebuild(moscow, redis_client)
    queue_all(moscow, redis_client)
    # Then finished numbers stay finished, the unanswered one keeps its attempt
    assert dict(summary.states) == {"done": 1, "dnc": 1, "in play": 1, "retired": 1}
    assert summary.operator_dnc == 1
    assert sorted(ready(redis_client, moscow, "RU-MOW")) == [FIRST + 2, *NUMBERS[5:]]
    keys = scheme(moscow).region("RU-MOW")
    assert redis_client.hget(keys.attempts, str(FIRST + 2)) == b"1"
    # And do-not-call is still final, also the operator's
    for number in (FIRST + 1, FIRST + 4):
        assert dnc.is_listed(redis_client, moscow.key_prefix, number, lambda n: "RU-MOW")
    # And every number is in exactly one state
    assert_conserved(moscow, redis_client, "RU-MOW", client.now_ms())


def test_rebuild_refuses_while_an_assigner_runs(
    settings: Settings, redis_client: RedisClient
) -> None:
    # Given a live member of the assigner group
    ensure_topics(settings)
    worker = AssignerWorker(settings, redis_client)
    try:
        step_until(worker, lambda: bool(worker.consumer.assignment()))
        # When a rebuild is asked for, Then it refuses and names the reason
        with pytest.raises(RebuildError, match="still running"):
            rebuild(settings, redis_client)
    finally:
        worker.consumer.close(autocommit=False)


def test_after_a_wipe_and_rebuild_the_audit_is_clean_and_coverage_counts_are_right(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given a busy campaign (answers of every kind, expiries, a late answer left
    unchanged because another lease held the number, a release), every event relayed
    When the namespace's Redis keys are wiped, rebuilt from Kafka and the assigner re-queues
    Then the audit finds no violation, the ingested counts are back, and the late answer
    did not finish the number the other volunteer held."""
    campaign = Campaign(settings, redis_client)
    try:
        campaign.ingest(AUDITED)
        campaign.queue_all()
        busy_day(campaign)
        campaign.relay()
        wipe_namespace(redis_client, campaign.settings.key_prefix)
        summary = rebuild(campaign.settings, redis_client)
        campaign.queue_all()
        report = campaign.audit()
    finally:
        campaign.close()
    assert report.violations == []
    assert summary.ingested == {"RU-MOW": len(AUDITED)}
    keys = scheme(campaign.settings)
    assert redis_client.hgetall(keys.ingested) == {b"RU-MOW": str(len(AUDITED)).encode()}
    counts = outcome_counts(report)
    # done: the conversation and one late refusal; the other late refusal moved nothing;
    # due times are lost for good: the retries are queued again
    assert counts == {"ready": 26, "done": 2, "dnc": 1, "retired": 1}
    assert summary.states["done"] == 2
    # And a second rebuild is refused: it would count every finished number twice
    with pytest.raises(RebuildError, match="not lost"):
        rebuild(campaign.settings, redis_client)


def test_an_answer_recorded_in_the_new_redis_before_the_rebuild_is_applied_and_relayed(
    settings: Settings, redis_client: RedisClient
) -> None:
    """Given a campaign whose Redis was lost, and a do-not-call answer recorded in the new
    Redis's stream (not relayed: the assigners are stopped) before the rebuild
    When the README's procedure goes on: rebuild, assigners, reporter, audit
    Then the number is do-not-call (never queued again), the event reaches Kafka and the
    report, and the audit is clean."""
    campaign = Campaign(settings, redis_client)
    try:
        campaign.ingest(AUDITED)
        campaign.queue_all()
        leases = campaign.leases()
        lease = campaign.acquire(leases, "caller")
        keys = scheme(campaign.settings).region("RU-MOW")
        held = redis_client.hgetall(keys.lease(lease.lease_id))
        wipe_namespace(redis_client, campaign.settings.key_prefix)
        # the answer, recorded late against the new Redis (as complete does for a lease
        # it no longer knows): only its event is there
        event = OutcomeEvent(
            event_id=f"{lease.lease_id}/complete",
            campaign=campaign.settings.campaign,
            region="RU-MOW",
            number=lease.national_number,
            outcome=Outcome.DO_NOT_CALL,
            attempt=1,
            lease_id=lease.lease_id,
            volunteer=reply_text(held[b"volunteer"]),
            guideline=reply_text(held[b"guideline"]),
            leased_at_ms=int(held[b"leased_at_ms"]),
            completed_at_ms=leases.now_ms(),
            late=True,
        )
        fields = {
            k: str(int(v) if isinstance(v, bool) else v) for k, v in event.model_dump().items()
        }
        redis_client.xadd(keys.outcomes, fields)  # type: ignore[arg-type]
        # Then the README's steps 3 to 6: rebuild, start the assigners (queue, relay),
        # restart the reporter (it recounts: its checkpoint was in Redis), audit
        summary = rebuild(campaign.settings, redis_client)
        campaign.queue_all()
        assert campaign.relay() == 1
        campaign.report(events=1)
        report = campaign.audit()
    finally:
        campaign.close()
    assert summary.pending == 1
    assert report.violations == []
    assert report.reporter["checked"] is True
    assert outcome_counts(report)["dnc"] == 1
    assert lease.national_number not in ready(redis_client, campaign.settings, "RU-MOW")
    assert redis_client.sismember(keys.dnc, str(lease.national_number))
