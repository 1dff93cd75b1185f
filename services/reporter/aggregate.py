"""The reporter's pure core: outcome events in, per-region coverage tallies out.

No I/O here: the consumer loop feeds :class:`Aggregator` decoded
:class:`~phonebank.domain.records.OutcomeEvent` objects, the report and metrics modules
read its tallies, the checkpoint module saves :meth:`Aggregator.to_state` and the
per-number states (:class:`~phonebank.reporter.number_states.NumberStates`, compact
arrays per segment, 6 bytes a called number) by segment.

Definitions (DESIGN.md, "Outcomes and retries"):

- a *call* is an event whose outcome is none of ``skipped`` (the volunteer could not
  call), ``unreachable_channel`` (their messenger could not place the call: not an
  attempt on the person) and ``expired`` (the lease ran out); ``attempted`` counts
  distinct numbers with at least one call;
- ``reached``, ``conversations``, ``do_not_call`` and ``retired`` count distinct numbers
  that ever had such an outcome (``retired``: wrong number or not in service);
- ``parked`` counts distinct numbers whose ``expired`` events reached the parking limit
  (``lease_max_expiries``), derived from the event stream; the lease engine's parked set
  (metric ``phonebank_queue_parked_numbers``) is the authority, this is the historical view.

Duplicates (the relay may publish an event twice) are dropped by ``event_id`` within a
bounded window of recent ids; replays after a restart are excluded by the checkpointed
offsets instead (see :mod:`phonebank.reporter.checkpoint`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from phonebank.domain.clock import HOUR_MS
from phonebank.domain.records import Outcome, OutcomeEvent
from phonebank.reporter.number_states import NumberStates, number_key

#: hours of per-hour counts kept, counted back from the newest event (14 days)
HOURLY_RETENTION_HOURS = 14 * 24
#: calls to one number from which numbers share the last distribution bucket ("10+")
ATTEMPTS_BUCKET_CAP = 10
#: recent event ids remembered to drop relay duplicates (count; re-sends come in minutes)
DEDUPE_WINDOW_EVENTS = 50_000
#: default expiries after which the lease engine parks a number (count)
DEFAULT_MAX_EXPIRIES = 3

# A number's state is one int: calls << 16 | expiries << 8 | flags.
_REACHED, _CONVERSATION, _DO_NOT_CALL, _RETIRED, _PARKED = 1, 2, 4, 8, 16
_EXPIRY_SHIFT = 8
_EXPIRY_MASK = 0xFF
_CALL_SHIFT = 16
_CALL_UNIT = 1 << _CALL_SHIFT
_EXPIRY_UNIT = 1 << _EXPIRY_SHIFT

#: flags an outcome sets on its number
_OUTCOME_FLAGS: dict[str, int] = {
    Outcome.CONVERSATION: _REACHED | _CONVERSATION,
    Outcome.REFUSED: _REACHED,
    Outcome.CALLBACK: _REACHED,
    Outcome.DO_NOT_CALL: _DO_NOT_CALL,
    Outcome.WRONG_NUMBER: _RETIRED,
    Outcome.NOT_IN_SERVICE: _RETIRED,
}
#: outcomes that are not calls
NOT_CALLS = frozenset({Outcome.SKIPPED, Outcome.UNREACHABLE_CHANNEL, Outcome.EXPIRED})


@dataclass
class RegionTally:
    """Everything counted for one region (its numbers' states are in
    :attr:`Aggregator.numbers`)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    attempted: int = 0
    reached: int = 0
    conversations: int = 0
    do_not_call: int = 0
    retired: int = 0
    parked: int = 0
    #: index k: numbers called k times (last index: k or more); index 0 unused
    calls_histogram: list[int] = field(default_factory=lambda: [0] * (ATTEMPTS_BUCKET_CAP + 1))
    #: epoch hour → numbers called for the first time in it (the coverage rate)
    first_calls_by_hour: dict[int, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Events that were calls."""
        return sum(n for outcome, n in self.outcomes.items() if outcome not in NOT_CALLS)

    def _set_flags(self, new: int) -> None:
        if new & _REACHED:
            self.reached += 1
        if new & _CONVERSATION:
            self.conversations += 1
        if new & _DO_NOT_CALL:
            self.do_not_call += 1
        if new & _RETIRED:
            self.retired += 1

    def call(self, state: int, outcome: str, hour: int) -> int:
        """Count a call to a number in ``state``; return its new state."""
        calls = state >> _CALL_SHIFT
        histogram = self.calls_histogram
        if calls == 0:
            self.attempted += 1
            self.first_calls_by_hour[hour] = self.first_calls_by_hour.get(hour, 0) + 1
        else:
            histogram[min(calls, ATTEMPTS_BUCKET_CAP)] -= 1
        histogram[min(calls + 1, ATTEMPTS_BUCKET_CAP)] += 1
        flags = _OUTCOME_FLAGS.get(outcome, 0)
        new = flags & ~state
        if new:
            self._set_flags(new)
        return (state | flags) + _CALL_UNIT

    def expire(self, state: int, max_expiries: int) -> int:
        """Count an expired lease of a number in ``state``; return its new state."""
        expiries = (state >> _EXPIRY_SHIFT) & _EXPIRY_MASK
        if expiries < _EXPIRY_MASK:
            state += _EXPIRY_UNIT
            expiries += 1
        if expiries >= max_expiries and not state & _PARKED:
            self.parked += 1
            state |= _PARKED
        return state


class Aggregator:
    """Per-region tallies, per-hour calls, per-guideline outcomes, from outcome events."""

    def __init__(
        self, max_expiries: int = DEFAULT_MAX_EXPIRIES, dedupe_window: int = DEDUPE_WINDOW_EVENTS
    ) -> None:
        self.max_expiries = max_expiries
        self.dedupe_window = dedupe_window
        self.regions: dict[str, RegionTally] = {}
        #: region code → the index its numbers' keys carry (in order of first sight)
        self.region_index: dict[str, int] = {}
        #: per-number state (calls, expiries, flags), kept compact
        self.numbers = NumberStates()
        #: epoch hour → outcome → events
        self.outcomes_by_hour: dict[int, dict[str, int]] = {}
        #: guideline "id@version" → outcome → events
        self.guidelines: dict[str, dict[str, int]] = {}
        self.applied = 0
        self.duplicates = 0
        self.first_event_ms = 0
        self.last_event_ms = 0
        self._recent: deque[str] = deque()
        self._recent_ids: set[str] = set()

    def apply(self, event: OutcomeEvent) -> bool:
        """Count one event; False (and nothing counted) if its id was seen recently."""
        if not self._remember(event.event_id):
            self.duplicates += 1
            return False
        self.applied += 1
        tally = self.regions.get(event.region)
        if tally is None:
            tally = self.regions[event.region] = RegionTally()
            self.region_index.setdefault(event.region, len(self.region_index))
        outcome = event.outcome
        at_ms = event.completed_at_ms
        hour = at_ms // HOUR_MS
        _bump(tally.outcomes, outcome)
        _bump(self.outcomes_by_hour.setdefault(hour, {}), outcome)
        _bump(self.guidelines.setdefault(event.guideline, {}), outcome)
        self.last_event_ms = max(self.last_event_ms, at_ms)
        if at_ms < self.first_event_ms or not self.first_event_ms:
            self.first_event_ms = at_ms
        if outcome in NOT_CALLS and outcome is not Outcome.EXPIRED:
            return True
        key = number_key(self.region_index[event.region], event.number)
        state = self.numbers.get(key)
        if outcome is Outcome.EXPIRED:
            self.numbers.set(key, tally.expire(state, self.max_expiries))
        elif outcome not in NOT_CALLS:
            self.numbers.set(key, tally.call(state, outcome, hour))
        return True

    def apply_all(self, events: Iterable[OutcomeEvent]) -> int:
        """Count many events; return how many were new."""
        return sum(1 for event in events if self.apply(event))

    def _remember(self, event_id: str) -> bool:
        if event_id in self._recent_ids:
            return False
        self._recent_ids.add(event_id)
        self._recent.append(event_id)
        if len(self._recent) > self.dedupe_window:
            self._recent_ids.discard(self._recent.popleft())
        return True

    def prune(self) -> None:
        """Drop per-hour counts older than the retention, counted from the newest event."""
        oldest = self.last_event_ms // HOUR_MS - HOURLY_RETENTION_HOURS
        for hour in [h for h in self.outcomes_by_hour if h < oldest]:
            del self.outcomes_by_hour[hour]
        for tally in self.regions.values():
            for hour in [h for h in tally.first_calls_by_hour if h < oldest]:
                del tally.first_calls_by_hour[hour]

    # --- checkpoint form ---------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-able copy of everything but the per-number states (for the checkpoint,
        which stores :attr:`numbers` by segment beside it). Call :meth:`prune` first."""
        return {
            "region_index": dict(self.region_index),
            "max_expiries": self.max_expiries,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "first_event_ms": self.first_event_ms,
            "last_event_ms": self.last_event_ms,
            "recent": list(self._recent),
            "outcomes_by_hour": {str(h): c for h, c in self.outcomes_by_hour.items()},
            "guidelines": self.guidelines,
            "regions": {code: _tally_state(t) for code, t in self.regions.items()},
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], dedupe_window: int = DEDUPE_WINDOW_EVENTS
    ) -> Aggregator:
        """Rebuild an aggregator from :meth:`to_state` output (its per-number states are
        loaded into :attr:`numbers` separately)."""
        aggregator = cls(int(state["max_expiries"]), dedupe_window)
        aggregator.region_index = {code: int(i) for code, i in state["region_index"].items()}
        aggregator.applied = int(state["applied"])
        aggregator.duplicates = int(state["duplicates"])
        aggregator.first_event_ms = int(state["first_event_ms"])
        aggregator.last_event_ms = int(state["last_event_ms"])
        for event_id in state["recent"][-dedupe_window:]:
            aggregator._remember(event_id)
        aggregator.outcomes_by_hour = {int(h): c for h, c in state["outcomes_by_hour"].items()}
        aggregator.guidelines = state["guidelines"]
        aggregator.regions = {code: _tally_from(t) for code, t in state["regions"].items()}
        return aggregator


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _tally_state(tally: RegionTally) -> dict[str, Any]:
    return {
        "outcomes": tally.outcomes,
        "counts": [
            tally.attempted,
            tally.reached,
            tally.conversations,
            tally.do_not_call,
            tally.retired,
            tally.parked,
        ],
        "calls_histogram": tally.calls_histogram,
        "first_calls_by_hour": {str(h): n for h, n in tally.first_calls_by_hour.items()},
    }


def _tally_from(state: dict[str, Any]) -> RegionTally:
    tally = RegionTally(
        outcomes=dict(state["outcomes"]),
        calls_histogram=list(state["calls_histogram"]),
        first_calls_by_hour={int(h): int(n) for h, n in state["first_calls_by_hour"].items()},
    )
    (
        tally.attempted,
        tally.reached,
        tally.conversations,
        tally.do_not_call,
        tally.retired,
        tally.parked,
    ) = state["counts"]
    return tally
