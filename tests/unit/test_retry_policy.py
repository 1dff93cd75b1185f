"""The outcomes table as a policy: defaults from DESIGN.md, and what may be configured."""

from __future__ import annotations

import pytest

from phonebank.domain.clock import HOUR_MS
from phonebank.domain.records import Outcome
from phonebank.domain.retry_policy import (
    FIRST_RETRY_DELAY_MS,
    Disposition,
    OutcomeRule,
    PolicyError,
    RetryPolicy,
)
from tests.helpers import with_rule


def test_default_table_follows_the_design() -> None:
    policy = RetryPolicy()
    expected = {
        Outcome.CONVERSATION: Disposition.DONE,
        Outcome.REFUSED: Disposition.DONE,
        Outcome.NO_ANSWER: Disposition.RETRY,
        Outcome.BUSY: Disposition.RETRY,
        Outcome.VOICEMAIL: Disposition.RETRY,
        Outcome.CALLBACK: Disposition.CALLBACK,
        Outcome.WRONG_NUMBER: Disposition.RETIRE,
        Outcome.NOT_IN_SERVICE: Disposition.RETIRE,
        Outcome.DO_NOT_CALL: Disposition.DO_NOT_CALL,
        Outcome.SKIPPED: Disposition.REQUEUE,
    }
    assert {outcome: policy.rule(outcome).disposition for outcome in expected} == expected
    assert {o for o in Outcome if o is not Outcome.EXPIRED and policy.rule(o).reached} == {
        Outcome.CONVERSATION,
        Outcome.REFUSED,
        Outcome.CALLBACK,
    }


def test_unreached_numbers_get_three_attempts_four_hours_then_the_next_day() -> None:
    rule = RetryPolicy().rule(Outcome.NO_ANSWER)
    # Given a number not reached, Then it is retried after +4 h, then a day later, then done
    assert rule.retry_delay_ms(1) == FIRST_RETRY_DELAY_MS == 4 * HOUR_MS
    assert 24 * HOUR_MS < rule.retry_delay_ms(2) < 48 * HOUR_MS
    assert rule.retry_delay_ms(2) % (24 * HOUR_MS) != 0  # another local hour
    assert [rule.next_step(attempt) for attempt in (1, 2, 3)] == [
        Disposition.RETRY,
        Disposition.RETRY,
        Disposition.DONE,
    ]


def test_skipped_and_unreachable_channel_count_no_attempt_and_everything_else_does() -> None:
    policy = RetryPolicy()
    assert not policy.rule(Outcome.SKIPPED).counts_attempt
    channel = policy.rule(Outcome.UNREACHABLE_CHANNEL)
    assert not channel.counts_attempt and not channel.reached
    assert channel.disposition is Disposition.DEFER and channel.retry_delays_ms == (HOUR_MS,)
    assert all(
        policy.rule(o).counts_attempt
        for o in Outcome
        if o not in {Outcome.SKIPPED, Outcome.UNREACHABLE_CHANNEL, Outcome.EXPIRED}
    )


def test_rules_can_be_changed_but_do_not_call_stays_final() -> None:
    # Given a campaign that retries voicemail five times, hourly
    hourly = OutcomeRule(Disposition.RETRY, max_attempts=5, retry_delays_ms=(HOUR_MS,))
    policy = with_rule(RetryPolicy(), Outcome.VOICEMAIL, hourly)
    assert policy.rule(Outcome.VOICEMAIL).retry_delay_ms(4) == HOUR_MS
    assert policy.rule(Outcome.VOICEMAIL).script_args() == ["retry", 0, 5]
    # When someone tries to make do-not-call a retry, Then the policy refuses
    with pytest.raises(PolicyError):
        with_rule(RetryPolicy(), Outcome.DO_NOT_CALL, hourly)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: OutcomeRule(Disposition.RETRY),
        lambda: OutcomeRule(Disposition.DONE, max_attempts=0),
        lambda: OutcomeRule(Disposition.RETRY, retry_delays_ms=(HOUR_MS,) * 9),
        lambda: OutcomeRule(Disposition.RETRY, retry_delays_ms=(-1,)),
    ],
)
def test_rules_that_the_script_could_not_apply_are_refused(bad: object) -> None:
    with pytest.raises(PolicyError):
        bad()  # type: ignore[operator]


def test_expired_is_not_a_volunteer_outcome() -> None:
    with pytest.raises(PolicyError):
        RetryPolicy().rule(Outcome.EXPIRED)
    with pytest.raises(PolicyError):
        RetryPolicy({**RetryPolicy().rules, Outcome.EXPIRED: OutcomeRule(Disposition.DONE)})


@pytest.mark.parametrize(
    ("outcome", "rule"),
    [
        (Outcome.VOICEMAIL, OutcomeRule(Disposition.DO_NOT_CALL)),
        (Outcome.CONVERSATION, OutcomeRule(Disposition.REQUEUE)),
        (Outcome.BUSY, OutcomeRule(Disposition.RETIRE)),
        (Outcome.SKIPPED, OutcomeRule(Disposition.DONE)),
        (Outcome.CONVERSATION, OutcomeRule(Disposition.DONE, reached=False)),
        (Outcome.NO_ANSWER, OutcomeRule(Disposition.DONE, reached=True)),
    ],
)
def test_a_rule_that_changes_what_an_outcome_means_is_refused(
    outcome: Outcome, rule: OutcomeRule
) -> None:
    """Given the outcome table the scripts enforce (ALLOWED_DISPOSITIONS, REACHED), When a
    campaign configures a rule outside it, Then the policy refuses it (as complete-11
    would refuse the call)."""
    with pytest.raises(PolicyError):
        with_rule(RetryPolicy(), outcome, rule)
