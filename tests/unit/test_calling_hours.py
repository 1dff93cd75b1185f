"""Calling hours: window edges, zone boundaries, multi-zone intersection, next opening."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from phonebank.domain.calling_hours import (
    RUSSIAN_ZONES,
    CallingPolicy,
    Interval,
    fit_into_windows,
    is_open,
    next_opening,
    open_regions,
    to_ms,
    upcoming_windows,
    window_at,
)
from phonebank.settings import SettingsError, load_settings

NINE_TO_NINE = CallingPolicy.every_day(dt.time(9), dt.time(21))
UTC = ZoneInfo("UTC")
#: a Tuesday
DAY = dt.date(2026, 3, 10)


def at(
    hour: int, minute: int = 0, second: int = 0, zone: str = "Europe/Moscow", day: dt.date = DAY
) -> int:
    return to_ms(dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=ZoneInfo(zone)))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ((8, 59, 59), False),
        ((9, 0, 0), True),
        ((20, 59, 59), True),
        ((21, 0, 0), False),
    ],
)
def test_window_edges_in_callee_local_time(local: tuple[int, int, int], expected: bool) -> None:
    # Given the default 09:00-21:00 window, When asked at an edge in Moscow, Then:
    assert is_open(("Europe/Moscow",), NINE_TO_NINE, at(*local)) is expected


def test_zone_boundary_moscow_is_open_while_kaliningrad_is_not() -> None:
    # Given 06:30 UTC: 09:30 in Moscow (UTC+3), 08:30 in Kaliningrad (UTC+2)
    instant = at(6, 30, zone="UTC")
    regions = {
        "RU-MOW": ("Europe/Moscow",),
        "RU-KGD": ("Europe/Kaliningrad",),
        "RU-SAM": ("Europe/Samara",),
    }
    # When the open regions are listed, Then Kaliningrad is not among them
    assert sorted(open_regions(regions, NINE_TO_NINE, instant)) == ["RU-MOW", "RU-SAM"]


def test_multi_zone_region_gets_the_window_safe_for_all_zones() -> None:
    # Given a region in Moscow (UTC+3) and Yekaterinburg (UTC+5) time
    zones = ("Europe/Moscow", "Asia/Yekaterinburg")
    # When its window around noon is asked for
    window = window_at(zones, NINE_TO_NINE, at(12))
    # Then it opens at 09:00 Moscow (11:00 east) and closes at 21:00 east (19:00 Moscow)
    assert window == Interval(at(9), at(19))
    assert not is_open(zones, NINE_TO_NINE, at(19))


def test_unknown_zone_uses_the_window_safe_for_all_russian_zones() -> None:
    # Given a region with no known zone: Kaliningrad (UTC+2) to Kamchatka (UTC+12)
    window = window_at((), NINE_TO_NINE, at(8, zone="UTC"))
    # Then only 07:00-09:00 UTC is safe: 09:00 in Kaliningrad, 21:00 in Kamchatka
    assert window == Interval(at(7, zone="UTC"), at(9, zone="UTC"))
    assert window == window_at(RUSSIAN_ZONES, NINE_TO_NINE, at(8, zone="UTC"))


def test_calling_days_follow_the_callee_local_weekday() -> None:
    # Given calls on weekdays only
    weekdays = CallingPolicy.every_day(dt.time(9), dt.time(21), ["mon", "tue", "wed", "thu", "fri"])
    saturday = dt.date(2026, 3, 14)
    # When it is Friday 22:00 UTC = Saturday 10:00 in Kamchatka, Then Kamchatka is closed
    assert not is_open(
        ("Asia/Kamchatka",), weekdays, at(22, zone="UTC", day=saturday - dt.timedelta(days=1))
    )
    # And the next opening is Monday 09:00 Kamchatka time
    monday = dt.date(2026, 3, 16)
    opening = next_opening(("Asia/Kamchatka",), weekdays, at(12, zone="UTC", day=saturday))
    assert opening == at(9, zone="Asia/Kamchatka", day=monday)


def test_next_opening_after_the_window_closes_is_tomorrow_morning() -> None:
    # Given 21:00 in Moscow, Then the next opening is 09:00 the next day
    assert next_opening(("Europe/Moscow",), NINE_TO_NINE, at(21)) == at(
        9, day=DAY + dt.timedelta(days=1)
    )
    # And an instant inside a window is its own opening
    assert next_opening(("Europe/Moscow",), NINE_TO_NINE, at(15)) == at(15)


def test_fit_into_windows_moves_a_night_time_into_the_next_morning() -> None:
    windows = upcoming_windows(("Europe/Moscow",), NINE_TO_NINE, at(20), 3)
    # Given windows from 20:00 on, When a retry falls at midnight, Then it moves to 09:00
    assert fit_into_windows(at(23, 59), windows) == at(9, day=DAY + dt.timedelta(days=1))
    assert fit_into_windows(at(20, 30), windows) == at(20, 30)
    assert len(windows) == 3 and windows[0] == Interval(at(9), at(21))


def test_policy_reads_the_settings_days() -> None:
    policy = CallingPolicy.from_settings(
        load_settings(calling_days="sat,sun", calling_window_start="10:00")
    )
    assert policy.local_hours(5) == (dt.time(10), dt.time(21))
    assert policy.local_hours(0) is None


def test_hours_by_day_replace_the_window_on_those_days() -> None:
    # Given the default window, and shorter hours on Saturday and Sunday
    settings = load_settings(calling_hours_by_day=["sat=10:00-20:00", "Sunday=11:00-19:00"])
    # When the policy is read from the settings
    policy = CallingPolicy.from_settings(settings)
    # Then weekdays keep 09-21 and the weekend has its own hours
    assert policy.local_hours(0) == (dt.time(9), dt.time(21))
    assert policy.local_hours(5) == (dt.time(10), dt.time(20))
    assert policy.local_hours(6) == (dt.time(11), dt.time(19))


@pytest.mark.parametrize("item", ["sat", "sat=10:00", "funday=10:00-20:00", "sat=20:00-10:00"])
def test_malformed_hours_by_day_name_the_variable(item: str) -> None:
    with pytest.raises(SettingsError, match="PHONEBANK_CALLING_HOURS_BY_DAY"):
        load_settings(calling_hours_by_day=[item])
