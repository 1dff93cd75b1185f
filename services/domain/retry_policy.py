"""The outcomes table of DESIGN.md ("Outcomes and retries") as a configurable policy.

Each :class:`~phonebank.domain.records.Outcome` a volunteer can report maps to an
:class:`OutcomeRule`: where the number goes next, whether the callee was reached, how
many counted attempts a number gets and the delay before each retry. The rule travels
to ``complete-11.lua`` as arguments (:meth:`OutcomeRule.script_args`); the script adds
the delay to Redis time and moves the result into the callee's next calling window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from phonebank.domain.clock import HOUR_MS
from phonebank.domain.records import REACHED, Outcome

#: Delay before the 2nd attempt of an unreached number (milliseconds): +4 hours.
FIRST_RETRY_DELAY_MS = 4 * HOUR_MS
#: Delay before the 3rd attempt (milliseconds): the next day, two hours later in the day.
SECOND_RETRY_DELAY_MS = 26 * HOUR_MS
#: Counted attempts before an unreached number is done.
UNREACHED_MAX_ATTEMPTS = 3
#: Counted attempts (first call plus callbacks) before a callback number is done.
CALLBACK_MAX_ATTEMPTS = 5
#: Delay before a number is called again after the channel could not place the call
#: (milliseconds): +1 hour, no attempt counted.
CHANNEL_RETRY_DELAY_MS = HOUR_MS
#: Most retry delays a rule may list (``MAX_RETRY_DELAYS`` in ``lua/includes/outcome.lua``).
MAX_RETRY_DELAYS = 8


class Disposition(StrEnum):
    """Where a number goes after an outcome (the ``disposition`` argument of complete)."""

    DONE = "done"
    RETIRE = "retire"
    DO_NOT_CALL = "dnc"
    REQUEUE = "requeue"
    #: due again after the first delay, no attempt counted (the channel failed, not the call)
    DEFER = "defer"
    RETRY = "retry"
    CALLBACK = "callback"


#: The dispositions a rule of each outcome may have: a campaign may change a rule, but
#: not make it mean something else (do-not-call stays final and is the only way to list
#: a number; only outcomes that say nothing about the person skip counting an attempt;
#: only a bad number is retired). ``complete-11.lua`` refuses any other pair
#: (``lua/includes/outcomes.lua`` mirrors this table; a test keeps them equal).
ALLOWED_DISPOSITIONS: Mapping[Outcome, frozenset[Disposition]] = {
    Outcome.CONVERSATION: frozenset({Disposition.DONE, Disposition.RETRY}),
    Outcome.REFUSED: frozenset({Disposition.DONE, Disposition.RETRY}),
    Outcome.NO_ANSWER: frozenset({Disposition.RETRY, Disposition.DONE}),
    Outcome.BUSY: frozenset({Disposition.RETRY, Disposition.DONE}),
    Outcome.VOICEMAIL: frozenset({Disposition.RETRY, Disposition.DONE}),
    Outcome.CALLBACK: frozenset({Disposition.CALLBACK, Disposition.DONE}),
    Outcome.WRONG_NUMBER: frozenset({Disposition.RETIRE, Disposition.DONE}),
    Outcome.NOT_IN_SERVICE: frozenset({Disposition.RETIRE, Disposition.DONE}),
    Outcome.DO_NOT_CALL: frozenset({Disposition.DO_NOT_CALL}),
    Outcome.SKIPPED: frozenset({Disposition.REQUEUE, Disposition.DEFER}),
    Outcome.UNREACHABLE_CHANNEL: frozenset({Disposition.DEFER, Disposition.REQUEUE}),
}
#: Most counted attempts a rule may allow (``MAX_ATTEMPTS`` in ``complete-11.lua``).
MAX_ATTEMPTS = 1000
#: Longest retry delay a rule may give (milliseconds, 366 days; ``MAX_RETRY_DELAY_MS``).
MAX_RETRY_DELAY_MS = 366 * 24 * HOUR_MS


class PolicyError(ValueError):
    """A retry policy that cannot be applied."""


@dataclass(frozen=True)
class OutcomeRule:
    """What follows one outcome."""

    disposition: Disposition
    #: counted attempts after which a retry or callback ends the number instead (count)
    max_attempts: int = 1
    #: delay before the next attempt, one per attempt made; the last repeats (milliseconds)
    retry_delays_ms: tuple[int, ...] = ()
    #: whether the outcome means the callee was reached
    reached: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise PolicyError(f"max_attempts must be 1..{MAX_ATTEMPTS}")
        if len(self.retry_delays_ms) > MAX_RETRY_DELAYS:
            raise PolicyError(f"at most {MAX_RETRY_DELAYS} retry delays")
        if any(not 0 <= delay <= MAX_RETRY_DELAY_MS for delay in self.retry_delays_ms):
            raise PolicyError(f"retry delays must be 0..{MAX_RETRY_DELAY_MS} ms")
        if self.disposition in {Disposition.RETRY, Disposition.DEFER} and not self.retry_delays_ms:
            raise PolicyError(f"a {self.disposition} rule needs at least one delay")

    @property
    def counts_attempt(self) -> bool:
        """Whether the outcome counts as an attempt (a requeue or a defer does not)."""
        return self.disposition not in {Disposition.REQUEUE, Disposition.DEFER}

    def retry_delay_ms(self, attempt: int) -> int:
        """The delay after counted attempt ``attempt`` (1-based)."""
        if not self.retry_delays_ms:
            return 0
        return self.retry_delays_ms[min(attempt, len(self.retry_delays_ms)) - 1]

    def next_step(self, attempt: int) -> Disposition:
        """Where the number goes after attempt ``attempt`` ends with this outcome."""
        retrying = self.disposition in {Disposition.RETRY, Disposition.CALLBACK}
        if retrying and attempt >= self.max_attempts:
            return Disposition.DONE
        return self.disposition

    def script_args(self) -> list[str | int]:
        """Arguments 4–6 of ``complete-11.lua``: disposition, reached, max attempts."""
        return [self.disposition.value, int(self.reached), self.max_attempts]


def _unreached() -> OutcomeRule:
    return OutcomeRule(
        Disposition.RETRY,
        max_attempts=UNREACHED_MAX_ATTEMPTS,
        retry_delays_ms=(FIRST_RETRY_DELAY_MS, SECOND_RETRY_DELAY_MS),
    )


def default_rules() -> dict[Outcome, OutcomeRule]:
    """The table of DESIGN.md."""
    rules = {
        Outcome.CONVERSATION: OutcomeRule(Disposition.DONE),
        Outcome.REFUSED: OutcomeRule(Disposition.DONE),
        Outcome.NO_ANSWER: _unreached(),
        Outcome.BUSY: _unreached(),
        Outcome.VOICEMAIL: _unreached(),
        Outcome.CALLBACK: OutcomeRule(Disposition.CALLBACK, max_attempts=CALLBACK_MAX_ATTEMPTS),
        Outcome.WRONG_NUMBER: OutcomeRule(Disposition.RETIRE),
        Outcome.NOT_IN_SERVICE: OutcomeRule(Disposition.RETIRE),
        Outcome.DO_NOT_CALL: OutcomeRule(Disposition.DO_NOT_CALL),
        Outcome.SKIPPED: OutcomeRule(Disposition.REQUEUE),
        Outcome.UNREACHABLE_CHANNEL: OutcomeRule(
            Disposition.DEFER, retry_delays_ms=(CHANNEL_RETRY_DELAY_MS,)
        ),
    }
    return {outcome: replace(rule, reached=outcome in REACHED) for outcome, rule in rules.items()}


@dataclass(frozen=True)
class RetryPolicy:
    """Outcome → rule. Volunteers cannot report ``expired``: only the reaper writes it."""

    rules: Mapping[Outcome, OutcomeRule] = field(default_factory=default_rules)

    def __post_init__(self) -> None:
        missing = set(Outcome) - {Outcome.EXPIRED} - set(self.rules)
        if missing:
            raise PolicyError(f"no rule for {sorted(missing)}")
        if Outcome.EXPIRED in self.rules:
            raise PolicyError("'expired' is written by the reaper, not a volunteer")
        if self.rules[Outcome.DO_NOT_CALL].disposition is not Disposition.DO_NOT_CALL:
            raise PolicyError("do_not_call must stay do-not-call: it is final")
        for outcome, rule in self.rules.items():
            if rule.disposition not in ALLOWED_DISPOSITIONS[outcome]:
                raise PolicyError(f"{outcome.value!r} cannot be {rule.disposition.value!r}")
            if rule.reached != (outcome in REACHED):
                raise PolicyError(f"{outcome.value!r}: reached must be {outcome in REACHED}")

    def rule(self, outcome: Outcome) -> OutcomeRule:
        """The rule of ``outcome``; :class:`PolicyError` for ``expired``."""
        try:
            return self.rules[outcome]
        except KeyError:
            raise PolicyError(f"{outcome.value!r} cannot be reported by a volunteer") from None
