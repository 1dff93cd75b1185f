"""The pure half of region choice: how far behind a region is, and the weighted draw.

A region's weight is how far it is behind on coverage, ``1 - attempted / numbers``,
where numbers is what ingest stored for the region (the Kafka backlog included) or, if
more, what was queued; never below :data:`MIN_COVERAGE_WEIGHT`, so that no open region
starves. The regions an acquire tries are drawn without replacement (successive draws,
each proportional to weight among the regions not yet drawn) from a cumulative table,
so that one draw is a binary search. The Redis half (reading the counters, caching the
table) is :mod:`phonebank.leases.region_choice`.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterable, Sequence

#: smallest draw weight of an open region with work (fraction of 1)
MIN_COVERAGE_WEIGHT = 0.05
#: random draws per region wanted before a pick settles for fewer (draws that hit a
#: region already picked are repeated; this bounds them)
DRAWS_PER_PICK = 16


def coverage_weight(enqueued: int, attempted: int, ingested: int = 0) -> float:
    """How far behind the region is: 1 for untouched, down to the floor when covered
    (``enqueued`` and ``attempted``: the region's counters; ``ingested``: what ingest
    stored in Kafka for it)."""
    numbers = max(enqueued, ingested)
    if numbers <= 0:
        return 1.0
    covered = min(attempted / numbers, 1.0)
    return max(1.0 - covered, MIN_COVERAGE_WEIGHT)


def cumulative_weights(weights: Iterable[float]) -> list[float]:
    """The running sum of ``weights``: the table :func:`draw_without_replacement` bisects."""
    return list(itertools.accumulate(weights))


def draw_without_replacement(
    regions: Sequence[str], cumulative: Sequence[float], wanted: int, rng: random.Random
) -> list[str]:
    """Up to ``wanted`` distinct ``regions``, each draw proportional to its weight among
    those not yet drawn (a repeated hit is drawn again, at most
    :data:`DRAWS_PER_PICK` draws per region wanted)."""
    wanted = min(wanted, len(regions))
    picked: list[str] = []
    if not wanted:
        return picked
    last, total = len(regions) - 1, cumulative[-1]
    for _ in range(wanted * DRAWS_PER_PICK):
        spot = bisect.bisect_right(cumulative, rng.random() * total)
        region = regions[min(spot, last)]
        if region not in picked:
            picked.append(region)
            if len(picked) == wanted:
                break
    return picked
