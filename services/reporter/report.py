"""The coverage report: the aggregator's tallies turned into the ``/report.json`` document.

:func:`build_report` is pure (the caller passes the ingested counts read from Redis, the
active-volunteer counts and the time), so tests can check it with known answers. The
HTML page and the demo's final table are both drawn from this one document.

Rates use the trailing window: the last 24 hours, or less while the campaign is younger
(from the first event seen), never less than one minute. Projected days to full coverage
are the numbers still never called divided by the daily rate of first calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phonebank.domain.clock import DAY_MS, HOUR_MS, MINUTE_MS
from phonebank.domain.records import Outcome
from phonebank.domain.regions import REGIONS
from phonebank.reporter.aggregate import (
    ATTEMPTS_BUCKET_CAP,
    NOT_CALLS,
    Aggregator,
    RegionTally,
)

#: milliseconds in the trailing window the rates are measured over (24 hours)
RATE_WINDOW_MS = 24 * HOUR_MS
#: milliseconds below which the window is not shortened further (one minute)
MIN_RATE_WINDOW_MS = MINUTE_MS
#: hours of calls-per-hour history in the report (the chart's width)
CHART_HOURS = 48
#: digits ratios are rounded to in the report
RATIO_DIGITS = 4


@dataclass(frozen=True)
class ReportInputs:
    """What the report needs besides the aggregator, read by the service at request time."""

    campaign: str
    now_ms: int
    ingested: Mapping[str, int]
    volunteers_active_15m: int = 0
    volunteers_active_24h: int = 0


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, RATIO_DIGITS) if whole > 0 else 0.0


def _iso(epoch_ms: int) -> str | None:
    if not epoch_ms:
        return None
    stamp = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def rate_window_ms(aggregator: Aggregator, now_ms: int) -> int:
    """The length of the trailing window rates are measured over."""
    age = now_ms - aggregator.first_event_ms if aggregator.first_event_ms else RATE_WINDOW_MS
    return max(MIN_RATE_WINDOW_MS, min(RATE_WINDOW_MS, age))


def _in_window(by_hour: Mapping[int, int], now_ms: int, window_ms: int) -> int:
    first_hour = (now_ms - window_ms) // HOUR_MS
    return sum(n for hour, n in by_hour.items() if hour >= first_hour)


def _projection(
    ingested: int, attempted: int, first_calls: int, window_ms: int
) -> tuple[float, float | None]:
    """(first calls per day, projected days to full coverage); days None if unknowable."""
    per_day = first_calls * DAY_MS / window_ms
    remaining = ingested - attempted
    if ingested <= 0:
        return round(per_day, 2), None
    if remaining <= 0:
        return round(per_day, 2), 0.0
    return round(per_day, 2), (round(remaining / per_day, 1) if per_day > 0 else None)


def _region_row(
    code: str, tally: RegionTally, ingested: int, now_ms: int, window_ms: int
) -> dict[str, Any]:
    region = REGIONS.get(code)
    calls = tally.calls
    first_calls = _in_window(tally.first_calls_by_hour, now_ms, window_ms)
    per_day, days = _projection(ingested, tally.attempted, first_calls, window_ms)
    return {
        "code": code,
        "name": region.name if region else code,
        "name_ru": region.name_ru if region else code,
        "ingested": ingested,
        "attempted": tally.attempted,
        "reached": tally.reached,
        "conversations": tally.conversations,
        "do_not_call": tally.do_not_call,
        "retired": tally.retired,
        "parked": tally.parked,
        "calls": calls,
        "coverage_ratio": _ratio(tally.attempted, ingested),
        "reach_ratio": _ratio(tally.reached, tally.attempted),
        "outcomes": dict(sorted(tally.outcomes.items())),
        "first_calls_per_day": per_day,
        "projected_days": days,
    }


_TOTAL_FIELDS = (
    "ingested",
    "attempted",
    "reached",
    "conversations",
    "do_not_call",
    "retired",
    "parked",
    "calls",
)


def _totals(
    rows: list[dict[str, Any]], aggregator: Aggregator, inputs: ReportInputs, window_ms: int
) -> dict[str, Any]:
    totals: dict[str, Any] = {name: sum(row[name] for row in rows) for name in _TOTAL_FIELDS}
    calls_by_hour = {
        hour: sum(n for o, n in counts.items() if o not in NOT_CALLS)
        for hour, counts in aggregator.outcomes_by_hour.items()
    }
    first_calls = sum(
        _in_window(t.first_calls_by_hour, inputs.now_ms, window_ms)
        for t in aggregator.regions.values()
    )
    per_day, days = _projection(totals["ingested"], totals["attempted"], first_calls, window_ms)
    totals.update(
        coverage_ratio=_ratio(totals["attempted"], totals["ingested"]),
        reach_ratio=_ratio(totals["reached"], totals["attempted"]),
        calls_per_hour=round(
            _in_window(calls_by_hour, inputs.now_ms, window_ms) * HOUR_MS / window_ms, 2
        ),
        first_calls_per_day=per_day,
        projected_days=days,
        volunteers_active_15m=inputs.volunteers_active_15m,
        volunteers_active_24h=inputs.volunteers_active_24h,
    )
    return totals


def _attempts_distribution(aggregator: Aggregator) -> dict[str, int]:
    counts = [0] * (ATTEMPTS_BUCKET_CAP + 1)
    for tally in aggregator.regions.values():
        for calls, numbers in enumerate(tally.calls_histogram):
            counts[calls] += numbers
    labels = [str(k) for k in range(1, ATTEMPTS_BUCKET_CAP)] + [f"{ATTEMPTS_BUCKET_CAP}+"]
    return dict(zip(labels, counts[1:], strict=True))


def _guidelines(aggregator: Aggregator) -> list[dict[str, Any]]:
    rows = []
    for guideline, counts in sorted(aggregator.guidelines.items()):
        calls = sum(n for outcome, n in counts.items() if outcome not in NOT_CALLS)
        rows.append(
            {
                "guideline": guideline,
                "calls": calls,
                "outcomes": dict(sorted(counts.items())),
                "rates": {
                    o: _ratio(n, calls) for o, n in sorted(counts.items()) if o not in NOT_CALLS
                },
            }
        )
    return rows


def _calls_by_hour(aggregator: Aggregator, now_ms: int) -> list[dict[str, Any]]:
    last_hour = max(now_ms, aggregator.last_event_ms) // HOUR_MS
    series = []
    for hour in range(last_hour - CHART_HOURS + 1, last_hour + 1):
        counts = aggregator.outcomes_by_hour.get(hour, {})
        series.append(
            {
                "hour_start": _iso(hour * HOUR_MS),
                "calls": sum(n for o, n in counts.items() if o not in NOT_CALLS),
                "outcomes": dict(sorted(counts.items())),
            }
        )
    return series


def build_report(aggregator: Aggregator, inputs: ReportInputs) -> dict[str, Any]:
    """The ``/report.json`` document (see docs/metrics.md for its place among the outputs)."""
    window_ms = rate_window_ms(aggregator, inputs.now_ms)
    codes = sorted(set(aggregator.regions) | {c for c, n in inputs.ingested.items() if n})
    rows = [
        _region_row(
            code,
            aggregator.regions.get(code) or RegionTally(),
            int(inputs.ingested.get(code, 0)),
            inputs.now_ms,
            window_ms,
        )
        for code in codes
    ]
    rows.sort(key=lambda row: (-row["coverage_ratio"], -row["attempted"], row["code"]))
    outcomes = {
        o.value: sum(t.outcomes.get(o, 0) for t in aggregator.regions.values()) for o in Outcome
    }
    return {
        "campaign": inputs.campaign,
        "generated_at": _iso(inputs.now_ms),
        "last_event_at": _iso(aggregator.last_event_ms),
        "rate_window_seconds": window_ms // 1000,
        "totals": _totals(rows, aggregator, inputs, window_ms),
        "outcomes": outcomes,
        "regions": rows,
        "attempts_per_number": _attempts_distribution(aggregator),
        "guidelines": _guidelines(aggregator),
        "calls_by_hour": _calls_by_hour(aggregator, inputs.now_ms),
        "events": {"applied": aggregator.applied, "duplicates": aggregator.duplicates},
    }
