"""Helpers of the assigner tests: drive a worker until it reaches a state."""

from __future__ import annotations

import time
from collections.abc import Callable

from phonebank.assigner.worker import AssignerWorker

#: seconds a test waits for a worker to reach the expected state
DEADLINE_SECONDS = 120.0


def consumed_to_end(worker: AssignerWorker) -> bool:
    """Whether the worker owns every partition and has read each to its end."""
    consumer = worker.consumer
    assignment = consumer.assignment()
    if len(assignment) < worker.settings.numbers_partitions:
        return False
    ends = consumer.end_offsets(list(assignment))
    return all(consumer.position(partition) >= end for partition, end in ends.items())


def step_until(worker: AssignerWorker, condition: Callable[[], bool]) -> None:
    """Poll the worker until ``condition`` holds (a failed assertion after the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "worker did not reach the expected state"
        worker.step()
