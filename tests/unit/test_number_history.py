"""The numbers' state machine on its own (the parity with the scripts is an integration test)."""

from __future__ import annotations

from phonebank.domain.number_history import NumberState, replay
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.domain.retry_policy import RetryPolicy

NUMBER = 9_161_234_567
#: lease parked after this many expiries
MAX_EXPIRIES = 3


def event(
    lease: str, outcome: Outcome, at_ms: int, *, late: bool = False, next_state: str = ""
) -> OutcomeEvent:
    kind = "expire" if outcome is Outcome.EXPIRED else "complete"
    return OutcomeEvent(
        event_id=f"RU-MOW.{lease}/{kind}",
        campaign="default",
        region="RU-MOW",
        number=NUMBER,
        outcome=outcome,
        attempt=1,
        lease_id=f"RU-MOW.{lease}",
        volunteer="v",
        guideline="g@1",
        leased_at_ms=at_ms - 10 if kind == "complete" and not late else 0,
        completed_at_ms=at_ms,
        late=late,
        next_state=next_state,
    )


def test_unanswered_calls_finish_the_number_after_three_attempts() -> None:
    """Given three no-answers, the third on its third attempt Then the number is done,
    attempted once, its counts cleared."""
    events = [
        event("a", Outcome.NO_ANSWER, 100),
        event("b", Outcome.BUSY, 200).model_copy(update={"attempt": 2}),
        event("c", Outcome.VOICEMAIL, 300).model_copy(update={"attempt": 3}),
    ]
    history = replay("RU-MOW", events, RetryPolicy(), MAX_EXPIRIES)
    assert (history.state, history.attempts, history.attempted) == (NumberState.DONE, 0, True)
    assert history.finished_at_ms == 300


def test_events_are_replayed_in_completion_order_whatever_order_they_come_in() -> None:
    """Given a no-answer and a later conversation, delivered in reverse Then done."""
    events = [event("b", Outcome.CONVERSATION, 200), event("a", Outcome.NO_ANSWER, 100)]
    assert replay("RU-MOW", events, RetryPolicy(), MAX_EXPIRIES).state is NumberState.DONE


def test_a_late_do_not_call_that_moved_nothing_still_lists_the_number() -> None:
    """Given a late do_not_call the script recorded as unchanged Then the number stays in
    play but is on the do-not-call list, from that instant."""
    events = [event("a", Outcome.DO_NOT_CALL, 100, late=True, next_state="unchanged")]
    history = replay("RU-MOW", events, RetryPolicy(), MAX_EXPIRIES)
    assert (history.state, history.dnc_listed, history.dnc_at_ms) == (
        NumberState.IN_PLAY,
        True,
        100,
    )


def test_expiries_park_the_number_and_a_finished_number_stays_finished() -> None:
    """Given three expiries Then parked; Given a conversation then an expiry Then done."""
    expiries = [event(lease, Outcome.EXPIRED, at) for lease, at in (("a", 1), ("b", 2), ("c", 3))]
    assert replay("RU-MOW", expiries, RetryPolicy(), MAX_EXPIRIES).state is NumberState.PARKED
    done_then_expired = [event("a", Outcome.CONVERSATION, 1), event("b", Outcome.EXPIRED, 2)]
    history = replay("RU-MOW", done_then_expired, RetryPolicy(), MAX_EXPIRIES)
    assert (history.state, history.expired_leases) == (NumberState.DONE, 1)


def test_do_not_call_wins_over_an_earlier_finish() -> None:
    """Given a conversation, then (a defect leased it again) a do_not_call Then dnc."""
    events = [event("a", Outcome.CONVERSATION, 1), event("b", Outcome.DO_NOT_CALL, 2)]
    history = replay("RU-MOW", events, RetryPolicy(), MAX_EXPIRIES)
    assert (history.state, history.dnc_listed) == (NumberState.DNC, True)
