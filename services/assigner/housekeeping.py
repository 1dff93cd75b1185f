"""The assigner's background housekeeping: a sweep thread that reaps, a relay thread.

**Sweep** (thread ``sweeper``, every :data:`SWEEP_PERIOD_SECONDS`): one pipeline reads,
for each region due for a look, the length of its outcome stream and its oldest lease
deadline (``XLEN`` + ``ZRANGE 0 0 WITHSCORES``). Only the regions whose oldest deadline
has passed are reaped (:class:`~phonebank.leases.reaper.Reaper`); only those with events
waiting are handed to the relay. A region with live leases or waiting events is looked
at again next period; a quiet one (neither) about every :data:`QUIET_LOOK_SECONDS`, the
quiet regions spread evenly over the sweeps (95 quiet regions: 5 a sweep). An idle
assigner (full queues, no volunteers) so issues about a dozen Redis commands a second,
not hundreds. The price: in a quiet region, the first event waits up to that long for
the relay, and a lease granted there is reaped up to that long after its deadline (a
lease makes its region active at the next look; with the default 15-minute time to live
that look comes long before the deadline).

**Relay** (thread ``relay``): moves the handed-over regions' events to Kafka
(:class:`~phonebank.leases.relay.OutcomeRelay`). A produce or flush that blocks through a
Kafka outage blocks this thread only: the sweep, hence the reaper, never waits behind it.

Both loops survive outages of any length: a round that fails on Redis or Kafka is counted
in ``phonebank_background_failures_total{operation="sweep"|"relay"}``, logged, and
retried with backoff (:mod:`phonebank.infra.retry`); the relay creates its producer
inside its loop, so a broker down at start is an outage like any other. Only the stop
event (SIGTERM) ends them; the relay then makes one last attempt to empty what it holds
(none while its dependencies are failing, so an outage does not delay the shutdown).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from kafka import KafkaProducer

from phonebank.assigner.metrics import AssignerMetrics
from phonebank.infra.kafka import make_producer
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.retry import DEPENDENCY_ERRORS, Backoff
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import known_regions
from phonebank.leases.reaper import Reaper
from phonebank.leases.relay import BATCH_ENTRIES, OutcomeRelay, RelayMetrics
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: seconds between two sweeps, and between two looks at an active region
SWEEP_PERIOD_SECONDS = 1.0
#: seconds between two looks at a quiet region (no live lease, no event waiting)
QUIET_LOOK_SECONDS = 20.0
#: seconds the relay thread waits for regions to relay before it looks at its stop event
RELAY_WAKE_SECONDS = 1.0


@dataclass(frozen=True)
class RegionState:
    """What one sweep read of a region."""

    #: events in the region's outcome stream, not yet relayed
    pending_events: int
    #: deadline of the region's oldest live lease (ms), None without leases
    oldest_deadline_ms: int | None

    @property
    def active(self) -> bool:
        """Whether the region has live leases or events waiting."""
        return self.pending_events > 0 or self.oldest_deadline_ms is not None


def sweep(client: RedisClient, scheme: KeyScheme, regions: list[str]) -> dict[str, RegionState]:
    """Each region's stream length and oldest lease deadline, in one pipeline."""
    pipe = client.pipeline(transaction=False)
    for region in regions:
        keys = scheme.region(region)
        pipe.xlen(keys.outcomes)
        pipe.zrange(keys.leases, 0, 0, withscores=True)
    replies = pipe.execute()
    states = {}
    for index, region in enumerate(regions):
        oldest = cast(list[tuple[bytes, float]], replies[2 * index + 1])
        deadline = int(oldest[0][1]) if oldest else None
        states[region] = RegionState(int(replies[2 * index]), deadline)
    return states


class RelayLoop:
    """The relay thread's work: regions handed over by the sweep, relayed to Kafka."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        metrics: AssignerMetrics,
        stop: threading.Event,
        *,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self.settings = settings
        self.redis = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.relay_metrics = RelayMetrics(metrics.registry)
        self.backoff = Backoff("relay", metrics.failures, stop)
        self.stop = stop
        self.producer_factory = producer_factory or (lambda: make_producer(settings))
        self.relay: OutcomeRelay | None = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        #: relay rounds that went through (tests await it)
        self.rounds = 0

    def hand_over(self, regions: Iterable[str]) -> None:
        """Regions with events waiting, from a sweep: wakes the relay thread. A sweep that
        found none while none is held means the relay is up to date (its success time)."""
        regions = set(regions)
        with self._lock:
            self._pending |= regions
            idle = not self._pending
        if idle:
            self.relay_metrics.last_success.set(time.time())
        else:
            self._wake.set()

    def run(self) -> None:
        """Relay until the stop event is set, then try once more to empty what is held
        (unless Kafka or Redis is failing: the events wait in Redis for the next relay)."""
        try:
            while not self.stop.is_set():
                self._wake.wait(RELAY_WAKE_SECONDS)
                self._wake.clear()
                self._attempt()
            if not self.backoff.failures:
                self._round()
        except DEPENDENCY_ERRORS as exc:
            log.warning("last relay round at shutdown failed, events stay in Redis: %s", exc)
        finally:
            if self.relay is not None:
                self.relay.producer.close()

    def _attempt(self) -> None:
        """One round, counted and backed off if it fails on a dependency."""
        try:
            self._round()
        except DEPENDENCY_ERRORS as exc:
            self.backoff.failed(exc)
        else:
            self.backoff.succeeded()

    def _round(self) -> None:
        """Relay one batch of each held region; a region with more left stays held."""
        with self._lock:
            regions = sorted(self._pending)
        if not regions:
            return
        relay = self._relay()
        for region in regions:
            moved = relay.relay_region(self.scheme.region(region))
            if moved < BATCH_ENTRIES:
                with self._lock:
                    self._pending.discard(region)
        relay.metrics.last_success.set(time.time())
        self.rounds += 1
        if self._pending:
            self._wake.set()

    def _relay(self) -> OutcomeRelay:
        """The relay, with its producer created on first use (a Kafka outage at start is
        retried like any other)."""
        if self.relay is None:
            self.relay = OutcomeRelay(
                self.settings, self.redis, self.producer_factory(), self.relay_metrics
            )
        return self.relay


class Sweeper:
    """The sweep thread's work (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        metrics: AssignerMetrics,
        relay: RelayLoop,
        stop: threading.Event,
        *,
        reaper: Reaper | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.metrics = metrics
        self.relay = relay
        self.stop = stop
        self.reaper = reaper or Reaper(settings, client)
        self.clock = clock
        self.backoff = Backoff("sweep", metrics.failures, stop)
        #: regions that had live leases or waiting events at their last look
        self.active: set[str] = set()
        #: region → monotonic seconds of its last look
        self.looked_at: dict[str, float] = {}
        #: sweeps that went through, and leases they reaped (tests await them)
        self.rounds = 0
        self.reaped = 0

    def run(self) -> None:
        """Sweep every period until the stop event is set."""
        while not self.stop.is_set():
            try:
                self.round()
            except DEPENDENCY_ERRORS as exc:
                self.backoff.failed(exc)
            else:
                self.backoff.succeeded()
                self.stop.wait(SWEEP_PERIOD_SECONDS)

    def round(self) -> None:
        """Look at the regions due, reap the expired, hand the relay those with events."""
        now = self.clock()
        due = self._due(known_regions(self.redis, self.scheme))
        states = sweep(self.redis, self.scheme, due) if due else {}
        now_ms = self.reaper.now_ms()
        expired = [
            region
            for region, state in states.items()
            if state.oldest_deadline_ms is not None and state.oldest_deadline_ms <= now_ms
        ]
        if expired:
            done = self.reaper.reap_all(expired)
            self.reaped += done.reaped
            self.metrics.reclaim_lag.set(done.reclaim_lag_ms / 1000)
        elif due:
            self.metrics.reclaim_lag.set(0)
        self.relay.hand_over(region for region, state in states.items() if state.pending_events)
        for region, state in states.items():
            self.looked_at[region] = now
            if state.active:
                self.active.add(region)
            else:
                self.active.discard(region)
        self.rounds += 1

    def _due(self, regions: list[str]) -> list[str]:
        """Every active region; of the quiet ones, the share that has each looked at about
        every :data:`QUIET_LOOK_SECONDS` (those looked at longest ago, or never, first):
        the looks are spread evenly over time, not all at once."""
        quiet = sorted(
            (region for region in regions if region not in self.active),
            key=lambda region: self.looked_at.get(region, -math.inf),
        )
        share = math.ceil(len(quiet) * SWEEP_PERIOD_SECONDS / QUIET_LOOK_SECONDS)
        return [region for region in regions if region in self.active] + quiet[:share]


def start_housekeeping(
    settings: Settings, client: RedisClient, metrics: AssignerMetrics, stop: threading.Event
) -> list[threading.Thread]:
    """Start the sweep and relay threads (they end when ``stop`` is set)."""
    relay = RelayLoop(settings, client, metrics, stop)
    sweeper = Sweeper(settings, client, metrics, relay, stop)
    threads = [
        threading.Thread(target=sweeper.run, name="sweeper"),
        threading.Thread(target=relay.run, name="relay"),
    ]
    for thread in threads:
        thread.start()
    return threads
