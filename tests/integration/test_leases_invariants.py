"""Invariants under load: exclusivity with 200 concurrent acquirers, conservation throughout."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from phonebank.domain.clock import MINUTE_MS
from phonebank.domain.lease_types import Lease, LeaseError
from phonebank.domain.records import Outcome
from phonebank.infra.redis_client import connect
from phonebank.leases import dnc
from phonebank.leases.client import LeaseClient
from phonebank.leases.queues import queue_depths
from phonebank.settings import Settings
from tests.integration.lease_helpers import (
    MOSCOW_ONLY,
    assert_conserved,
    fill,
    lease_client,
    local_instant,
    numbers_from,
    reaper,
    scheme,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: concurrent acquirers, as the issue asks
ACQUIRERS = 200
#: acquire → finish cycles per acquirer
CYCLES = 5
VOLUNTEER_OUTCOMES = [outcome for outcome in Outcome if outcome is not Outcome.EXPIRED]


class HeldNumbers:
    """Numbers the test's volunteers hold right now; flags any number handed out twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[int] = set()
        self.violations: list[str] = []
        self.granted = 0

    def take(self, lease: Lease) -> None:
        with self._lock:
            self.granted += 1
            if lease.national_number in self._held:
                self.violations.append(lease.masked_number)
            self._held.add(lease.national_number)

    def give_back(self, lease: Lease) -> None:
        # Forget before Redis does, so a legitimate re-lease is never flagged.
        with self._lock:
            self._held.discard(lease.national_number)


def volunteer_cycles(leases: LeaseClient, name: str, held: HeldNumbers, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(CYCLES):
        try:
            lease = leases.acquire(name)
        except LeaseError:
            continue
        if lease is None:
            continue
        held.take(lease)
        held.give_back(lease)
        if rng.random() < 0.5:
            leases.release(lease.lease_id, lease.token)
        else:
            leases.complete(
                lease.lease_id,
                lease.token,
                rng.choice([Outcome.SKIPPED, Outcome.NO_ANSWER, Outcome.CONVERSATION]),
            )


def test_no_number_is_held_by_two_volunteers_under_200_concurrent_acquirers(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given fewer numbers than acquirers, and one shared client (one connection pool)
    pool = connect(settings, max_connections=ACQUIRERS + 10)
    fill(settings, pool, "RU-MOW", numbers_from(9_161_000_000, ACQUIRERS // 2))
    leases = lease_client(settings, pool, local_instant(12), MOSCOW_ONLY)
    held = HeldNumbers()
    # When 200 volunteers acquire and finish at the same time
    with ThreadPoolExecutor(max_workers=ACQUIRERS) as pool_threads:
        futures = [
            pool_threads.submit(volunteer_cycles, leases, f"v{i}", held, i)
            for i in range(ACQUIRERS)
        ]
        for future in futures:
            future.result()
    # Then no number was ever held twice, and every number is still accounted for
    assert held.violations == []
    assert held.granted >= ACQUIRERS // 2
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())
    pool.close()


def test_one_shot_race_gives_each_number_to_exactly_one_volunteer(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given 100 numbers and 200 volunteers released at the same instant
    pool = connect(settings, max_connections=ACQUIRERS + 10)
    fill(settings, pool, "RU-MOW", numbers_from(9_161_000_000, ACQUIRERS // 2))
    leases = lease_client(settings, pool, local_instant(12), MOSCOW_ONLY)
    start = threading.Barrier(ACQUIRERS)

    def grab(name: str) -> Lease | None:
        start.wait()
        return leases.acquire(name)

    with ThreadPoolExecutor(max_workers=ACQUIRERS) as threads:
        got = list(threads.map(grab, [f"v{i}" for i in range(ACQUIRERS)]))
    # Then exactly 100 leases, on 100 different numbers
    numbers = [lease.national_number for lease in got if lease is not None]
    assert len(numbers) == ACQUIRERS // 2
    assert len(set(numbers)) == len(numbers)
    assert_conserved(settings, redis_client, "RU-MOW", leases.now_ms())
    pool.close()


def _random_step(leases: LeaseClient, live: list[Lease], rng: random.Random, step: int) -> None:
    action = rng.choice(["acquire", "acquire", "renew", "complete", "release", "expire"])
    if action == "acquire" or not live:
        lease = leases.acquire(f"v{step}")
        if lease is not None:
            live.append(lease)
        return
    lease = live.pop(rng.randrange(len(live)))
    try:
        if action == "renew":
            leases.renew(lease.lease_id, lease.token)
            live.append(lease)
        elif action == "complete":
            leases.complete(lease.lease_id, lease.token, rng.choice(VOLUNTEER_OUTCOMES))
        elif action == "release":
            leases.release(lease.lease_id, lease.token)
        else:
            live.append(lease)
            leases.clock_offset_ms += MINUTE_MS
            leases.chooser.invalidate()
    except LeaseError:
        pass  # expired or already ended: the answer is the point, not an error


def test_conservation_across_acquire_renew_complete_release_and_expiry(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given 30 numbers, short leases and a number parked after two expiries
    short = settings.model_copy(update={"lease_ttl_seconds": 120, "lease_max_expiries": 2})
    fill(short, redis_client, "RU-MOW", numbers_from(9_161_000_000, 30))
    leases = lease_client(short, redis_client, local_instant(10), MOSCOW_ONLY)
    rng = random.Random(20260310)
    live: list[Lease] = []
    # When 300 random operations run, the clock advancing, the reaper in between (late
    # answers to reaped leases included)
    for step in range(300):
        _random_step(leases, live, rng, step)
        if step % 10 == 0:
            reaper(short, redis_client, leases.clock_offset_ms).reap_all()
        # Then after every step each number is in exactly one state
        assert_conserved(short, redis_client, "RU-MOW", leases.now_ms())
    # And the run did exercise expiry, parking and late answers
    depths = queue_depths(redis_client, scheme(short), ["RU-MOW"], leases.now_ms())["RU-MOW"]
    assert depths.counter("expired") > 0 and depths.parked > 0 and depths.counter("late") > 0


def test_conservation_and_do_not_call_finality_with_numbers_listed_at_random(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Given 30 numbers and short leases, When 300 random operations run and now and then
    a random number (queued, leased, due or finished) is put on the do-not-call list by
    an operator whose plan places no number, Then every number stays in exactly one
    state after every step, and no listed number is handed out afterwards."""
    short = settings.model_copy(update={"lease_ttl_seconds": 120, "lease_max_expiries": 2})
    numbers = numbers_from(9_161_000_000, 30)
    fill(short, redis_client, "RU-MOW", numbers)
    leases = lease_client(short, redis_client, local_instant(10), MOSCOW_ONLY)
    rng = random.Random(20261202)
    live: list[Lease] = []
    listed: set[int] = set()
    ended = 0
    for step in range(300):
        if rng.random() < 0.1:
            number = rng.choice(numbers)
            ended += dnc.add_numbers(
                redis_client, short.key_prefix, [number], lambda _: None
            ).leases_ended
            listed.add(number)
        known = {lease.lease_id for lease in live}
        _random_step(leases, live, rng, step)
        granted = [lease for lease in live if lease.lease_id not in known]
        assert not [lease.masked_number for lease in granted if lease.national_number in listed]
        if step % 10 == 0:
            reaper(short, redis_client, leases.clock_offset_ms).reap_all()
        assert_conserved(short, redis_client, "RU-MOW", leases.now_ms())
    # And the run listed numbers in play, some of them while leased
    assert listed and ended > 0
    depths = queue_depths(redis_client, scheme(short), ["RU-MOW"], leases.now_ms())["RU-MOW"]
    assert depths.counter("dnc") > 0
