"""A lease client's calendar: every campaign region's calling windows, computed ahead.

The lease path asks three calendar questions on every call: which regions are open now
(acquire), the window a lease is in (renew) and the next windows of a region (complete,
to schedule retries). Answering them from :mod:`phonebank.domain.calling_hours` each time
walks time zones per region; here each region's windows over the next
:data:`CALENDAR_SPAN_MS` are computed once and bisected, and the set of open regions is
kept until the next instant any region opens or closes. Questions outside the computed
span fall through to :mod:`phonebank.domain.calling_hours` (same answers, slower).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from phonebank.domain.calling_hours import (
    OPENING_HORIZON_DAYS,
    CallingPolicy,
    Interval,
    fit_into_windows,
    upcoming_windows,
    windows_between,
)
from phonebank.domain.clock import DAY_MS

#: milliseconds before the computing instant still covered (clients anchor retry
#: schedules up to an hour back, for clock skew)
CALENDAR_PAST_MS = DAY_MS
#: milliseconds of windows computed ahead: the opening horizon plus a day of slack
CALENDAR_SPAN_MS = (OPENING_HORIZON_DAYS + 1) * DAY_MS
#: milliseconds a computed calendar is used before it is computed again
CALENDAR_REFRESH_MS = DAY_MS


@dataclass(frozen=True)
class _Computed:
    """Windows of every region over ``[from_ms, until_ms)``, ascending."""

    from_ms: int
    until_ms: int
    windows: dict[str, list[Interval]]
    #: per region, the end of each window (bisect keys)
    ends: dict[str, list[int]]


@dataclass(frozen=True)
class _OpenSet:
    """The regions open throughout ``[from_ms, until_ms)``, each with its window."""

    from_ms: int
    until_ms: int
    regions: dict[str, Interval]


class CallingCalendar:
    """Calling windows of a fixed set of regions; thread-safe (snapshots are replaced
    whole, never changed)."""

    def __init__(self, region_zones: Mapping[str, Sequence[str]], policy: CallingPolicy) -> None:
        #: in code order, which is the order of :meth:`open_now`
        self._region_zones = {code: tuple(region_zones[code]) for code in sorted(region_zones)}
        self._policy = policy
        self._computed = _Computed(0, 0, {}, {})
        self._open = _OpenSet(0, 0, {})

    def open_now(self, now_ms: int) -> Mapping[str, Interval]:
        """Every region open at ``now_ms``, with the window it is in (do not modify)."""
        current = self._open
        if current.from_ms <= now_ms < current.until_ms:
            return current.regions
        computed = self._covering(now_ms)
        regions: dict[str, Interval] = {}
        until = computed.until_ms
        for region, ends in computed.ends.items():
            windows = computed.windows[region]
            index = bisect.bisect_right(ends, now_ms)
            if index == len(windows):
                continue
            window = windows[index]
            if window.start_ms <= now_ms:
                regions[region] = window
                until = min(until, window.end_ms)
            else:
                until = min(until, window.start_ms)
        self._open = _OpenSet(now_ms, until, regions)
        return regions

    def window_at(self, region: str, now_ms: int) -> Interval | None:
        """The window of ``region`` containing ``now_ms``, or ``None`` when closed."""
        self._covering(now_ms)
        for window in self.upcoming(region, now_ms, 1):
            return window if window.start_ms <= now_ms else None
        return None

    def upcoming(self, region: str, from_ms: int, count: int) -> list[Interval]:
        """Up to ``count`` windows of ``region`` ending after ``from_ms`` and starting
        within the opening horizon, ascending (:func:`calling_hours.upcoming_windows`)."""
        computed = self._computed  # never recomputed for a past or future anchor
        horizon = from_ms + OPENING_HORIZON_DAYS * DAY_MS
        if not computed.from_ms <= from_ms or horizon > computed.until_ms:
            return upcoming_windows(self._region_zones[region], self._policy, from_ms, count)
        index = bisect.bisect_right(computed.ends[region], from_ms)
        found = computed.windows[region][index : index + count]
        return [window for window in found if window.start_ms < horizon]

    def next_opening(self, regions: Collection[str], now_ms: int) -> int | None:
        """The first instant at or after ``now_ms`` any of ``regions`` is open (``None``:
        not within the opening horizon)."""
        openings = [
            fit_into_windows(now_ms, self.upcoming(region, now_ms, 1)) for region in regions
        ]
        known = [opening for opening in openings if opening is not None]
        return min(known) if known else None

    def _covering(self, now_ms: int) -> _Computed:
        """The computed windows, first recomputed when ``now_ms`` is past their refresh."""
        computed = self._computed
        if (
            computed.from_ms + CALENDAR_PAST_MS
            <= now_ms
            < (computed.from_ms + CALENDAR_PAST_MS + CALENDAR_REFRESH_MS)
        ):
            return computed
        from_ms = now_ms - CALENDAR_PAST_MS
        until_ms = now_ms + CALENDAR_SPAN_MS
        windows = {
            region: windows_between(zones, self._policy, from_ms, until_ms)
            for region, zones in self._region_zones.items()
        }
        ends = {region: [window.end_ms for window in found] for region, found in windows.items()}
        computed = _Computed(from_ms, until_ms, windows, ends)
        self._computed = computed
        return computed
