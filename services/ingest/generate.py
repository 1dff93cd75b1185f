"""Generate: random-digit dialing inside allocated ranges, as an ingest source.

Numbers are drawn uniformly without replacement from the registry ranges of the chosen
regions, stratified by region: ``capacity`` gives each region a quota proportional to
its allocated numbers (a uniform sample of the whole plan, with exact proportions);
``equal`` gives every region the same quota (capped at its capacity, the rest shared
among the others).

Without replacement in constant memory: each region's numbers are indexed ``0..C-1``
(ranges laid end to end) and walked through a keyed pseudo-random permutation of that
index space — a 4-round Feistel network on the next even bit width, with cycle-walking
back into ``0..C-1``. The first ``quota`` images are distinct by construction, the key
comes from the seed and region, so the same seed gives the same numbers, in batches,
for any count up to the plan's capacity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from phonebank.domain.numbering import NumberingPlan

#: numbers generated per batch (bounds memory whatever the count)
BATCH = 65_536
#: Feistel rounds (4 rounds of a good mixer: a pseudo-random permutation)
ROUNDS = 4
#: Stratification names.
STRATIFICATIONS = ("capacity", "equal")

UInt64Array = npt.NDArray[np.uint64]
Int64Array = npt.NDArray[np.int64]

_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


class FeistelPermutation:
    """A keyed pseudo-random permutation of ``range(size)``, evaluated on arrays."""

    def __init__(self, size: int, key: bytes) -> None:
        if size < 1:
            raise ValueError("size must be positive")
        self.size = size
        bits = max(2, (size - 1).bit_length())
        self.half = (bits + 1) // 2
        self.mask = np.uint64((1 << self.half) - 1)
        digest = hashlib.blake2b(key, digest_size=8 * ROUNDS).digest()
        self.round_keys = [
            np.uint64(int.from_bytes(digest[8 * i : 8 * i + 8], "little")) for i in range(ROUNDS)
        ]

    def __call__(self, indexes: Int64Array) -> Int64Array:
        """The images of ``indexes`` (all in ``0..size-1``)."""
        images = self._rounds(indexes.astype(np.uint64))
        outside = images >= self.size
        while outside.any():
            images[outside] = self._rounds(images[outside])
            outside = images >= self.size
        return images.astype(np.int64)

    def _rounds(self, values: UInt64Array) -> UInt64Array:
        half = np.uint64(self.half)
        left, right = values >> half, values & self.mask
        for key in self.round_keys:
            left, right = right, left ^ (_mix(right ^ key) & self.mask)
        return (left << half) | right


def _mix(values: UInt64Array) -> UInt64Array:
    """SplitMix64's finaliser: every input bit affects every output bit."""
    with np.errstate(over="ignore"):
        z: UInt64Array = values ^ (values >> np.uint64(30))
        z = z * _MULTIPLIERS[0]
        z = z ^ (z >> np.uint64(27))
        z = z * _MULTIPLIERS[1]
        mixed: UInt64Array = z ^ (z >> np.uint64(31))
        return mixed


def quotas(capacities: dict[str, int], count: int, stratify: str) -> dict[str, int]:
    """Numbers to draw per region for ``count`` in all, by the stratification."""
    total = sum(capacities.values())
    if count > total:
        raise ValueError(f"--count {count:,} exceeds the {total:,} allocated numbers chosen")
    if stratify == "capacity":
        exact = {code: count * cap / total for code, cap in capacities.items()}
        shares = {code: int(value) for code, value in exact.items()}
        by_remainder = sorted(exact, key=lambda code: (shares[code] - exact[code], code))
        for code in by_remainder[: count - sum(shares.values())]:
            shares[code] += 1
        return shares
    if stratify != "equal":
        raise ValueError(f"unknown stratification {stratify!r}; use {STRATIFICATIONS}")
    shares = dict.fromkeys(capacities, 0)
    left = count
    while left:
        open_codes = sorted(code for code in capacities if shares[code] < capacities[code])
        each, extra = divmod(left, len(open_codes))
        for position, code in enumerate(open_codes):
            take = min(each + (position < extra), capacities[code] - shares[code])
            shares[code] += take
            left -= take
    return shares


def iter_generated_batches(
    plan: NumberingPlan,
    count: int,
    regions: Sequence[str] | None,
    seed: int,
    stratify: str = "capacity",
) -> Iterator[tuple[str, Int64Array]]:
    """``(region, numbers)`` batches: ``count`` distinct allocated numbers in all."""
    capacity = plan.capacity_by_region()
    chosen = sorted(regions) if regions else sorted(capacity)
    unknown = [code for code in chosen if code not in capacity]
    if unknown:
        raise ValueError(f"no allocated ranges for region(s) {unknown} in {plan.origin}")
    for region, quota in quotas({c: capacity[c] for c in chosen}, count, stratify).items():
        if quota:
            yield from _region_batches(plan, region, quota, seed)


def _region_batches(
    plan: NumberingPlan, region: str, quota: int, seed: int
) -> Iterator[tuple[str, Int64Array]]:
    starts, sizes = plan.ranges_of(region)
    ends = np.cumsum(sizes)
    permutation = FeistelPermutation(int(ends[-1]), f"{seed}\0{region}".encode())
    for low in range(0, quota, BATCH):
        images = permutation(np.arange(low, min(low + BATCH, quota), dtype=np.int64))
        which = np.searchsorted(ends, images, side="right")
        yield region, starts[which] + images - (ends[which] - sizes[which])
