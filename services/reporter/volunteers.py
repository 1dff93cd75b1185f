"""Active volunteers in the last 15 minutes and 24 hours, counted with Redis HyperLogLogs.

Each outcome adds its volunteer hash (already a keyed hash, never the id) to a per-minute
and a per-hour HyperLogLog; a count is one ``PFCOUNT`` over the buckets of the window.
``PFADD`` is idempotent, so replaying events after a restart or a rebuild never counts a
volunteer twice. Buckets expire on their own once out of every window. Counts carry the
HyperLogLog's ~0.8 % standard error and are never labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from phonebank.domain.clock import HOUR_MS, MINUTE_MS
from phonebank.domain.records import OutcomeEvent
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import ReporterKeys

#: milliseconds in one minute / one hour (bucket widths)
#: minutes in the short window, hours in the long one
SHORT_WINDOW_MINUTES = 15
LONG_WINDOW_HOURS = 24
#: seconds a minute bucket is kept after it closes (covers the 15-minute window)
MINUTE_BUCKET_TTL_SECONDS = (SHORT_WINDOW_MINUTES + 5) * 60
#: seconds an hour bucket is kept after it closes (covers the 24-hour window)
HOUR_BUCKET_TTL_SECONDS = (LONG_WINDOW_HOURS + 2) * 3600


class ActiveVolunteers:
    """Records volunteers per time bucket and counts them over the two windows."""

    def __init__(self, client: RedisClient, keys: ReporterKeys) -> None:
        self.redis = client
        self.keys = keys

    def record(self, events: Iterable[OutcomeEvent], now_ms: int) -> None:
        """Add the volunteers of ``events`` to their buckets (skipping long-closed ones)."""
        minutes: dict[int, set[str]] = defaultdict(set)
        hours: dict[int, set[str]] = defaultdict(set)
        oldest_ms = now_ms - LONG_WINDOW_HOURS * HOUR_MS - HOUR_MS
        for event in events:
            at_ms = event.completed_at_ms
            if at_ms < oldest_ms:
                continue
            hours[at_ms // HOUR_MS].add(event.volunteer)
            if at_ms >= now_ms - (SHORT_WINDOW_MINUTES + 1) * MINUTE_MS:
                minutes[at_ms // MINUTE_MS].add(event.volunteer)
        if not hours:
            return
        pipe = self.redis.pipeline(transaction=False)
        for minute, members in minutes.items():
            key = self.keys.volunteers_minute(minute)
            pipe.pfadd(key, *members)
            pipe.expireat(key, (minute + 1) * MINUTE_MS // 1000 + MINUTE_BUCKET_TTL_SECONDS)
        for hour, members in hours.items():
            key = self.keys.volunteers_hour(hour)
            pipe.pfadd(key, *members)
            pipe.expireat(key, (hour + 1) * HOUR_MS // 1000 + HOUR_BUCKET_TTL_SECONDS)
        pipe.execute()

    def counts(self, now_ms: int) -> tuple[int, int]:
        """Distinct volunteers over the last 15 minutes and the last 24 hours."""
        minute = now_ms // MINUTE_MS
        hour = now_ms // HOUR_MS
        short = [
            self.keys.volunteers_minute(m)
            for m in range(minute - SHORT_WINDOW_MINUTES + 1, minute + 1)
        ]
        long = [self.keys.volunteers_hour(h) for h in range(hour - LONG_WINDOW_HOURS + 1, hour + 1)]
        # Two calls, not a pipeline: redis-py's cluster pipeline refuses PFCOUNT (the
        # buckets of one campaign share one slot, so each call is one node's answer).
        return int(self.redis.pfcount(*short)), int(self.redis.pfcount(*long))
