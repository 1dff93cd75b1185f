"""What an ingest run writes about lines: the dry-run JSON Lines, the rejects file, tallies.

Dry-run contract (other tools depend on it), one object per input line, empty lines
included, in input order::

    {"source": str, "line": int (1-based), "status": "accepted"|"duplicate"|"rejected",
     "reason": str|null, "e164": str|null, "region": str|null, "tz": str|null}

``reason`` is null unless rejected. ``e164`` is set wherever the line is a well-formed
+7 number (also when rejected as not_ru, non_personal, unallocated or excluded_region).
``region`` is set where the plan places the number; ``tz`` is its IANA zone, or null
where the region spans several zones.

Rejects file: one line per rejected input line, ``source<TAB>line<TAB>reason<TAB>
original`` (the original bytes, cut at the source's line cap).
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO, TextIO

import numpy as np

from phonebank.domain.normalize import REASONS, line_bounds
from phonebank.domain.numbering import NO_REGION, REGION_CODES
from phonebank.domain.regions import REGIONS
from phonebank.ingest.classify import REJECTED, STATUSES, ClassifiedBlock
from phonebank.ingest.sources import MAX_LINE_BYTES, Block

_REGION_FIELDS = [
    f'"region": {json.dumps(code)}, "tz": {json.dumps(REGIONS[code].zone)}' for code in REGION_CODES
]
_NO_REGION_FIELDS = '"region": null, "tz": null'
_STATUS_FIELDS = [f'"status": "{status}"' for status in STATUSES]
_REASON_FIELDS = ['"reason": null', *(f'"reason": "{reason}"' for reason in REASONS[1:])]


class Tally:
    """Line counts of a run by status, reason (rejected) and region (accepted)."""

    def __init__(self) -> None:
        self.status = np.zeros(len(STATUSES), dtype=np.int64)
        self.reason = np.zeros(len(REASONS), dtype=np.int64)
        self.region = np.zeros(len(REGION_CODES), dtype=np.int64)

    def add(self, result: ClassifiedBlock) -> None:
        """Count one classified block."""
        self.status += np.bincount(result.status, minlength=len(STATUSES))
        rejected = result.status == REJECTED
        self.reason += np.bincount(result.reason[rejected], minlength=len(REASONS))
        accepted = result.status == 0
        self.region += np.bincount(result.region[accepted], minlength=len(REGION_CODES))

    def merge(self, other: Tally) -> None:
        """Add another tally's counts."""
        self.status += other.status
        self.reason += other.reason
        self.region += other.region

    @property
    def lines(self) -> int:
        """Lines counted."""
        return int(self.status.sum())

    def to_dict(self) -> dict[str, Any]:
        """Counts as JSON-ready dicts (zero entries left out of reasons and regions)."""
        counts: dict[str, Any] = {"lines": self.lines}
        counts.update({name: int(n) for name, n in zip(STATUSES, self.status, strict=True)})
        counts["reasons"] = {REASONS[i]: int(n) for i, n in enumerate(self.reason) if n}
        counts["regions"] = {REGION_CODES[i]: int(n) for i, n in enumerate(self.region) if n}
        return counts

    @classmethod
    def from_dict(cls, counts: dict[str, Any]) -> Tally:
        """The tally :meth:`to_dict` wrote (for resuming)."""
        tally = cls()
        for i, name in enumerate(STATUSES):
            tally.status[i] = counts.get(name, 0)
        for name, n in counts.get("reasons", {}).items():
            tally.reason[REASONS.index(name)] = n
        for code, n in counts.get("regions", {}).items():
            tally.region[REGION_CODES.index(code)] = n
        return tally


def write_dry_run(out: TextIO, source: str, block: Block, result: ClassifiedBlock) -> None:
    """One JSON object per line of the block (the dry-run contract above)."""
    prefix = f'{{"source": {json.dumps(source, ensure_ascii=False)}, "line": '
    lines = []
    for line, status, reason, national, region in zip(
        block.line_numbers.tolist(),
        result.status.tolist(),
        result.reason.tolist(),
        result.national.tolist(),
        result.region.tolist(),
        strict=True,
    ):
        e164 = f'"+7{national}"' if national else "null"
        place = _NO_REGION_FIELDS if region == NO_REGION else _REGION_FIELDS[region]
        lines.append(
            f"{prefix}{line}, {_STATUS_FIELDS[status]}, {_REASON_FIELDS[reason]}, "
            f'"e164": {e164}, {place}}}\n'
        )
    out.write("".join(lines))


def write_rejects(out: BinaryIO, source: str, block: Block, result: ClassifiedBlock) -> None:
    """One ``source<TAB>line<TAB>reason<TAB>original`` line per rejected line."""
    rejected = np.flatnonzero(result.status == REJECTED)
    if len(rejected) == 0:
        return
    starts, ends = line_bounds(block.data)
    name = source.encode("utf-8", errors="replace")
    rows = []
    for i in rejected.tolist():
        original = block.data[starts[i] : min(ends[i], starts[i] + MAX_LINE_BYTES)].rstrip(b"\r")
        reason = REASONS[result.reason[i]].encode()
        rows.append(b"%s\t%d\t%s\t%s\n" % (name, block.line_numbers[i], reason, original))
    out.write(b"".join(rows))
