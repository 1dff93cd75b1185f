"""The gateway's sliding-window rate limit (``lua/ratelimit-1.lua``) on a real Redis.

The script reads Redis TIME; each test moves the script's clock with the clock offset
to a window boundary it chooses, so the weights and waits are exact up to the few
milliseconds the test itself takes (:data:`DRIFT_MS`).
"""

from __future__ import annotations

import pytest

from phonebank.domain import clock
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.scripts import ReturnCode, Scripts
from phonebank.settings import Settings
from tests.integration.lease_helpers import scheme

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: milliseconds of one window in these tests
WINDOW_MS = 60_000
#: milliseconds the test may take between choosing the clock and the script reading it
DRIFT_MS = 500


class Window:
    """One caller's counter, called at chosen points of the script's clock."""

    def __init__(self, settings: Settings, client: RedisClient, limit: int) -> None:
        self.scripts = Scripts(client)
        self.client = client
        self.key = scheme(settings).rate_window("token", "ab" * 16)
        self.limit = limit
        # a window boundary well ahead of the real clock: the script's time zero
        self.origin = (clock.now_ms() // WINDOW_MS + 10) * WINDOW_MS

    def hit(self, at_ms: int) -> tuple[int, int]:
        """One request at ``at_ms`` after the origin: (code, left or wait in ms)."""
        offset = self.origin + at_ms - clock.now_ms()
        reply = self.scripts.run("ratelimit", {"window": self.key}, [self.limit, WINDOW_MS, offset])
        return int(reply[0]), int(reply[1])


def test_a_full_window_refuses_with_the_wait_until_room(
    settings: Settings, redis_client: RedisClient
) -> None:
    # Given a limit of 3 a minute, at the start of a window
    window = Window(settings, redis_client, 3)
    # When 4 requests come at once
    replies = [window.hit(0) for _ in range(4)]
    # Then 3 are counted (2, 1, 0 left) and the fourth is refused until the next window
    # has weighed this one's 3 down to 2: a third into it (60 s + 20 s)
    assert replies[:3] == [(ReturnCode.OK, 2), (ReturnCode.OK, 1), (ReturnCode.OK, 0)]
    code, wait = replies[3]
    assert code == ReturnCode.RATE_LIMITED
    assert 80_000 - DRIFT_MS <= wait <= 80_000


def test_the_previous_window_counts_by_the_share_still_inside(
    settings: Settings, redis_client: RedisClient
) -> None:
    # Given 3 requests counted in one window (limit 3)
    window = Window(settings, redis_client, 3)
    for _ in range(3):
        assert window.hit(0)[0] == ReturnCode.OK
    # When half of the next window has passed: the previous 3 weigh 1.5
    first, second = window.hit(WINDOW_MS + WINDOW_MS // 2), window.hit(WINDOW_MS + WINDOW_MS // 2)
    # Then one more fits (1.5 + 1 <= 3), the next does not (1.5 + 1 + 1 > 3), and its
    # wait is until the previous window weighs 1: two thirds into this one (10 s more)
    assert first[0] == ReturnCode.OK
    assert second[0] == ReturnCode.RATE_LIMITED
    assert 10_000 - DRIFT_MS <= second[1] <= 10_000
    # And 10 s later it is counted
    assert window.hit(WINDOW_MS + WINDOW_MS // 2 + 10_000 + DRIFT_MS)[0] == ReturnCode.OK


def test_a_refused_request_is_not_counted_and_an_old_window_is_forgotten(
    settings: Settings, redis_client: RedisClient
) -> None:
    # Given a limit of 1, used, and refused 50 more times in the same window
    window = Window(settings, redis_client, 1)
    assert window.hit(0)[0] == ReturnCode.OK
    assert all(window.hit(1000)[0] == ReturnCode.RATE_LIMITED for _ in range(50))
    # When two windows later a request comes
    later = window.hit(2 * WINDOW_MS)
    # Then it is counted: nothing of the refused ones or of the old window remains
    assert later == (ReturnCode.OK, 0)
    # And the counter expires by itself within two windows
    assert 0 < redis_client.pttl(window.key) <= 2 * WINDOW_MS
