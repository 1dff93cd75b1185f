"""Landline fallback: libphonenumber's geocoding prefixes for +7 3xx/4xx/8xx as ranges.

Used only for leading digits no loaded registry file covers (the Rossvyaz ABC file is
authoritative when loaded). libphonenumber's Russian geocoding names a subject per
area-code prefix; those names are resolved to region codes once, and the prefixes
painted into non-overlapping sorted ranges (the longest prefix wins). Time zones come
from the region table, not from libphonenumber (its Russian zones are dated).
Prefixes whose name is not a Russian region (Baikonur, +7 33) are left out.

libphonenumber's geocoding data (about 100 MB once imported) is imported on first use,
not with this module: the processes that never place a landline (the gateway) stay small.
"""

from __future__ import annotations

import importlib
from functools import cache
from itertools import pairwise
from typing import cast

from phonebank.domain.region_names import region_code

#: Digits in a national significant number.
NATIONAL_DIGITS = 10
#: Leading national digits of Russian geographic (landline) numbers.
LANDLINE_LEADING_DIGITS = "348"
#: libphonenumber's language whose names the resolver understands.
GEOCODER_LANGUAGE = "ru"


def _prefix_range(prefix: str) -> tuple[int, int]:
    """``'495'`` → the first and last national number starting with 495."""
    width = NATIONAL_DIGITS - len(prefix)
    start = int(prefix) * 10**width
    return start, start + 10**width - 1


def geocoder_prefixes() -> dict[str, str]:
    """National prefix (without the country code 7) → region code, from libphonenumber."""
    prefixes: dict[str, str] = {}
    geodata = importlib.import_module("phonenumbers.geodata")
    for key, names in cast(dict[str, dict[str, str]], geodata.GEOCODE_DATA).items():
        if not key.startswith("7") or len(key) < 2 or key[1] not in LANDLINE_LEADING_DIGITS:
            continue
        code = region_code(names.get(GEOCODER_LANGUAGE) or names.get("en", ""))
        if code is not None:
            prefixes[key[1:]] = code
    return prefixes


@cache
def landline_ranges() -> tuple[tuple[int, int, str], ...]:
    """Non-overlapping ``(start, end inclusive, region code)`` sorted by start."""
    prefixes = geocoder_prefixes()
    bounds = sorted({edge for prefix in prefixes for edge in _edges(prefix)})
    painted: list[tuple[int, int, str]] = []
    for low, high in pairwise(bounds):
        code = _longest_match(prefixes, str(low))
        if code is None:
            continue
        if painted and painted[-1][2] == code and painted[-1][1] == low - 1:
            painted[-1] = (painted[-1][0], high - 1, code)
        else:
            painted.append((low, high - 1, code))
    return tuple(painted)


def _edges(prefix: str) -> tuple[int, int]:
    start, end = _prefix_range(prefix)
    return start, end + 1


def _longest_match(prefixes: dict[str, str], number: str) -> str | None:
    for length in range(len(number), 0, -1):
        code = prefixes.get(number[:length])
        if code is not None:
            return code
    return None
