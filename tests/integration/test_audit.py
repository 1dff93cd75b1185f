"""``phonebank audit`` on the real stack: a clean campaign passes, each planted fault is found."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from phonebank.domain.records import DncRecord, Outcome, masked
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme, ReporterKeys
from phonebank.leases.relay import dead_letter_key
from phonebank.reporter.checkpoint import CheckpointStore
from phonebank.settings import Settings, child_env
from tests.integration.audit_helpers import REGION, Campaign, busy_day, kinds, outcome_counts
from tests.integration.lease_helpers import FIRST, local_instant

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: the campaign's numbers
NUMBERS = [FIRST + i for i in range(30)]


@pytest.fixture
def campaign(settings: Settings, redis_client: RedisClient) -> Iterator[Campaign]:
    """Thirty Moscow numbers ingested and queued."""
    running = Campaign(settings, redis_client)
    running.ingest(NUMBERS)
    running.queue_all()
    yield running
    running.close()


def keys_of(campaign: Campaign) -> KeyScheme:
    return KeyScheme(campaign.settings.key_prefix, campaign.settings.campaign)


def test_a_clean_campaign_passes_and_every_number_is_counted_once(campaign: Campaign) -> None:
    """Given a campaign with answers of every kind, expiries, late answers, a release, a
    live lease, a reporter checkpoint and an event not yet relayed
    When it is audited
    Then no violation is found and the thirty numbers are counted once each, by state."""
    busy_day(campaign)
    report = campaign.audit()
    assert report.violations == []
    counts = outcome_counts(report)
    assert sum(counts.values()) == len(NUMBERS)
    assert counts == {"ready": 23, "due": 2, "leased": 1, "done": 2, "dnc": 1, "retired": 1}
    assert report.reporter["checked"] is True
    assert report.events["pending"] == 1
    assert report.dead_letters == {REGION: 0}


def test_a_number_removed_from_the_ready_list_is_lost(campaign: Campaign) -> None:
    """Given a queued campaign When one number is removed from the ready list behind the
    scripts' back Then the audit reports it lost, masked, and exits 1."""
    keys = keys_of(campaign).region(REGION)
    campaign.redis.lrem(keys.ready, 1, str(FIRST + 7))
    report = campaign.audit()
    assert kinds(report) == {"lost", "counters"}
    lost = [v.to_json() for v in report.violations if v.kind == "lost"]
    assert lost == [
        {"kind": "lost", "region": REGION, "number": masked(FIRST + 7), "detail": lost[0]["detail"]}
    ]


def test_a_duplicate_live_lease_is_found(campaign: Campaign) -> None:
    """Given a live lease When a second live lease of the same number is planted Then the
    audit reports a double lease (and overlapping intervals)."""
    leases = campaign.leases()
    lease = campaign.acquire(leases, "first")
    keys = keys_of(campaign).region(REGION)
    fields = campaign.redis.hgetall(keys.lease(lease.lease_id))
    twin = f"{REGION}.{'f' * 32}"
    campaign.redis.hset(keys.lease(twin), mapping=fields)  # type: ignore[arg-type]
    campaign.redis.zadd(keys.leases, {twin: int(fields[b"deadline_ms"])})
    report = campaign.audit()
    assert "double_lease" in kinds(report)
    assert "overlapping_leases" not in kinds(report)  # two live ones: reported once


def test_a_do_not_call_number_leased_is_found(campaign: Campaign) -> None:
    """Given an operator's do-not-call entry in Kafka that Redis lost (as after a bad
    rebuild) When the number is leased Then the audit reports a lease after do-not-call."""
    leases = campaign.leases()
    entry = DncRecord(number=FIRST, region=REGION, added_at_ms=leases.now_ms() - 60_000)
    campaign.producer.send(campaign.settings.dnc_topic, key=b"x", value=entry.encode())
    campaign.producer.flush()
    lease = campaign.acquire(leases, "unlucky")
    assert lease.national_number == FIRST
    report = campaign.audit()
    assert kinds(report) == {"leased_after_dnc"}


def test_a_lease_outside_the_calling_window_is_found(campaign: Campaign) -> None:
    """Given a frontend that believes Moscow is in Vladivostok's zone When it leases at
    05:00 Moscow time (12:00 there) Then the audit reports a lease outside the window."""
    campaign.minute = -7 * 60  # 05:00 Moscow
    client = campaign.leases(0)
    wrong = type(client)(
        campaign.settings,
        campaign.redis,
        {REGION: ("Asia/Vladivostok",)},
        clock_offset_ms=client.clock_offset_ms,
    )
    campaign.acquire(wrong, "night-owl")
    assert local_instant(5).timestamp() * 1000 <= wrong.now_ms()
    report = campaign.audit()
    assert kinds(report) == {"outside_window"}


def test_an_outcome_event_lost_before_the_relay_is_found(campaign: Campaign) -> None:
    """Given a completed lease When its event is deleted from the stream before the relay
    Then the audit reports the missing event (and the number, finished, as lost)."""
    campaign.call(Outcome.CONVERSATION, "talker")
    campaign.redis.delete(keys_of(campaign).region(REGION).outcomes)
    report = campaign.audit()
    assert kinds(report) == {"missing_event", "lost"}


def test_dead_letters_counters_ingested_and_reporter_drift_are_found(campaign: Campaign) -> None:
    """Given a relayed, reported campaign When a dead letter, a counter, an ingested count
    and the reporter's checkpoint drift Then each is reported, and the dead letters counted."""
    campaign.call(Outcome.CONVERSATION, "talker")
    campaign.relay()
    campaign.report(events=1)
    keys = keys_of(campaign)
    region = keys.region(REGION)
    campaign.redis.xadd(dead_letter_key(region), {"outcome": "conversaton"})
    campaign.redis.hincrby(region.counters, "done", 1)
    campaign.redis.hincrby(keys.ingested, REGION, 1)
    campaign.call(Outcome.REFUSED, "second")
    campaign.relay()  # the reporter has not counted this one: still consistent
    report = campaign.audit()
    assert kinds(report) == {"dead_letter", "counters", "ingested_mismatch"}
    assert report.dead_letters == {REGION: 1}


def test_the_command_prints_json_and_exits_by_the_verdict(
    campaign: Campaign, settings: Settings
) -> None:
    """Given a clean queued campaign When ``phonebank audit --json`` runs, before and after
    a number is removed Then it exits 0 then 1 and the JSON has the documented keys."""
    env = child_env(settings)
    command = [sys.executable, "-m", "phonebank", "audit", "--json"]
    clean = subprocess.run(command, env=env, capture_output=True, check=False)
    assert clean.returncode == 0, clean.stderr.decode()
    document = json.loads(clean.stdout)
    assert set(document) == {
        "version", "campaign", "ok", "as_of_ms", "seconds", "numbers", "states",
        "events", "leases", "dead_letters", "reporter", "violations",
    }  # fmt: skip
    assert document["states"]["total"]["ready"] == len(NUMBERS)
    campaign.redis.lrem(keys_of(campaign).region(REGION).ready, 1, str(FIRST))
    broken = subprocess.run(command, env=env, capture_output=True, check=False)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["violations"]["by_kind"]["lost"] == 1
    assert str(FIRST) not in broken.stdout.decode()


def test_a_finished_number_queued_and_leased_again_is_found(campaign: Campaign) -> None:
    """Given a number finished by a conversation When it is pushed back on the ready list
    (as a double enqueue would) and leased again Then the audit reports it in two states
    and leased after it finished."""
    done = campaign.call(Outcome.CONVERSATION, "talker")
    keys = keys_of(campaign).region(REGION)
    campaign.redis.lpush(keys.ready, str(done.national_number))
    again = campaign.acquire(campaign.leases(), "second")
    assert again.national_number == done.national_number
    report = campaign.audit()
    assert kinds(report) == {"two_states", "leased_after_finish", "counters"}


def test_a_number_never_ingested_and_an_overlapping_lease_are_found(campaign: Campaign) -> None:
    """Given a campaign When a number that was never ingested is queued, and an event of a
    lease granted while another lease of the same number was live is written
    Then the audit reports the unknown number and the overlapping leases."""
    keys = keys_of(campaign).region(REGION)
    stranger = FIRST + 500
    campaign.redis.rpush(keys.ready, str(stranger))
    campaign.redis.hincrby(keys.counters, "enqueued", 1)
    leases = campaign.leases()
    first = campaign.acquire(leases, "first")
    intruder = {
        "event_id": f"{REGION}.{'e' * 32}/complete", "campaign": campaign.settings.campaign,
        "region": REGION, "number": str(first.national_number), "outcome": "no_answer",
        "attempt": "1", "lease_id": f"{REGION}.{'e' * 32}", "volunteer": "v",
        "guideline": "g@1", "leased_at_ms": str(leases.now_ms()),
        "completed_at_ms": str(leases.now_ms() + 1), "late": "0", "next_state": "due",
    }  # fmt: skip
    campaign.redis.xadd(keys.outcomes, intruder)  # type: ignore[arg-type]
    report = campaign.audit()
    assert {"unknown_number", "overlapping_leases"} <= kinds(report)


def test_a_reporter_whose_totals_drift_from_the_events_is_found(campaign: Campaign) -> None:
    """Given a reporter checkpoint of two answers When its attempted count is changed
    Then the audit reports the mismatch, naming the field."""
    campaign.call(Outcome.CONVERSATION, "talker")
    campaign.call(Outcome.NO_ANSWER, "second")
    campaign.relay()
    campaign.report(events=2)
    store = CheckpointStore(
        campaign.redis, ReporterKeys(campaign.settings.key_prefix, campaign.settings.campaign)
    )
    checkpoint = store.load(campaign.settings.outcomes_topic)
    assert checkpoint is not None
    checkpoint.aggregator.regions[REGION].attempted += 1
    store.save(checkpoint)
    report = campaign.audit()
    assert kinds(report) == {"reporter_mismatch"}
    assert "attempted: reporter 3, events 2" in report.violations[0].detail
