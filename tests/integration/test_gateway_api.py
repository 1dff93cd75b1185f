"""The gateway's lease API over real HTTP against the real Redis: flows and refusals."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from phonebank.domain.clock import SECOND_MS
from phonebank.domain.records import DncRecord, e164
from phonebank.infra.kafka import read_topic
from phonebank.leases import dnc
from phonebank.leases.dnc_journal import DncJournal
from phonebank.settings import Settings
from tests.conftest import wipe_namespace
from tests.integration.gateway_helpers import Running, running_gateway
from tests.integration.lease_helpers import FIRST, fill, local_instant, scheme

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

MOSCOW = "RU-MOW"


@pytest.fixture
def gateway(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> Iterator[Running]:
    """A gateway at 12:00 Moscow time with two queued Moscow numbers."""
    caplog.set_level(logging.DEBUG, logger="phonebank")
    fill(settings, redis_client, MOSCOW, [FIRST, FIRST + 1])
    with running_gateway(settings, redis_client, local_instant(12)) as running:
        yield running


def _lease(gateway: Running, volunteer: str = "alice") -> dict[str, Any]:
    answer = gateway.acquire(volunteer)
    assert answer.status == 201, answer.body
    lease: dict[str, Any] = answer.json()
    return lease


def test_acquire_renew_complete_and_a_repeated_complete(
    gateway: Running, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a volunteer with a token, When she asks for a number
    acquired = gateway.acquire("alice", {"regions": [MOSCOW], "languages": ["ru", "en"]})
    # Then she gets the first queued number with everything needed to call it
    assert acquired.status == 201
    lease = acquired.json()
    assert lease["number"] == e164(FIRST)
    assert lease["region"] == {"code": MOSCOW, "name": "Moscow", "name_ru": "Москва"}
    assert lease["callee_zone"] == "Europe/Moscow"
    assert lease["callee_local_time"].startswith("2026-03-10T12:")
    assert lease["guideline"]["ref"] == "calm-conversation@1"
    assert lease["guideline"]["path"] == "/api/v1/guidelines/calm-conversation@1"
    assert lease["attempt"] == 1 and lease["deadline"].endswith("Z")
    # When she renews, completes, and completes again with the same token
    renewed = gateway.on_lease("renew", "alice", lease)
    done = gateway.on_lease("complete", "alice", lease, {"outcome": "no_answer"})
    again = gateway.on_lease("complete", "alice", lease, {"outcome": "no_answer"})
    # Then the renew restarts the countdown, the outcome is recorded once, the repeat is a 200
    assert renewed.status == 200 and renewed.json()["deadline_ms"] >= lease["deadline_ms"]
    assert (done.status, done.json()["status"], done.json()["next_state"]) == (
        200,
        "recorded",
        "due",
    )
    assert (again.status, again.json()["status"]) == (200, "already_recorded")
    assert again.json()["event_id"] == done.json()["event_id"]
    # And a renew after the complete is a conflict
    assert gateway.on_lease("renew", "alice", lease).status == 409
    # And no log line holds the number or a token
    assert str(FIRST) not in caplog.text and lease["lease_token"] not in caplog.text
    assert gateway.token("alice") not in caplog.text


def test_the_lease_token_may_travel_in_the_body(gateway: Running) -> None:
    # Given a lease, When it is released with the lease token in the body (no header)
    lease = _lease(gateway)
    path = f"/api/v1/leases/{lease['lease_id']}/release"
    released = gateway.request(
        "POST", path, {"lease_token": lease["lease_token"]}, volunteer="alice"
    )
    # Then it is released, the number goes back to the front, and a second release is a 404
    assert (released.status, released.json()["status"]) == (200, "released")
    assert _lease(gateway, "bob")["number"] == e164(FIRST)
    assert (
        gateway.request(
            "POST", path, {"lease_token": lease["lease_token"]}, volunteer="alice"
        ).status
        == 404
    )
    # And the lease token is required at all
    assert gateway.request("POST", path, {}, volunteer="alice").status == 400


@pytest.mark.parametrize("action", ["renew", "complete", "release"])
def test_another_volunteer_cannot_touch_my_lease(gateway: Running, action: str) -> None:
    # Given alice's lease, and bob who somehow learnt its id and even its lease token
    lease = _lease(gateway, "alice")
    body = {"outcome": "conversation"} if action == "complete" else {}
    # When bob calls the action with alice's lease token, or with a made-up one
    stolen = gateway.on_lease(action, "bob", lease, body)
    made_up = gateway.on_lease(action, "bob", lease, body, lease_token="0" * 32 + "." + "1" * 32)
    # Then both answer 404 exactly like a lease that does not exist
    missing = gateway.on_lease(action, "alice", {**lease, "lease_id": "RU-MOW." + "f" * 32}, body)
    assert stolen.status == made_up.status == missing.status == 404
    assert stolen.json() == made_up.json() == missing.json()
    assert e164(FIRST) not in (stolen.body + made_up.body).decode()
    # And alice's lease is untouched: she can still renew it
    assert gateway.on_lease("renew", "alice", lease).status == 200


def test_a_second_acquire_at_the_cap_answers_the_lease_held(gateway: Running) -> None:
    # Given alice holds her one allowed lease (say its answer never reached her)
    lease = _lease(gateway)
    # When she asks for another
    answer = gateway.acquire("alice")
    # Then she gets the same lease back (200, not a new one), with its token and number
    assert answer.status == 200
    again = answer.json()
    assert (again["lease_id"], again["lease_token"], again["number"]) == (
        lease["lease_id"],
        lease["lease_token"],
        lease["number"],
    )


def test_the_hourly_quota_is_409_with_retry_after(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a campaign allowing one lease per hour, and alice used it
    fill(settings, redis_client, MOSCOW, [FIRST, FIRST + 1])
    quota = settings.model_copy(update={"volunteer_max_per_hour": 1})
    with running_gateway(quota, redis_client, local_instant(12)) as gateway:
        lease = _lease(gateway)
        assert gateway.on_lease("complete", "alice", lease, {"outcome": "busy"}).status == 200
        # When she asks for another
        answer = gateway.acquire("alice")
    # Then she is refused with a Retry-After and no number
    assert answer.status == 409
    assert answer.json()["error"] == "volunteer_limit"
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json()["retry_after_ms"] > 0
    assert "number" not in answer.json()


def test_nothing_leasable_is_204(gateway: Running) -> None:
    # Given both queued numbers are leased
    _lease(gateway, "alice")
    _lease(gateway, "bob")
    # When carol asks, Then there is nothing for her
    answer = gateway.acquire("carol")
    assert (answer.status, answer.body) == (204, b"")


def test_an_expired_lease_is_410_but_a_late_complete_is_kept(gateway: Running) -> None:
    # Given a lease, and the clock moved past its deadline
    lease = _lease(gateway)
    gateway.leases.clock_offset_ms += gateway.settings.lease_ttl_seconds * SECOND_MS + SECOND_MS
    # When alice renews or releases it, Then it is gone
    assert gateway.on_lease("renew", "alice", lease).status == 410
    assert gateway.on_lease("release", "alice", lease).json()["error"] == "lease_expired"
    # And a late complete is still recorded, flagged late
    late = gateway.on_lease("complete", "alice", lease, {"outcome": "conversation"})
    assert (late.status, late.json()["status"]) == (200, "recorded_late")


def test_outside_calling_hours_is_423_with_the_next_opening(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a gateway at 03:00 Moscow time (Moscow closed) and a queued number
    fill(settings, redis_client, MOSCOW, [FIRST])
    with running_gateway(settings, redis_client, local_instant(3)) as gateway:
        # When a volunteer asks for a number
        answer = gateway.acquire("alice")
    # Then she is told when calling opens (09:00 Moscow), and no number
    assert answer.status == 423
    body = answer.json()
    assert body["error"] == "outside_calling_hours"
    assert body["next_opening_ms"] == int(local_instant(9).timestamp() * SECOND_MS)
    assert body["next_opening"] == "2026-03-10T06:00:00Z"
    assert 6 * 3600 - 60 <= int(answer.headers["retry-after"]) <= 6 * 3600 + 60


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[]", "application/json", 400, "invalid_request"),
        (b'{"outcome": "sold"}', "application/json", 400, "invalid_request"),
        (b'{"outcome": "expired"}', "application/json", 400, "invalid_request"),
        (b'{"outcome": "no_answer", "extra": 1}', "application/json", 400, "invalid_request"),
        (
            b'{"outcome": "callback", "callback_at": "2026-03-10T18:00:00"}',
            "application/json",
            400,
            "invalid_request",
        ),
        (
            b'{"outcome": "busy", "callback_at": "2026-03-10T18:00:00Z"}',
            "application/json",
            400,
            "invalid_request",
        ),
        (b'{"outcome": "no_answer"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"outcome": "' + b"x" * 5000 + b'"}', "application/json", 413, "body_too_large"),
    ],
)
def test_bad_complete_bodies_are_refused_clearly(
    gateway: Running, body: bytes, content_type: str, status: int, error: str
) -> None:
    # Given a lease, When its complete is sent a bad body
    lease = _lease(gateway)
    answer = gateway.request(
        "POST",
        f"/api/v1/leases/{lease['lease_id']}/complete",
        body,
        volunteer="alice",
        headers={"Content-Type": content_type, "X-Lease-Token": lease["lease_token"]},
    )
    # Then the answer is the expected JSON refusal, with no stack trace and no echo
    assert (answer.status, answer.json()["error"]) == (status, error)
    assert b"Traceback" not in answer.body and b"xxxx" not in answer.body
    # And the lease is still live: the right complete works afterwards
    assert gateway.on_lease("complete", "alice", lease, {"outcome": "busy"}).status == 200


def test_callback_with_a_time_is_recorded(gateway: Running) -> None:
    lease = _lease(gateway)
    answer = gateway.on_lease(
        "complete",
        "alice",
        lease,
        {"outcome": "callback", "callback_at": "2026-03-10T18:30:00+03:00"},
    )
    assert (answer.status, answer.json()["next_state"]) == (200, "due")


def test_unknown_preferences_are_refused(gateway: Running) -> None:
    assert gateway.acquire("alice", {"regions": ["XX-NOPE"]}).status == 400
    assert gateway.acquire("alice", {"languages": []}).status == 400


def test_a_lease_whose_number_is_listed_answers_do_not_call(
    gateway: Running, settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice holds a number, When it is put on the do-not-call list, Then her renew
    and complete answer 410 do_not_call (the page says "do not call this number")."""
    lease = _lease(gateway)
    number = int(lease["number"][-10:])
    dnc.add_numbers(redis_client, settings.key_prefix, [number], lambda _: None)
    renewed = gateway.on_lease("renew", "alice", lease)
    assert (renewed.status, renewed.json()["error"]) == (410, "do_not_call")
    done = gateway.on_lease("complete", "alice", lease, {"outcome": "no_answer"})
    assert (done.status, done.json()["error"]) == (410, "do_not_call")


def test_a_do_not_call_answer_is_in_kafka_before_it_is_acknowledged(
    gateway: Running, settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice holds a number, When she answers do_not_call, Then the answer is 200
    only once phonebank.dnc holds the number (a rebuild from Kafka keeps it), and check
    lists it."""
    lease = _lease(gateway)
    number = int(lease["number"][-10:])
    done = gateway.on_lease("complete", "alice", lease, {"outcome": "do_not_call"})
    assert done.status == 200, done.body
    records = [DncRecord.decode(r.value) for r in read_topic(settings, settings.dnc_topic)]
    assert [(r.number, r.region) for r in records] == [(number, MOSCOW)]
    assert dnc.is_listed(redis_client, settings.key_prefix, number)


def test_a_do_not_call_answer_without_kafka_is_503_and_holds_the_number_off(
    gateway: Running, settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice holds a number and Kafka does not answer, When she answers
    do_not_call, Then it is 503, no event and the lease still hers, but the number is
    listed at once (the unacknowledged record may still land in Kafka: nobody else may
    be given it, as the chaos suite's Kafka outage found), and the same answer succeeds
    once Kafka is back."""
    lease = _lease(gateway)
    number = int(lease["number"][-10:])
    journal = gateway.gateway.api.dnc_journal
    nowhere = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    gateway.gateway.api.dnc_journal = DncJournal(nowhere)
    refused = gateway.on_lease("complete", "alice", lease, {"outcome": "do_not_call"})
    assert (refused.status, refused.json()["error"]) == (503, "unavailable")
    assert dnc.is_listed(redis_client, settings.key_prefix, number)
    assert redis_client.xlen(scheme(settings).region(MOSCOW).outcomes) == 0
    assert gateway.on_lease("renew", "alice", lease).status == 200
    gateway.gateway.api.dnc_journal = journal
    done = gateway.on_lease("complete", "alice", lease, {"outcome": "do_not_call"})
    assert done.status == 200 and dnc.is_listed(redis_client, settings.key_prefix, number)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_answer_after_redis_lost_the_lease_is_recorded_from_its_receipt(
    gateway: Running, settings: Settings, redis_client: redis.Redis
) -> None:
    """Given alice on a call when Redis loses every key, When she answers do_not_call
    with the lease's receipt, Then it is in Kafka, recorded late, and the number listed."""
    lease = _lease(gateway)
    number = int(lease["number"][-10:])
    wipe_namespace(redis_client, settings.key_prefix)
    body = {"outcome": "do_not_call", "lease_receipt": lease["lease_receipt"]}
    done = gateway.on_lease("complete", "alice", lease, body)
    assert (done.status, done.json()["status"]) == (200, "recorded_late"), done.body
    records = [DncRecord.decode(r.value) for r in read_topic(settings, settings.dnc_topic)]
    assert [r.number for r in records] == [number]
    assert dnc.is_listed(redis_client, settings.key_prefix, number)
    forged = {**body, "lease_receipt": lease["lease_receipt"][:-2] + "00"}
    assert gateway.on_lease("complete", "alice", lease, forged).status == 404


def test_volunteers_arriving_at_once_on_a_fresh_gateway_all_get_a_number(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Requests share the event loop's thread: none may wait on a lock another holds
    across a Redis round trip (the region chooser's first read did, and a second request
    at that moment hung the whole gateway)."""
    # Given a gateway that has served nobody yet, and 20 numbers queued
    crowd = 20
    fill(settings, redis_client, MOSCOW, list(range(FIRST, FIRST + crowd)))
    # When 20 volunteers ask for a number at the same moment
    with (
        running_gateway(settings, redis_client, local_instant(12)) as gateway,
        ThreadPoolExecutor(crowd) as pool,
    ):
        answers = list(pool.map(gateway.acquire, [f"v{index}" for index in range(crowd)]))
    # Then every one gets her own number
    assert [answer.status for answer in answers] == [201] * crowd
    assert len({answer.json()["number"] for answer in answers}) == crowd
