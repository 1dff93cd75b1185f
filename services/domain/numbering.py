"""The numbering plan: which region every allocated Russian number belongs to.

Loads Rossvyaz registry CSVs (the DEF mobile and ABC landline files: semicolon
separated, UTF-8 with BOM — or the older cp1251 —, 7 or 8 columns, header optional)
into one sorted range table and looks numbers up in bulk with ``numpy.searchsorted``.
A loaded registry is authoritative for the leading digits it contains (9 for the DEF
file; 3, 4, 8 for the ABC file); landlines whose leading digit no file covers fall back
to libphonenumber's geocoding prefixes (:mod:`phonebank.domain.landline`).

Region indexes in the arrays are positions in :data:`REGION_CODES`, the same in every
plan and process.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt

from phonebank.domain.landline import landline_ranges
from phonebank.domain.region_names import region_code
from phonebank.domain.regions import REGIONS, UNKNOWN

log = logging.getLogger(__name__)

#: Every region code; a region's index in plan arrays is its position here.
REGION_CODES: tuple[str, ...] = tuple(REGIONS)
#: Region index meaning "no range holds this number".
NO_REGION = -1
#: The shipped fixture registry (package data).
FIXTURE_NAME = "numbering-plan-fixture.csv"
#: Digits of the subscriber part of a range bound (From/To columns).
SUBSCRIBER_DIGITS = 7

Int64Array = npt.NDArray[np.int64]
Int16Array = npt.NDArray[np.int16]

_INDEX = {code: index for index, code in enumerate(REGION_CODES)}


class NumberingPlanError(ValueError):
    """A registry file cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class RangeTable:
    """Sorted, non-overlapping ranges: ``starts[i]..ends[i]`` (inclusive) → ``regions[i]``."""

    starts: Int64Array
    ends: Int64Array
    regions: Int16Array

    @classmethod
    def build(cls, rows: Sequence[tuple[int, int, str]], origin: str) -> RangeTable:
        """Sort ``(start, end, code)`` rows, drop exact repeats, refuse overlaps."""
        unique = sorted(set(rows))
        for (_, end, _), (start, _, _) in pairwise(unique):
            if start <= end:
                raise NumberingPlanError(f"{origin}: overlapping ranges at +7{start}")
        return cls(
            np.array([row[0] for row in unique], dtype=np.int64),
            np.array([row[1] for row in unique], dtype=np.int64),
            np.array([_INDEX[row[2]] for row in unique], dtype=np.int16),
        )

    def lookup(self, nationals: Int64Array) -> Int16Array:
        """Region index of each number, :data:`NO_REGION` where no range holds it."""
        if len(self.starts) == 0:
            return np.full(len(nationals), NO_REGION, dtype=np.int16)
        position = np.searchsorted(self.starts, nationals, side="right") - 1
        clipped = np.maximum(position, 0)
        inside = (position >= 0) & (nationals <= self.ends[clipped])
        return np.where(inside, self.regions[clipped], np.int16(NO_REGION)).astype(np.int16)

    @property
    def capacities(self) -> Int64Array:
        """Numbers in each range."""
        return self.ends - self.starts + 1


class NumberingPlan:
    """Registry ranges plus the landline fallback; bulk and single-number lookup."""

    def __init__(self, registry: RangeTable, origin: str) -> None:
        self.registry = registry
        self.origin = origin
        leading = {int(str(start)[0]) for start in registry.starts.tolist()}
        #: Leading national digits the registry is authoritative for.
        self.registry_leading_digits = frozenset(leading)
        fallback = [row for row in landline_ranges() if int(str(row[0])[0]) not in leading]
        self.fallback = RangeTable.build(fallback, "libphonenumber geocoding")

    @classmethod
    def load(cls, paths: Sequence[Path]) -> NumberingPlan:
        """Read one or more registry files into one plan."""
        rows: list[tuple[int, int, str]] = []
        for path in paths:
            rows.extend(read_registry(path.read_bytes(), str(path)))
        origin = ", ".join(str(path) for path in paths)
        return cls(RangeTable.build(rows, origin), origin)

    @classmethod
    def default(cls) -> NumberingPlan:
        """The small fixture registry shipped with phonebank (tests and demos)."""
        data = resources.files("phonebank.domain.data").joinpath(FIXTURE_NAME).read_bytes()
        return cls(
            RangeTable.build(list(read_registry(data, FIXTURE_NAME)), FIXTURE_NAME), FIXTURE_NAME
        )

    @classmethod
    def from_settings(cls, numbering_plan: Sequence[str]) -> NumberingPlan:
        """The plan of ``Settings.numbering_plan``: those files, or the fixture if none."""
        if not numbering_plan:
            return cls.default()
        return cls.load([Path(path) for path in numbering_plan])

    def region_index(self, nationals: Int64Array) -> Int16Array:
        """Region index per number (registry first, then the landline fallback)."""
        found = self.registry.lookup(nationals)
        missing = found == NO_REGION
        if missing.any() and len(self.fallback.starts):
            found[missing] = self.fallback.lookup(nationals[missing])
        return found

    def region_of(self, national: int) -> str | None:
        """The region code of one national number, or None where it is unallocated."""
        index = int(self.region_index(np.array([national], dtype=np.int64))[0])
        return None if index == NO_REGION else REGION_CODES[index]

    def regions(self) -> list[str]:
        """Codes of the regions the registry ranges cover, sorted."""
        return sorted({REGION_CODES[i] for i in np.unique(self.registry.regions).tolist()})

    def capacity_by_region(self) -> dict[str, int]:
        """Allocated registry numbers per region code."""
        totals = np.bincount(
            self.registry.regions, weights=self.registry.capacities, minlength=len(REGION_CODES)
        )
        return {REGION_CODES[i]: int(totals[i]) for i in np.flatnonzero(totals).tolist()}

    def ranges_of(self, region: str) -> tuple[Int64Array, Int64Array]:
        """Starts and capacities of one region's registry ranges, sorted by start."""
        chosen = self.registry.regions == _INDEX[region]
        return self.registry.starts[chosen], self.registry.capacities[chosen]

    def random_allocated(self, rng: np.random.Generator, count: int) -> Int64Array:
        """``count`` numbers drawn uniformly (with replacement) from all registry ranges."""
        bounds = np.cumsum(self.registry.capacities)
        draws = rng.integers(0, int(bounds[-1]), size=count, dtype=np.int64)
        which = np.searchsorted(bounds, draws, side="right")
        before = bounds[which] - self.registry.capacities[which]
        return self.registry.starts[which] + (draws - before)


def _decode(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("%s is not UTF-8; reading it as cp1251", origin)
        return data.decode("cp1251")


def read_registry(data: bytes, origin: str) -> Iterator[tuple[int, int, str]]:
    """``(first, last, region code)`` per range of one registry file's bytes."""
    rows = csv.reader(io.StringIO(_decode(data, origin)), delimiter=";")
    unknown: dict[str, int] = {}
    for line, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if line == 1 and not row[0].strip().isdigit():
            continue  # the header
        first, last, code = _parse_row(row, f"{origin}:{line}")
        if code is None:
            unknown[row[5]] = unknown.get(row[5], 0) + 1
            code = UNKNOWN
        yield first, last, code
    for spelling, count in unknown.items():
        log.warning(
            "%s: unknown region %r on %d ranges, filed as %s", origin, spelling, count, UNKNOWN
        )


def _parse_row(row: list[str], where: str) -> tuple[int, int, str | None]:
    if len(row) < 6:
        raise NumberingPlanError(f"{where}: {len(row)} columns, want 7 or 8")
    prefix, low, high = (cell.strip() for cell in row[:3])
    if not (prefix.isdigit() and low.isdigit() and high.isdigit()) or len(prefix) != 3:
        raise NumberingPlanError(f"{where}: bad range {prefix};{low};{high}")
    if len(low) > SUBSCRIBER_DIGITS or len(high) > SUBSCRIBER_DIGITS or int(low) > int(high):
        raise NumberingPlanError(f"{where}: bad range {prefix};{low};{high}")
    base = int(prefix) * 10**SUBSCRIBER_DIGITS
    territory = row[6] if len(row) >= 8 else ""
    return base + int(low), base + int(high), region_code(row[5], territory)
