"""The reaper: ends expired leases, returning their numbers to the FRONT of the queue.

Each pass, per region, it reads at most ``batch_size`` lease ids whose deadline has
passed (``ZRANGEBYSCORE … LIMIT``) and runs ``reap-8.lua`` once per id, in one
pipeline; the script re-checks the deadline by Redis time, so a lease renewed meanwhile
is left alone. A number whose leases expired ``lease_max_expiries`` times is parked.
At most ``max_batches`` batches per region per pass keep one pass bounded.

The volunteer's reservation of an expired lease needs no work here: it carries the
same deadline and frees itself (see :mod:`phonebank.leases.limits`).

Reclaim lag is how long the oldest expired lease waited (or still waits) past its
deadline: the figure to alert on when the reaper falls behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from phonebank.domain.clock import now_ms
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.client import LEASE_RETENTION_MS
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import known_regions
from phonebank.leases.scripts import ReturnCode, Scripts
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: expired leases reaped per region per batch (count)
DEFAULT_BATCH_SIZE = 200
#: batches per region per pass (count)
DEFAULT_MAX_BATCHES = 10


@dataclass
class ReapPass:
    """What one pass did (counts) and the reclaim lag it saw (milliseconds)."""

    reaped: int = 0
    parked: int = 0
    reclaim_lag_ms: int = 0


class Reaper:
    """Returns expired leases of every region of one campaign."""

    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batches: int = DEFAULT_MAX_BATCHES,
        clock_offset_ms: int = 0,
    ) -> None:
        self._client = client
        self._keys = KeyScheme(settings.key_prefix, settings.campaign)
        self._scripts = Scripts(client)
        self._max_expiries = settings.lease_max_expiries
        self._batch_size = batch_size
        self._max_batches = max_batches
        #: test-only milliseconds added to Redis TIME inside the scripts (0 in production)
        self.clock_offset_ms = clock_offset_ms

    def now_ms(self) -> int:
        """The client's estimate of script time."""
        return now_ms(self.clock_offset_ms)

    def reap_all(self, regions: Iterable[str] | None = None) -> ReapPass:
        """One bounded pass over ``regions`` (default: every region with numbers)."""
        totals = ReapPass()
        for region in known_regions(self._client, self._keys) if regions is None else regions:
            for _ in range(self._max_batches):
                reaped = self._reap_batch(region, totals)
                if reaped < self._batch_size:
                    break
            totals.reclaim_lag_ms = max(totals.reclaim_lag_ms, self._waiting_lag_ms(region))
        if totals.reaped:
            log.info("reaped %d expired leases (%d parked)", totals.reaped, totals.parked)
        return totals

    def _reap_batch(self, region: str, totals: ReapPass) -> int:
        keys = self._keys.region(region)
        expired = self._client.zrangebyscore(
            keys.leases, "-inf", self.now_ms(), start=0, num=self._batch_size
        )
        if not expired:
            return 0
        pipe = self._scripts.pipeline(self._client)
        lease_ids = [reply_text(lease_id) for lease_id in cast(list[bytes], expired)]
        for lease_id in lease_ids:
            pipe.script(
                "reap",
                keys,
                [lease_id, self._max_expiries, LEASE_RETENTION_MS, self.clock_offset_ms],
                lease_id=lease_id,
            )
        for reply in pipe.execute():
            if reply[0] != ReturnCode.OK:
                continue
            totals.reaped += 1
            totals.parked += reply_text(reply[1]) == "parked"
            totals.reclaim_lag_ms = max(totals.reclaim_lag_ms, int(reply[3]))
        return len(lease_ids)

    def _waiting_lag_ms(self, region: str) -> int:
        oldest = self._client.zrange(self._keys.region(region).leases, 0, 0, withscores=True)
        if not oldest:
            return 0
        deadline_ms = cast(list[tuple[bytes, float]], oldest)[0][1]
        return max(0, self.now_ms() - int(deadline_ms))
