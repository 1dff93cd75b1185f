"""Never losing a call: /me, Idempotency-Key, a lost answer found again, the channel outcome."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from phonebank.domain.records import e164
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings
from tests.integration.gateway_helpers import Running, running_gateway
from tests.integration.lease_helpers import FIRST, fill, local_instant

pytestmark = pytest.mark.integration

MOSCOW = "RU-MOW"


@pytest.fixture
def gateway(settings: Settings, redis_client: redis.Redis) -> Iterator[Running]:
    """A gateway at 12:00 Moscow time with three queued numbers."""
    fill(settings, redis_client, MOSCOW, [FIRST, FIRST + 1, FIRST + 2])
    with running_gateway(settings, redis_client, local_instant(12)) as running:
        yield running


def test_me_is_204_then_the_open_lease_then_204_again(gateway: Running) -> None:
    # Given alice holds nothing, Then /me is 204
    assert gateway.me("alice").status == 204
    # When she takes a number, Then /me answers the same lease, everything to finish it
    granted = gateway.acquire("alice").json()
    held = gateway.me("alice")
    assert held.status == 200
    lease = held.json()
    for field in (
        "lease_id",
        "lease_token",
        "number",
        "region",
        "callee_zone",
        "deadline_ms",
        "attempt",
    ):
        assert lease[field] == granted[field], field
    assert lease["guideline"]["id"] == "calm-conversation" and lease["guideline"]["version"] == 1
    assert lease["calling_windows"] and lease["calling_windows"][0]["start"].endswith("+03:00")
    # And bob sees nothing of it
    assert gateway.me("bob").status == 204
    # When she completes it with the token /me gave, Then /me is 204 again
    assert gateway.on_lease("complete", "alice", lease, {"outcome": "conversation"}).status == 200
    assert gateway.me("alice").status == 204


def test_a_retried_acquire_with_the_same_key_returns_the_same_lease(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a campaign where a volunteer may hold two leases at once
    fill(settings, redis_client, MOSCOW, [FIRST, FIRST + 1, FIRST + 2])
    two = settings.model_copy(update={"volunteer_max_leases": 2})
    with running_gateway(two, redis_client, local_instant(12)) as gateway:
        # When alice acquires with a key and retries with the same key
        first = gateway.acquire("alice", idempotency_key="press-1")
        retry = gateway.acquire("alice", idempotency_key="press-1")
        # And then presses again with a new key
        second = gateway.acquire("alice", idempotency_key="press-2")
    # Then the retry is the same lease (200), and only the new key takes a new number
    assert (first.status, retry.status, second.status) == (201, 200, 201)
    assert retry.json()["lease_id"] == first.json()["lease_id"]
    assert retry.json()["number"] == first.json()["number"] == e164(FIRST)
    assert second.json()["number"] == e164(FIRST + 1)


def test_a_key_whose_lease_ended_is_409(gateway: Running) -> None:
    # Given alice finished the lease of key press-1
    lease = gateway.acquire("alice", idempotency_key="press-1").json()
    assert gateway.on_lease("complete", "alice", lease, {"outcome": "busy"}).status == 200
    # When she sends press-1 again, Then she is told to use a fresh key
    again = gateway.acquire("alice", idempotency_key="press-1")
    assert (again.status, again.json()["error"]) == (409, "idempotency_key_used")
    # And a bad key is a 400
    bad = gateway.acquire("alice", idempotency_key="no spaces allowed")
    assert (bad.status, bad.json()["error"]) == (400, "invalid_request")


def test_a_grant_whose_answer_never_arrived_is_found_by_me_and_acquire(gateway: Running) -> None:
    # Given alice's acquire reached the gateway, but she hung up before the answer
    body = b"{}"
    request = (
        b"POST /api/v1/leases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + gateway.token("alice").encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.sendall(request)
    sock.close()  # reset: the answer cannot be delivered
    # When she reloads the page (/me), Then the number is hers, not lost for 15 minutes
    held = _wait_for_me(gateway, "alice")
    assert held["number"] == e164(FIRST)
    # And a fresh acquire answers the same lease instead of a 409
    again = gateway.acquire("alice")
    assert (again.status, again.json()["lease_id"]) == (200, held["lease_id"])


def _wait_for_me(gateway: Running, volunteer: str) -> dict[str, object]:
    """/me until the in-flight acquire has been granted (it runs on after the hang-up;
    each /me is a real round trip, bounded)."""
    for _ in range(500):
        answer = gateway.me(volunteer)
        if answer.status == 200:
            held: dict[str, object] = answer.json()
            return held
    raise AssertionError("the lease was never found")


def test_unreachable_channel_is_no_attempt_and_due_again_later(
    gateway: Running, settings: Settings, redis_client: redis.Redis
) -> None:
    # Given alice could not place the call through her messenger
    lease = gateway.acquire("alice").json()
    answer = gateway.on_lease("complete", "alice", lease, {"outcome": "unreachable_channel"})
    # Then it is recorded, the number is due again, and no attempt is counted on it
    assert answer.status == 200
    assert answer.json()["next_state"] == "due"
    keys = KeyScheme(settings.key_prefix, settings.campaign).region(MOSCOW)
    national = str(FIRST)
    assert redis_client.hget(keys.attempts, national) is None
    due_at = redis_client.zscore(keys.due, national)
    assert due_at is not None and due_at >= lease["deadline_ms"] - 15 * 60_000 + 3_600_000 - 1000
    events = redis_client.xrange(keys.outcomes)
    assert [event[b"outcome"] for _, event in events] == [b"unreachable_channel"]
