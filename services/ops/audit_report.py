"""The audit's verdict: counts per state and region, every violation (numbers masked), and
its two forms, text for operators and JSON for machines (schema in docs/audit.md).

The JSON keys are stable: ``version`` changes if one is renamed or removed. Every
violation kind of :data:`VIOLATION_KINDS` is always present in ``violations.by_kind``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from phonebank.domain.records import masked

#: version of the JSON document
JSON_VERSION = 1
#: the states a number can be in, in output order (``lost`` is a violation)
STATES = ("backlog", "ready", "due", "leased", "done", "dnc", "retired", "parked", "lost")
#: what each violation kind means (docs/audit.md repeats it)
VIOLATION_KINDS = {
    "lost": "queued once (seen by the assigner) and now in no state",
    "two_states": "in two places at once (two queues, or finished and still queued/leased)",
    "unknown_number": "in Redis or in the events but not in the numbers topic",
    "wrong_region": "queued in another region than the one it was ingested for",
    "counters": "a region's counters do not add up to its queues",
    "double_lease": "two live leases on one number",
    "overlapping_leases": "a lease granted while another lease of the number still held it",
    "leased_after_dnc": "a lease granted after the number became do-not-call",
    "leased_after_finish": "a lease granted after the number was finished (done/retired)",
    "outside_window": "a lease granted (or running) outside its region's calling window",
    "missing_event": "an ended lease whose outcome event is neither in Kafka nor in the stream",
    "dead_letter": "outcome stream entries dead-lettered (or about to be): never in Kafka",
    "reporter_mismatch": "the reporter's checkpointed totals differ from the events",
    "ingested_mismatch": "a region's ingested count differs from the numbers topic",
}
#: violations printed per kind in the text form (the JSON has them all)
TEXT_VIOLATIONS_PER_KIND = 20
#: exit codes
EXIT_CLEAN = 0
EXIT_VIOLATIONS = 1


@dataclass(frozen=True)
class Violation:
    """One broken invariant; ``number`` is masked on output."""

    kind: str
    region: str
    number: int | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form (number masked)."""
        number = masked(self.number) if self.number is not None else None
        return {"kind": self.kind, "region": self.region, "number": number, "detail": self.detail}


@dataclass
class AuditReport:
    """Everything the audit found."""

    campaign: str
    states: dict[str, dict[str, int]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    leases: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    reporter: dict[str, Any] = field(default_factory=dict)
    as_of_ms: int = 0
    seconds: float = 0.0

    def add(self, violation: Violation) -> None:
        """Record one violation."""
        if violation.kind not in VIOLATION_KINDS:
            raise ValueError(f"unknown violation kind {violation.kind!r}")
        self.violations.append(violation)

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return not self.violations

    def by_kind(self) -> dict[str, int]:
        """Violations per kind, every kind present."""
        found = Counter(v.kind for v in self.violations)
        return {kind: found.get(kind, 0) for kind in VIOLATION_KINDS}

    def totals(self) -> dict[str, int]:
        """Numbers per state over every region."""
        return {s: sum(row.get(s, 0) for row in self.states.values()) for s in STATES}

    def to_json(self) -> dict[str, Any]:
        """The JSON document of docs/audit.md."""
        return {
            "version": JSON_VERSION,
            "campaign": self.campaign,
            "ok": self.ok,
            "as_of_ms": self.as_of_ms,
            "seconds": round(self.seconds, 3),
            "numbers": self.numbers,
            "states": {"total": self.totals(), "regions": self.states},
            "events": self.events,
            "leases": self.leases,
            "dead_letters": {
                "total": sum(self.dead_letters.values()),
                "regions": self.dead_letters,
            },
            "reporter": self.reporter,
            "violations": {
                "total": len(self.violations),
                "by_kind": self.by_kind(),
                "items": [v.to_json() for v in self.violations],
            },
        }

    def to_text(self, per_kind: int | None = TEXT_VIOLATIONS_PER_KIND) -> str:
        """The operator's form: a table of states, then the violations (at most
        ``per_kind`` of each kind; None: every one)."""
        lines = [f"audit of campaign {self.campaign}: {'OK' if self.ok else 'VIOLATIONS'}"]
        header = ["region", *STATES]
        rows = [
            [region, *(str(row.get(s, 0)) for s in STATES)]
            for region, row in sorted(self.states.items())
        ]
        rows.append(["total", *(str(v) for v in self.totals().values())])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines += [
            "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
        ]
        lines.append(
            f"events: {self.events}; leases: {self.leases}; dead letters: "
            f"{sum(self.dead_letters.values())}; reporter: {self.reporter}"
        )
        lines += self._violation_lines(per_kind)
        lines.append(f"{len(self.violations)} violation(s) in {self.seconds:.1f} s")
        return "\n".join(lines)

    def _violation_lines(self, per_kind: int | None) -> list[str]:
        lines = []
        for kind, count in self.by_kind().items():
            if not count:
                continue
            lines.append(f"{kind} ({count}): {VIOLATION_KINDS[kind]}")
            items = [v for v in self.violations if v.kind == kind]
            for violation in items[:per_kind]:
                item = violation.to_json()
                lines.append(f"  {item['region']} {item['number'] or '-'}: {item['detail']}")
            if per_kind is not None and count > per_kind:
                lines.append(f"  … and {count - per_kind} more (--all, or --json)")
        return lines


def print_report(report: AuditReport, args: argparse.Namespace) -> int:
    """Print the report in the asked form; the exit code."""
    if args.json:
        json.dump(report.to_json(), sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(report.to_text(None if args.all else TEXT_VIOLATIONS_PER_KIND))
    return EXIT_CLEAN if report.ok else EXIT_VIOLATIONS
