"""Parity: the scripts (complete-11 with late answers, reap-8) and the replay of their events
by :mod:`phonebank.domain.number_history` leave every number in the same state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import pytest

from phonebank.domain.number_history import NumberHistory, NumberState, replay
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.domain.retry_policy import RetryPolicy
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.leases.relay import StreamEntry
from phonebank.ops.redis_state import read_region, stream_events
from phonebank.settings import Settings
from tests.integration.audit_helpers import REGION, Campaign
from tests.integration.lease_helpers import FIRST, fill

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: the number every scenario is about: the head of the queue (reaped numbers go back there)
NUMBER = FIRST


def late_answer_nobody_else_holds(c: Campaign) -> None:
    leases = c.leases()
    first = c.acquire(leases, "a")
    c.reap()
    c.leases().complete(first.lease_id, first.token, Outcome.CONVERSATION)


def late_answer_while_another_lease_holds_it(c: Campaign) -> None:
    first = c.acquire(c.leases(), "a")
    c.reap()
    later = c.leases()
    second = c.acquire(later, "b")
    assert second.national_number == NUMBER
    later.complete(first.lease_id, first.token, Outcome.CONVERSATION)


def late_do_not_call_while_another_lease_holds_it(c: Campaign) -> None:
    first = c.acquire(c.leases(), "a")
    c.reap()
    later = c.leases()
    c.acquire(later, "b")
    later.complete(first.lease_id, first.token, Outcome.DO_NOT_CALL)


def late_do_not_call_after_the_next_holder_answered(c: Campaign) -> None:
    first = c.acquire(c.leases(), "a")
    c.reap()
    later = c.leases()
    second = c.acquire(later, "b")
    later.complete(second.lease_id, second.token, Outcome.NO_ANSWER)
    later.complete(first.lease_id, first.token, Outcome.DO_NOT_CALL)


def late_answer_after_parking(c: Campaign) -> None:
    last = None
    for volunteer in ("a", "b", "c"):
        last = c.acquire(c.leases(), volunteer)
        assert last.national_number == NUMBER
        c.reap()
    assert last is not None
    c.leases().complete(last.lease_id, last.token, Outcome.NO_ANSWER)


def released_then_leased_again_then_late(c: Campaign) -> None:
    leases = c.leases()
    first = c.acquire(leases, "a")
    leases.release(first.lease_id, first.token)
    later = c.leases()
    second = c.acquire(later, "b")
    later.complete(first.lease_id, first.token, Outcome.REFUSED)
    later.complete(second.lease_id, second.token, Outcome.BUSY)


SCENARIOS: list[Callable[[Campaign], None]] = [
    late_answer_nobody_else_holds,
    late_answer_while_another_lease_holds_it,
    late_do_not_call_while_another_lease_holds_it,
    late_do_not_call_after_the_next_holder_answered,
    late_answer_after_parking,
    released_then_leased_again_then_late,
]


@pytest.fixture
def campaign(settings: Settings, redis_client: RedisClient) -> Iterator[Campaign]:
    """Three numbers queued in Moscow (straight into Redis: no Kafka needed here)."""
    running = Campaign(settings, redis_client)
    fill(running.settings, redis_client, REGION, [NUMBER, NUMBER + 1, NUMBER + 2])
    yield running
    running.close()


def scripts_state(client: RedisClient, keys: RegionKeys) -> tuple[NumberState, bool, int]:
    """Where the scripts left NUMBER: state, on the do-not-call list, counted attempts."""
    member = str(NUMBER)
    counters = {reply_text(k): int(v) for k, v in client.hgetall(keys.counters).items()}
    in_play = (
        member.encode() in client.lrange(keys.ready, 0, -1)
        or client.zscore(keys.due, member) is not None
        or client.hexists(keys.holders, member)
    )
    finished = [s for s in (NumberState.DONE, NumberState.RETIRED, NumberState.DNC)
                if counters.get({NumberState.RETIRED: "retired"}.get(s, str(s)), 0)]  # fmt: skip
    if in_play:
        state = NumberState.IN_PLAY
    elif client.sismember(keys.parked, member):
        state = NumberState.PARKED
    else:
        assert len(finished) == 1, counters
        state = finished[0]
    listed = bool(client.sismember(keys.dnc, member))
    return _dropped_if_listed(state, listed), listed, int(client.hget(keys.attempts, member) or 0)


def _dropped_if_listed(state: NumberState, listed: bool) -> NumberState:
    """A listed number still in play is do-not-call: the scripts drop it at its next acquire
    or enqueue (and a do-not-call listing may end its live lease at once)."""
    return NumberState.DNC if listed and state is NumberState.IN_PLAY else state


def replayed(
    events: list[OutcomeEvent], live: list[tuple[str, int]], settings: Settings
) -> NumberHistory:
    mine = [e for e in events if e.number == NUMBER]
    return replay(REGION, mine, RetryPolicy(), settings.lease_max_expiries, live)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_the_replay_of_the_events_leaves_the_number_where_the_scripts_did(
    campaign: Campaign, scenario: Callable[[Campaign], None]
) -> None:
    """Given a sequence of leases, expiries, releases and (late) answers run by the scripts
    When the region's outcome events are replayed, with and without the ``next_state`` the
    scripts record (older events lack it), and with the leases still live
    Then the replay finds the number in the state, do-not-call listing and attempt count
    the scripts left it in (a listed number in play counts as do-not-call on both sides)."""
    scenario(campaign)
    keys = KeyScheme(campaign.settings.key_prefix, campaign.settings.campaign).region(REGION)
    client = campaign.redis
    entries = cast(list[StreamEntry], client.xrange(keys.outcomes))
    events, invalid = stream_events(entries)
    assert invalid == 0
    snapshot = read_region(client, keys)
    live = [(r.lease_id, r.leased_at_ms) for r in snapshot.live.values() if r.number == NUMBER]
    expected = scripts_state(client, keys)
    inferred = [e.model_copy(update={"next_state": ""}) for e in events]
    for recorded in (events, inferred):
        history = replayed(recorded, live, campaign.settings)
        state = _dropped_if_listed(history.state, history.dnc_listed)
        assert (state, history.dnc_listed, history.attempts) == expected
