"""Backoff for the background loops that must outlive their dependencies' outages.

A loop (the assigner's consumer loop, its reaper and relay threads, the lag metric)
calls :meth:`Backoff.failed` when a round fails on Redis or Kafka: the failure is counted
in ``phonebank_background_failures_total{operation, reason}``, logged once per failure
(never with a number or a volunteer id: the exception text of a client error holds
neither), and the loop waits an exponentially growing delay on the stop event, so
SIGTERM still ends it at once. :meth:`Backoff.succeeded` resets the delay.
"""

from __future__ import annotations

import logging
import threading

import redis
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from phonebank.infra import metrics as names

log = logging.getLogger(__name__)

#: seconds waited after a first failure
FIRST_DELAY_SECONDS = 0.1
#: seconds waited at most between two attempts, however long the outage
MAX_DELAY_SECONDS = 5.0
#: factor the delay grows by per consecutive failure
GROWTH = 2.0

#: the dependency errors a background loop survives (anything else is a bug and raises)
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, KafkaError, OSError)


def reason_of(exc: BaseException) -> str:
    """The ``reason`` label of a dependency error: ``redis``, ``kafka`` or ``network``."""
    if isinstance(exc, redis.RedisError):
        return "redis"
    if isinstance(exc, KafkaError):
        return "kafka"
    return "network"


class FailureMetrics:
    """The failure counter of one process's background loops."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter(
            names.BACKGROUND_FAILURES,
            "Rounds of a background loop that failed on a dependency.",
            ["operation", "reason"],
            registry=registry,
        )


class Backoff:
    """The retry state of one loop named ``operation``."""

    def __init__(self, operation: str, metrics: FailureMetrics, stop: threading.Event) -> None:
        self.operation = operation
        self.metrics = metrics
        self.stop = stop
        self.delay_seconds = 0.0
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        """Count and log ``exc``, then wait the next delay (or until stop is set)."""
        reason = reason_of(exc)
        self.failures += 1
        self.metrics.failures.labels(self.operation, reason).inc()
        self.delay_seconds = min(
            MAX_DELAY_SECONDS, max(FIRST_DELAY_SECONDS, self.delay_seconds * GROWTH)
        )
        log.warning(
            "%s failed on %s (%s: %s); retrying in %.1f s",
            self.operation,
            reason,
            type(exc).__name__,
            exc,
            self.delay_seconds,
        )
        self.stop.wait(self.delay_seconds)

    def succeeded(self) -> None:
        """A round went through: the next failure starts from the first delay again."""
        if self.delay_seconds:
            log.info("%s recovered after %d failures", self.operation, self.failures)
        self.delay_seconds = 0.0
        self.failures = 0
