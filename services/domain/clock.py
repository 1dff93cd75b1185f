"""Time units in milliseconds, and the one wall clock every process reads.

phonebank counts time in epoch milliseconds everywhere (Kafka timestamps, Redis ``TIME``
as the scripts read it, lease deadlines, due times). :func:`now_ms` is the only place a
process reads the wall clock for that; ``offset_ms`` is the test knob that shifts a
client's clock (0 in production): the lease scripts get the same offset, so a test can
stand at 03:00 Moscow time without waiting for it. Inside a script time is Redis
``TIME`` plus that offset, never the client's clock.
"""

from __future__ import annotations

import time

#: milliseconds in a second
SECOND_MS = 1_000
#: milliseconds in a minute
MINUTE_MS = 60 * SECOND_MS
#: milliseconds in an hour
HOUR_MS = 60 * MINUTE_MS
#: milliseconds in a day (24 hours; calendar days are computed with zoneinfo)
DAY_MS = 24 * HOUR_MS
#: seconds in a day
DAY_SECONDS = DAY_MS // SECOND_MS


def now_ms(offset_ms: int = 0) -> int:
    """The wall clock in epoch milliseconds, plus ``offset_ms`` (0 in production)."""
    return time.time_ns() // 1_000_000 + offset_ms
