"""Simulated volunteers for the demo: real leases through the gateway's HTTP API.

Each volunteer is a thread with its own bearer token and :class:`GatewayClient`:
acquire a number, "call" it for a realistic duration (compressed by the demo's speed
factor), complete it with an outcome drawn from the rates below, repeat. The tallies
are what the demo later checks the reporter against.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from phonebank.domain.records import Outcome
from phonebank.local.gateway_client import Answer, GatewayClient, GatewayUnavailableError

log = logging.getLogger(__name__)

#: Outcome shares of dialled calls, roughly as phone banks report them (sum 1.0).
OUTCOME_RATES: dict[Outcome, float] = {
    Outcome.NO_ANSWER: 0.42,
    Outcome.BUSY: 0.07,
    Outcome.VOICEMAIL: 0.10,
    Outcome.REFUSED: 0.16,
    Outcome.CONVERSATION: 0.13,
    Outcome.CALLBACK: 0.03,
    Outcome.WRONG_NUMBER: 0.03,
    Outcome.NOT_IN_SERVICE: 0.03,
    Outcome.DO_NOT_CALL: 0.01,
    Outcome.SKIPPED: 0.02,
}
#: seconds of a typical call (median of a log-normal; conversations last longer)
MEDIAN_CALL_SECONDS = 45.0
#: how much longer a conversation is than an unanswered call (factor)
CONVERSATION_FACTOR = 8.0
#: log-normal spread of call durations
CALL_DURATION_SIGMA = 0.6
#: seconds (simulated) a callee who asked for a callback wants to wait
CALLBACK_DELAY_SECONDS = 3 * 3600
#: seconds (real) a volunteer waits when nothing is leasable, before asking again
IDLE_WAIT_SECONDS = 0.5


@dataclass
class Tally:
    """What the volunteers did, per region and outcome (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    leases: int = 0
    idle: int = 0
    closed: int = 0
    limited: int = 0
    #: answers the demo did not expect (logged as warnings)
    failed: int = 0

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def record(self, region: str, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes[(region, outcome.value)] += 1

    @property
    def completed(self) -> int:
        with self.lock:
            return sum(self.outcomes.values())


#: acquire answers that mean "ask again after a pause", and the tally each counts in
_WAIT_ANSWERS = {
    HTTPStatus.NO_CONTENT: "idle",
    HTTPStatus.LOCKED: "closed",
    HTTPStatus.CONFLICT: "limited",
    HTTPStatus.TOO_MANY_REQUESTS: "limited",
}


class Volunteer(threading.Thread):
    """One simulated volunteer calling through the gateway until ``stop`` is set."""

    def __init__(
        self,
        name: str,
        client: GatewayClient,
        *,
        speed: float,
        tally: Tally,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.client = client
        self.speed = speed
        self.tally = tally
        self.halt = stop
        self.rng = random.Random(seed)

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                try:
                    self.call_once()
                except GatewayUnavailableError as exc:
                    self.tally.count("failed")
                    log.warning("%s: %s", self.name, exc)
                    self.halt.wait(IDLE_WAIT_SECONDS)
        finally:
            self.client.close()

    def call_once(self) -> None:
        """Acquire, call, complete."""
        answer = self.client.acquire()
        if answer.status not in {HTTPStatus.CREATED, HTTPStatus.OK}:
            self.wait_after(answer)
            return
        lease = answer.data
        self.tally.count("leases")
        outcome = self.draw_outcome()
        self.halt.wait(self.call_seconds(outcome) / self.speed)
        callback_at = None
        if outcome is Outcome.CALLBACK:
            later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=CALLBACK_DELAY_SECONDS)
            callback_at = later.isoformat()
        done = self.client.complete(lease, outcome.value, callback_at)
        if done.status == HTTPStatus.OK:
            self.tally.record(region_of(lease), outcome)
        else:
            self.tally.count("failed")
            log.warning("%s: complete answered %d %s", self.name, done.status, done.data)

    def wait_after(self, answer: Answer) -> None:
        """Count a refused or empty acquire and pause before the next."""
        counter = _WAIT_ANSWERS.get(HTTPStatus(answer.status))
        if counter is None:
            self.tally.count("failed")
            log.warning("%s: acquire answered %d %s", self.name, answer.status, answer.data)
            pause = IDLE_WAIT_SECONDS
        else:
            self.tally.count(counter)
            pause = min(answer.retry_after_seconds, IDLE_WAIT_SECONDS)
        self.halt.wait(pause)

    def draw_outcome(self) -> Outcome:
        outcomes = list(OUTCOME_RATES)
        return self.rng.choices(outcomes, weights=[OUTCOME_RATES[o] for o in outcomes])[0]

    def call_seconds(self, outcome: Outcome) -> float:
        median = MEDIAN_CALL_SECONDS * (
            CONVERSATION_FACTOR if outcome is Outcome.CONVERSATION else 1.0
        )
        return median * self.rng.lognormvariate(0.0, CALL_DURATION_SIGMA)


def region_of(lease: dict[str, Any]) -> str:
    """The region code of a lease answer."""
    region = lease["region"]
    return str(region["code"] if isinstance(region, dict) else region)
