"""The chaos table: scenario × what the audit counted, one row per scenario."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields


@dataclass(frozen=True)
class Row:
    """What one scenario's audit found (0 everywhere is the only passing row, except the
    columns the README documents as lost for good on Redis loss)."""

    scenario: str
    #: distinct numbers the audit found in the numbers topic, and outcome events in Kafka
    numbers: int
    events: int
    numbers_lost: int
    double_leases: int
    grants_after_dnc: int
    grants_outside_window: int
    outcome_events_lost: int
    reporter_mismatch: int
    other_violations: int
    #: answers a volunteer gave that the gateway refused to record
    answers_refused: int
    #: Redis loss only, as the README states: events not yet relayed when Redis was lost,
    #: and answers refused on leases that were live then
    lost_for_good_documented: int
    seconds: float


#: rows of the scenarios run in this session, in order
ROWS: list[Row] = []


def render(rows: list[Row]) -> str:
    """A Markdown table of ``rows``."""
    names = [field.name.replace("_", " ") for field in fields(Row)]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = [f"{v:.0f}" if isinstance(v, float) else str(v) for v in astuple(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
