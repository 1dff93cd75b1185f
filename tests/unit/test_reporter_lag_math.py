"""The lag arithmetic of the reporter's lag monitor (no broker needed)."""

from __future__ import annotations

from kafka import TopicPartition

from phonebank.leases.queues import QueueDepths
from phonebank.reporter.lag import partition_lags
from phonebank.reporter.redis_state import remaining

TOPIC = "t.numbers"


def tp(partition: int) -> TopicPartition:
    return TopicPartition(TOPIC, partition)


def test_lag_is_end_minus_committed_and_from_the_start_without_a_commit() -> None:
    """Given three partitions: committed behind the end, never committed (log starting at
    offset 2), and committed at the end
    When the lags are computed
    Then they are 3, end - start and 0; a commit past the end (a truncated log) is 0."""
    ends = {tp(0): 10, tp(1): 7, tp(2): 4, tp(3): 1}
    starts = {tp(0): 0, tp(1): 2, tp(2): 0, tp(3): 0}
    committed = {tp(0): 7, tp(2): 4, tp(3): 5}
    assert partition_lags(ends, starts, committed) == {tp(0): 3, tp(1): 5, tp(2): 0, tp(3): 0}


def test_remaining_counts_what_is_still_to_finish_only() -> None:
    """Given a region with ready, due, leased and parked numbers and finished counters
    When its remaining numbers are computed
    Then they are ready + due + leased: parked, done, retired, do-not-call and duplicates
    are not left to call."""
    depth = QueueDepths(
        region="RU-MOW",
        ready=5,
        due=2,
        due_now=1,
        leased=1,
        parked=4,
        counters={"done": 9, "retired": 1, "dnc": 3, "dropped_duplicates": 2, "enqueued": 27},
    )
    assert remaining(depth) == 8
