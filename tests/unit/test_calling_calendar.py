"""The lease client's calendar gives the same answers as calling_hours, computed ahead."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from phonebank.domain.calling_calendar import CALENDAR_REFRESH_MS, CallingCalendar
from phonebank.domain.calling_hours import (
    CallingPolicy,
    next_opening,
    open_regions,
    to_ms,
    upcoming_windows,
    window_at,
)
from phonebank.domain.clock import DAY_MS, HOUR_MS

REGION_ZONES = {
    "RU-MOW": ("Europe/Moscow",),
    "RU-KAM": ("Asia/Kamchatka",),
    "RU-SA": ("Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan"),
    "RU-KGD": ("Europe/Kaliningrad",),
    "XX-UNKNOWN": (),
}
WEEKDAYS_ONLY = CallingPolicy.every_day(
    dt.time(9), dt.time(21), ("mon", "tue", "wed", "thu", "fri")
)
SATURDAY_SHORT = CallingPolicy(((5, dt.time(11), dt.time(13)),))
POLICIES = (CallingPolicy.every_day(dt.time(9), dt.time(21)), WEEKDAYS_ONLY, SATURDAY_SHORT)
#: a Tuesday noon in Moscow
START = to_ms(dt.datetime(2026, 3, 10, 12, tzinfo=ZoneInfo("Europe/Moscow")))
#: instants over four weeks from START
instants = st.integers(min_value=START, max_value=START + 28 * DAY_MS)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(instants, min_size=1, max_size=8), policy=st.sampled_from(POLICIES))
def test_every_answer_matches_calling_hours(steps: list[int], policy: CallingPolicy) -> None:
    # Given one calendar asked at several instants (forward and backward in time)
    calendar = CallingCalendar(REGION_ZONES, policy)
    for now in sorted(steps) + steps:
        # When asked what is open, a region's window, its next windows, the next opening
        # Then each answer is what calling_hours computes from scratch
        assert dict(calendar.open_now(now)) == open_regions(REGION_ZONES, policy, now)
        for region, zones in REGION_ZONES.items():
            assert calendar.window_at(region, now) == window_at(zones, policy, now)
            for anchor in (now - HOUR_MS, now, now + 3 * DAY_MS):
                assert calendar.upcoming(region, anchor, 4) == upcoming_windows(
                    zones, policy, anchor, 4
                )
        expected = [next_opening(zones, policy, now) for zones in REGION_ZONES.values()]
        known = [opening for opening in expected if opening is not None]
        assert calendar.next_opening(REGION_ZONES, now) == (min(known) if known else None)


def test_open_set_changes_exactly_at_a_window_edge() -> None:
    # Given a calendar first asked at noon Moscow
    policy = POLICIES[0]
    calendar = CallingCalendar(REGION_ZONES, policy)
    assert "RU-MOW" in calendar.open_now(START)
    nine_pm = START + 9 * 3_600_000
    # When asked one millisecond before 21:00 and at 21:00
    before, at_close = calendar.open_now(nine_pm - 1), calendar.open_now(nine_pm)
    # Then Moscow is open just before and closed at the edge (the cached set is not reused)
    assert "RU-MOW" in before
    assert "RU-MOW" not in at_close


def test_a_day_later_the_calendar_is_computed_again() -> None:
    # Given a calendar asked once, then after its refresh period has passed
    calendar = CallingCalendar(REGION_ZONES, POLICIES[0])
    calendar.open_now(START)
    later = START + CALENDAR_REFRESH_MS + 20 * DAY_MS
    # When asked about an anchor far past the first computed span
    # Then the answer is still right
    assert calendar.open_now(later) == open_regions(REGION_ZONES, POLICIES[0], later)
    assert calendar.upcoming("RU-KAM", later, 2) == upcoming_windows(
        REGION_ZONES["RU-KAM"], POLICIES[0], later, 2
    )
