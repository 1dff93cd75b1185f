"""Calling hours: when a callee may be called, in their local time, and which regions are open.

A :class:`CallingPolicy` gives the local hours per weekday (default 09:00–21:00, every
day). A region with several time zones gets the window safe for all of them: the
intersection of each zone's windows. A region with no known zone gets the window safe
for every Russian zone. All instants are epoch milliseconds (UTC), as Redis ``TIME``
gives them to the Lua scripts; windows are half-open ``[start_ms, end_ms)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from phonebank.domain.clock import DAY_MS
from phonebank.settings import WEEKDAYS, Settings, day_hours

#: days of windows computed at once and cached (a window never spans more than a day)
CACHE_SPAN_DAYS = 3
#: days ahead searched for the next opening before giving up (a week plus margin)
OPENING_HORIZON_DAYS = 15

#: Every time zone of Russia, west to east (UTC+2 … UTC+12): the fallback zone set.
RUSSIAN_ZONES = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
)


class Interval(NamedTuple):
    """A half-open span of time ``[start_ms, end_ms)`` in epoch milliseconds."""

    start_ms: int
    end_ms: int

    def contains(self, instant_ms: int) -> bool:
        """Whether ``instant_ms`` falls inside the span."""
        return self.start_ms <= instant_ms < self.end_ms


@dataclass(frozen=True)
class CallingPolicy:
    """Callee-local calling hours per weekday (0 = Monday); a missing day is closed."""

    #: weekday → (first local time to call, local time calls stop, exclusive)
    hours: tuple[tuple[int, dt.time, dt.time], ...]

    @classmethod
    def every_day(
        cls, start: dt.time, end: dt.time, days: Iterable[str] = WEEKDAYS
    ) -> CallingPolicy:
        """The same hours on each of ``days`` (names as in ``WEEKDAYS``)."""
        wanted = {WEEKDAYS.index(day) for day in days}
        return cls(tuple((day, start, end) for day in range(len(WEEKDAYS)) if day in wanted))

    @classmethod
    def from_settings(cls, settings: Settings) -> CallingPolicy:
        """``calling_window_start``/``_end`` on ``calling_days``, with the days named in
        ``calling_hours_by_day`` on their own hours."""
        hours = {
            day: (start, end)
            for day, start, end in cls.every_day(
                settings.calling_window_start, settings.calling_window_end, settings.calling_days
            ).hours
        }
        for item in settings.calling_hours_by_day:
            name, start, end = day_hours(item)
            hours[WEEKDAYS.index(name)] = (start, end)
        return cls(tuple((day, *hours[day]) for day in sorted(hours)))

    def local_hours(self, weekday: int) -> tuple[dt.time, dt.time] | None:
        """The hours of one weekday, or ``None`` when no calls are made that day."""
        for day, start, end in self.hours:
            if day == weekday:
                return start, end
        return None


def to_ms(instant: dt.datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    return int(instant.timestamp() * 1000)


def from_ms(instant_ms: int, zone: str = "UTC") -> dt.datetime:
    """Epoch milliseconds as an aware datetime in ``zone``."""
    return dt.datetime.fromtimestamp(instant_ms / 1000, tz=zone_info(zone))


@cache
def zone_info(zone: str) -> ZoneInfo:
    """The time zone named ``zone``, loaded once per process (``ZoneInfo`` itself keeps
    only the last 8 strongly: with Russia's 11 zones in turn it would read files again)."""
    return ZoneInfo(zone)


def effective_zones(zones: Sequence[str]) -> tuple[str, ...]:
    """The zones to respect: the region's own, or every Russian zone when unknown."""
    return tuple(zones) if zones else RUSSIAN_ZONES


def zone_windows(zone: str, policy: CallingPolicy, from_ms: int, until_ms: int) -> list[Interval]:
    """One zone's windows overlapping ``[from_ms, until_ms)``, ascending."""
    tz = zone_info(zone)
    first = from_ms_date(from_ms, tz) - dt.timedelta(days=1)
    last = from_ms_date(until_ms, tz) + dt.timedelta(days=1)
    windows = []
    day = first
    while day <= last:
        hours = policy.local_hours(day.weekday())
        if hours is not None:
            start = to_ms(dt.datetime.combine(day, hours[0], tzinfo=tz))
            end = to_ms(dt.datetime.combine(day, hours[1], tzinfo=tz))
            if end > from_ms and start < until_ms:
                windows.append(Interval(start, end))
        day += dt.timedelta(days=1)
    return windows


def from_ms_date(instant_ms: int, tz: ZoneInfo) -> dt.date:
    """The local date at ``instant_ms`` in ``tz``."""
    return dt.datetime.fromtimestamp(instant_ms / 1000, tz=tz).date()


def intersect(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """The spans covered by both ascending, non-overlapping lists."""
    result = []
    left = right = 0
    while left < len(first) and right < len(second):
        start = max(first[left].start_ms, second[right].start_ms)
        end = min(first[left].end_ms, second[right].end_ms)
        if start < end:
            result.append(Interval(start, end))
        if first[left].end_ms < second[right].end_ms:
            left += 1
        else:
            right += 1
    return result


def windows_between(
    zones: Sequence[str], policy: CallingPolicy, from_ms: int, until_ms: int
) -> list[Interval]:
    """The windows safe for all ``zones`` overlapping ``[from_ms, until_ms)``, ascending."""
    day = from_ms // DAY_MS
    last_day = until_ms // DAY_MS
    merged: list[Interval] = []
    while day <= last_day:
        for window in _cached_windows(effective_zones(zones), policy, day):
            if window.end_ms > from_ms and window.start_ms < until_ms and window not in merged:
                merged.append(window)
        day += CACHE_SPAN_DAYS
    return merged


@lru_cache(maxsize=4096)
def _cached_windows(zones: tuple[str, ...], policy: CallingPolicy, day: int) -> list[Interval]:
    """Windows for all ``zones`` over ``CACHE_SPAN_DAYS`` UTC days from ``day``."""
    from_ms = day * DAY_MS
    until_ms = from_ms + CACHE_SPAN_DAYS * DAY_MS
    common = zone_windows(zones[0], policy, from_ms, until_ms)
    for zone in zones[1:]:
        common = intersect(common, zone_windows(zone, policy, from_ms, until_ms))
    return common


def window_at(zones: Sequence[str], policy: CallingPolicy, instant_ms: int) -> Interval | None:
    """The window containing ``instant_ms``, or ``None`` when calls are not allowed then."""
    for window in windows_between(zones, policy, instant_ms, instant_ms + 1):
        if window.contains(instant_ms):
            return window
    return None


def is_open(zones: Sequence[str], policy: CallingPolicy, instant_ms: int) -> bool:
    """Whether a callee in ``zones`` may be called at ``instant_ms``."""
    return window_at(zones, policy, instant_ms) is not None


def upcoming_windows(
    zones: Sequence[str], policy: CallingPolicy, from_ms: int, count: int
) -> list[Interval]:
    """Up to ``count`` windows ending after ``from_ms`` (within the opening horizon)."""
    horizon = from_ms + OPENING_HORIZON_DAYS * DAY_MS
    return windows_between(zones, policy, from_ms, horizon)[:count]


def next_opening(zones: Sequence[str], policy: CallingPolicy, instant_ms: int) -> int | None:
    """``instant_ms`` if open then, else the start of the next window (``None``: none soon)."""
    return fit_into_windows(instant_ms, upcoming_windows(zones, policy, instant_ms, 1))


def fit_into_windows(target_ms: int, windows: Sequence[Interval]) -> int | None:
    """The first instant at or after ``target_ms`` inside one of ``windows`` (ascending).

    Mirrors ``fit_into_windows`` of ``lua/includes/outcome.lua`` (which keeps the target
    when no window follows it, where this returns ``None``).
    """
    for window in windows:
        if target_ms < window.end_ms:
            return max(target_ms, window.start_ms)
    return None


def open_regions(
    region_zones: Mapping[str, Sequence[str]], policy: CallingPolicy, instant_ms: int
) -> dict[str, Interval]:
    """The regions open at ``instant_ms``, each with the window it is in."""
    open_now = {}
    for region, zones in region_zones.items():
        window = window_at(zones, policy, instant_ms)
        if window is not None:
            open_now[region] = window
    return open_now
