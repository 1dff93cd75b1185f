"""What the demo prints: a progress line while calling, and the final coverage table.

Both are drawn from the reporter's ``/report.json``; :func:`tally_matches` checks the
reporter's per-region outcome counts against what the simulated volunteers did.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from phonebank.domain.records import Outcome
from phonebank.local.simulated_volunteers import Tally

#: characters of the coverage bar at 100 %
BAR_WIDTH = 20
#: regions shown in the final table at most (the report page shows them all)
TABLE_ROWS = 40


def progress_line(elapsed: float, tally: Tally, report: dict[str, Any]) -> str:
    """One status line: time, leases, calls done, what the reporter has counted."""
    totals = report["totals"]
    return (
        f"{elapsed:5.0f}s  leases {tally.leases:,}  completed {tally.completed:,}  "
        f"reporter: calls {totals['calls']:,}  attempted {totals['attempted']:,}/"
        f"{totals['ingested']:,}  reached {totals['reached']:,}  "
        f"dnc {totals['do_not_call']:,}  idle {tally.idle}  closed {tally.closed}   "
    )


def final_table(report: dict[str, Any]) -> str:
    """The coverage table per region, as the reporter computed it."""
    header = (
        f"{'region':<12} {'name':<34} {'ingested':>9} {'attempted':>9} "
        f"{'coverage':>8} {'reached':>8} {'talks':>6} {'dnc':>4}  bar"
    )
    lines = [header, "-" * len(header)]
    for row in report["regions"][:TABLE_ROWS]:
        bar = "#" * round(row["coverage_ratio"] * BAR_WIDTH)
        lines.append(
            f"{row['code']:<12} {row['name'][:34]:<34} {row['ingested']:>9,} "
            f"{row['attempted']:>9,} {row['coverage_ratio']:>8.2%} {row['reached']:>8,} "
            f"{row['conversations']:>6,} {row['do_not_call']:>4,}  {bar}"
        )
    hidden = len(report["regions"]) - TABLE_ROWS
    if hidden > 0:
        lines.append(f"… and {hidden} more regions on the report page")
    totals = report["totals"]
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<12} {'':<34} {totals['ingested']:>9,} {totals['attempted']:>9,} "
        f"{totals['coverage_ratio']:>8.2%} {totals['reached']:>8,} "
        f"{totals['conversations']:>6,} {totals['do_not_call']:>4,}"
    )
    return "\n".join(lines)


def reported_outcomes(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    """``(region, outcome) → count`` of volunteer outcomes (not reaper expiries)."""
    counts = {}
    for row in report["regions"]:
        for outcome, count in row["outcomes"].items():
            if outcome != Outcome.EXPIRED and count:
                counts[(row["code"], outcome)] = int(count)
    return counts


def tally_matches(report: dict[str, Any], tally: Tally, extra: int = 0) -> bool:
    """Whether the reporter counted every outcome the simulated volunteers recorded, and
    besides them at most ``extra`` outcomes (a person's, from the volunteer page)."""
    with tally.lock:
        done = Counter({key: count for key, count in tally.outcomes.items() if count})
    reported = Counter(reported_outcomes(report))
    missing = done - reported
    beyond = reported - done
    return not missing and sum(beyond.values()) <= extra
