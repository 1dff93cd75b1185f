"""Classify blocks of lines: accepted (with region), duplicate, or rejected with a reason.

Builds on the bulk normaliser (:mod:`phonebank.domain.normalize`) and the numbering plan:
a normalised candidate without a range is ``unallocated``, one outside the campaign's
regions ``excluded_region``, and an acceptable number already accepted earlier in this
run a ``duplicate``. Only acceptable numbers take part in dedupe, so a repeated bad
line is rejected each time with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from phonebank.domain.normalize import (
    EXCLUDED_REGION,
    OK,
    UNALLOCATED,
    UNPARSEABLE,
    normalize_block,
)
from phonebank.domain.numbering import NO_REGION, REGION_CODES, NumberingPlan

#: Status codes per line.
ACCEPTED, DUPLICATE, REJECTED = 0, 1, 2
#: Status names, indexed by status code.
STATUSES = ("accepted", "duplicate", "rejected")
#: Digits of the subscriber part below a dedupe page's 3-digit prefix.
PAGE_DIGITS = 7
#: bytes in one dedupe page: one bit per subscriber number of a 3-digit prefix (1.25 MB)
PAGE_BYTES = 10**PAGE_DIGITS // 8

Int64Array = npt.NDArray[np.int64]
UInt8Array = npt.NDArray[np.uint8]
Int16Array = npt.NDArray[np.int16]
BoolArray = npt.NDArray[np.bool_]


class SeenNumbers:
    """The numbers accepted so far in this run: one bit each, a page per 3-digit prefix.

    Pages are allocated on first use, so memory follows the prefixes present (all 100
    mobile prefixes: 125 MB), whatever the number of lines.
    """

    def __init__(self) -> None:
        self._pages: dict[int, UInt8Array] = {}

    def first_seen(self, nationals: Int64Array) -> BoolArray:
        """True where a number was not seen before (nor earlier in the array); marks all.

        Fastest on input already sorted (the classifier passes numbers sorted).
        """
        order = np.argsort(nationals, kind="stable")
        ordered = nationals[order]
        repeat = np.zeros(len(ordered), dtype=np.bool_)
        repeat[1:] = ordered[1:] == ordered[:-1]
        unique_at = np.flatnonzero(~repeat)
        unique = ordered[unique_at]
        prefixes = unique // 10**PAGE_DIGITS
        cuts = np.flatnonzero(np.diff(prefixes)) + 1
        groups = zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(unique)].tolist(), strict=True)
        unique_fresh = np.zeros(len(unique), dtype=np.bool_)
        for low, high in groups:
            if high > low:
                unique_fresh[low:high] = self._test_and_set(int(prefixes[low]), unique[low:high])
        fresh = np.zeros(len(nationals), dtype=np.bool_)
        fresh[order[unique_at[unique_fresh]]] = True
        return fresh

    def _test_and_set(self, prefix: int, sorted_numbers: Int64Array) -> BoolArray:
        page = self._pages.get(prefix)
        if page is None:
            page = self._pages[prefix] = np.zeros(PAGE_BYTES, dtype=np.uint8)
        offsets = sorted_numbers % 10**PAGE_DIGITS
        byte_at = offsets >> 3
        bits = np.left_shift(1, offsets & 7).astype(np.uint8)
        unset: BoolArray = (page[byte_at] & bits) == 0
        first = np.flatnonzero(np.r_[True, byte_at[1:] != byte_at[:-1]])
        page[byte_at[first]] |= np.bitwise_or.reduceat(bits, first)
        return unset

    @property
    def pages(self) -> int:
        """Dedupe pages allocated."""
        return len(self._pages)


@dataclass
class ClassifiedBlock:
    """Per-line results of one block, as parallel arrays."""

    national: Int64Array  #: national number, 0 where the line holds none
    status: UInt8Array  #: ACCEPTED, DUPLICATE or REJECTED
    reason: UInt8Array  #: reason code (``OK`` unless rejected)
    region: Int16Array  #: index into REGION_CODES, NO_REGION where unknown

    def __len__(self) -> int:
        return len(self.status)


class Classifier:
    """Classifies blocks against one plan and region selection, deduping across blocks."""

    def __init__(self, plan: NumberingPlan, allowed_regions: Iterable[str]) -> None:
        self.plan = plan
        allowed = set(allowed_regions)
        self._allowed = np.array([code in allowed for code in REGION_CODES], dtype=np.bool_)
        self.seen = SeenNumbers()

    def classify(self, block: bytes, overlong: Iterable[int] = ()) -> ClassifiedBlock:
        """Classify every ``\\n``-ended line of ``block``; ``overlong`` lines are unparseable."""
        national, reason = normalize_block(block)
        reason[list(overlong)] = UNPARSEABLE
        region = np.full(len(reason), NO_REGION, dtype=np.int16)
        candidates = np.flatnonzero(reason == OK)
        # sorted by number (stable: first occurrence first): faster lookups and dedupe
        order = candidates[np.argsort(national[candidates], kind="stable")]
        found = self.plan.region_index(national[order])
        region[order] = found
        placed = found != NO_REGION
        allowed = placed & self._allowed[np.maximum(found, 0)]
        reason[order[~placed]] = UNALLOCATED
        reason[order[placed & ~allowed]] = EXCLUDED_REGION
        status = np.where(reason == OK, ACCEPTED, REJECTED).astype(np.uint8)
        acceptable = order[allowed]
        status[acceptable[~self.seen.first_seen(national[acceptable])]] = DUPLICATE
        return ClassifiedBlock(national, status, reason, region)
