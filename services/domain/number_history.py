"""One number's state machine, replayed from its outcome events: what the lease scripts did.

``complete-11.lua`` and ``reap-8.lua`` move a number and write an event in the same atomic
step; this module folds those events, in completion order, into the state the scripts
left the number in. ``phonebank rebuild`` restores Redis from it and ``phonebank audit``
checks Redis against it, so both read the events one way (one implementation).

The rules, as the scripts apply them (``lua/includes/outcome.lua``):

- ``expired`` (reap): the number goes back to play, or is parked once it has expired
  ``max_expiries`` times.
- a complete with ``late=0`` (the lease was live): the outcome moves the number
  (``apply_outcome``).
- a complete with ``late=1`` (the lease had expired, been released, or was live past its
  deadline): the outcome moves the number only if no other lease held it at that instant
  and it is still in play (queued, due or parked); otherwise nothing moves, but a
  ``do_not_call`` still puts it on the do-not-call list.

Which of the two a late answer did, the script records in the event (``next_state``
``unchanged`` when nothing moved), and the replay follows it: the script knew which
lease held the number, including a lease still live when Redis was lost, which no event
names. Events written before that field existed are judged from the events: "another
lease held it at instant t" when a lease of the same number was granted at or before t
and its first event (expiry or completion) is after t, or it has none yet (still live).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.domain.retry_policy import Disposition, RetryPolicy


class NumberState(StrEnum):
    """Where the scripts left a number."""

    IN_PLAY = "in_play"  #: ready or due (or leased: events cannot see grants)
    PARKED = "parked"
    DONE = "done"
    RETIRED = "retired"
    DNC = "dnc"


#: states after which a number is never queued again
FINISHED_STATES = frozenset({NumberState.DONE, NumberState.RETIRED, NumberState.DNC})
#: disposition → the finished state it leads to
_FINAL = {
    Disposition.DONE: NumberState.DONE,
    Disposition.RETIRE: NumberState.RETIRED,
    Disposition.DO_NOT_CALL: NumberState.DNC,
}


def is_expiry(event: OutcomeEvent) -> bool:
    """Whether the reaper wrote the event."""
    return event.outcome is Outcome.EXPIRED


def completion_order(event: OutcomeEvent) -> tuple[int, int]:
    """Sort key: completion time, an expiry before a complete of the same instant."""
    return event.completed_at_ms, 0 if is_expiry(event) else 1


@dataclass
class NumberHistory:
    """One number's fate so far (see the module docstring)."""

    region: str
    state: NumberState = NumberState.IN_PLAY
    #: counted attempts (the ``attempts`` hash; cleared when the number finishes)
    attempts: int = 0
    #: expired leases (the ``expiries`` hash; cleared when the number finishes)
    expiries: int = 0
    #: an answer put it on the do-not-call list (also when the number did not move)
    dnc_listed: bool = False
    #: epoch ms of the first do_not_call answer
    dnc_at_ms: int | None = None
    #: epoch ms it finished (done, retired or do-not-call by a move)
    finished_at_ms: int | None = None
    #: whether one of its outcomes counted an attempt (the ``attempted`` counter)
    attempted: bool = False
    #: outcomes applied that reached the callee (the ``reached`` counter)
    reached: int = 0
    #: late answers that moved nothing
    unchanged: int = 0
    #: leases of it that expired (the ``expired`` counter; never cleared)
    expired_leases: int = 0
    #: answers recorded late (the ``late`` counter)
    late_answers: int = 0
    #: lease id → (granted at in ms, index of its first event in completion order) of each
    #: lease of the number (events of one millisecond keep their order)
    intervals: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: index, in completion order, of the event being applied
    position: int = 0

    @property
    def finished(self) -> bool:
        """Whether the number is out of play for good."""
        return self.state in FINISHED_STATES

    def held_by_other(self, lease_id: str, at_ms: int) -> bool:
        """Whether a lease other than ``lease_id`` held the number at ``at_ms``, the
        instant of the event at :attr:`position`."""
        return any(
            other != lease_id and granted <= at_ms and self.position < ended
            for other, (granted, ended) in self.intervals.items()
        )


def replay(
    region: str,
    events: Iterable[OutcomeEvent],
    policy: RetryPolicy,
    max_expiries: int,
    live_leases: Iterable[tuple[str, int]] = (),
) -> NumberHistory:
    """Fold one number's events (any order; sorted here) into its history.

    ``live_leases``: (lease id, granted at) of leases of the number still live (no event
    yet); they hold the number from their grant on."""
    ordered = sorted(events, key=completion_order)
    history = NumberHistory(region)
    history.intervals = lease_intervals(ordered, live_leases)
    for position, event in enumerate(ordered):
        history.position = position
        apply_event(history, event, policy, max_expiries)
    return history


def lease_intervals(
    ordered: Sequence[OutcomeEvent], live_leases: Iterable[tuple[str, int]] = ()
) -> dict[str, tuple[int, int]]:
    """Lease id → (granted at, index of its first event); live leases end never."""
    intervals: dict[str, tuple[int, int]] = {}
    for position, event in enumerate(ordered):
        intervals.setdefault(event.lease_id, (event.leased_at_ms, position))
    for lease_id, granted in live_leases:
        intervals.setdefault(lease_id, (granted, NEVER_MS))
    return intervals


#: ``next_state`` of a late answer that moved nothing (complete-11.lua)
UNCHANGED = "unchanged"
#: the end of a lease that has not ended
NEVER_MS = 2**62


def apply_event(
    history: NumberHistory, event: OutcomeEvent, policy: RetryPolicy, max_expiries: int
) -> None:
    """Fold one event, in completion order, into the history."""
    history.expired_leases += is_expiry(event)
    history.late_answers += event.late and not is_expiry(event)
    if is_expiry(event):
        _expire(history, max_expiries)
    elif not event.late:
        apply_outcome(history, event, policy)
    elif moved_nothing(history, event):
        history.unchanged += 1
        if policy.rule(event.outcome).disposition is Disposition.DO_NOT_CALL:
            _listed(history, event.completed_at_ms)
    else:
        apply_outcome(history, event, policy)


def moved_nothing(history: NumberHistory, event: OutcomeEvent) -> bool:
    """Whether a late answer left its number where it was: as the script recorded it
    (``next_state``), or, for events without it, as the events imply (finished, or
    another lease held the number)."""
    if event.next_state:
        return event.next_state == UNCHANGED
    return history.finished or history.held_by_other(event.lease_id, event.completed_at_ms)


def _expire(history: NumberHistory, max_expiries: int) -> None:
    """reap-8: back to play, or parked after ``max_expiries`` expiries. A finished number
    stays finished (only a defect could lease it again; the audit reports that)."""
    if history.finished:
        return
    history.expiries += 1
    parked = history.expiries >= max_expiries
    history.state = NumberState.PARKED if parked else NumberState.IN_PLAY


def _listed(history: NumberHistory, at_ms: int) -> None:
    history.dnc_listed = True
    if history.dnc_at_ms is None:
        history.dnc_at_ms = at_ms


def apply_outcome(history: NumberHistory, event: OutcomeEvent, policy: RetryPolicy) -> None:
    """``apply_outcome`` of ``lua/includes/outcome.lua``: move the number by the rule."""
    rule = policy.rule(event.outcome)
    if rule.reached:
        history.reached += 1
    if not rule.counts_attempt:  # requeue (front of ready) or defer (due): no attempt
        if not history.finished:
            history.state = NumberState.IN_PLAY
        return
    if history.attempts == 0 and not history.finished:
        history.attempted = True
    history.attempts = max(history.attempts, event.attempt)
    if rule.disposition is Disposition.DO_NOT_CALL:
        _listed(history, event.completed_at_ms)
    step = rule.next_step(history.attempts)
    final = _FINAL.get(step)
    if final is None:
        if not history.finished:
            history.state = NumberState.IN_PLAY
        return
    _finish(history, final, event.completed_at_ms)


def _finish(history: NumberHistory, final: NumberState, at_ms: int) -> None:
    """finalize: the number leaves play; do-not-call wins over an earlier finish."""
    if history.finished and final is not NumberState.DNC:
        return
    history.state = final
    history.attempts = history.expiries = 0
    if history.finished_at_ms is None:
        history.finished_at_ms = at_ms
