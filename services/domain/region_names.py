"""Registry region spellings → region codes.

The Rossvyaz registry spells one region many ways ("Тверская обл.", "Тверская область",
"Республика Удмуртская", "Удмуртская Республика", "Ханты - Мансийский - Югра АО") and
merges some ("г. Москва * Московская область", "Республика Крым и г. Севастополь").
A spelling is resolved in three steps:

1. ``|`` separates a sub-territory from its region ("г. Норильск|Красноярский край"):
   every alternative that resolves must give the same code; unknown ones are ignored.
2. ``*``, ``,`` and `` и `` join constituents ("Москва и Московская область"); two or
   more distinct constituents give the combined code of
   :data:`~phonebank.domain.regions.COMBINED_CODES`.
3. A constituent's key is the set of its distinctive words: lower case, ``ё`` as ``е``,
   accents dropped, split on anything but letters, generic words ("область", "обл",
   "республика", "край", "АО", "г.", …) removed. So word order, abbreviations and
   punctuation do not matter.

``-`` (no region) falls back to the registry's territory column ("Территория ГАР");
if that is empty too, or a spelling is unknown, the code is ``RU-UNK``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from phonebank.domain.regions import (
    COMBINED_CODES,
    NATIONWIDE,
    REGIONS,
    SUBJECT_CODES,
    UNKNOWN,
)

#: Words that say what kind of subject a name is, not which one.
GENERIC_WORDS = frozenset(
    {
        "республика",
        "область",
        "обл",
        "край",
        "автономный",
        "автономная",
        "ао",
        "округ",
        "г",
        "город",
        "народная",
    }
)

#: Spellings beyond each region's Russian name (keys are matched as word sets).
EXTRA_SPELLINGS: dict[str, tuple[str, ...]] = {
    "RU-KEM": ("Кемеровская область",),
    "RU-CU": ("Чувашская Республика",),
    "RU-MOW": ("Город Москва",),
    NATIONWIDE: ("Российская Федерация",),
}

_SEPARATORS = re.compile(r"\s*(?:\*|,|\sи\s)\s*")
_NON_LETTERS = re.compile(r"[^a-zа-я]+")
#: Stress accents some spellings carry ("Луга́нская"), dropped before matching.
_STRESS_MARKS = {0x0300: None, 0x0301: None}
#: Spellings meaning "no region given".
_BLANK = frozenset({"", "-", "—"})


def name_key(name: str) -> frozenset[str]:
    """The distinctive words of a region name (see the module docstring, step 3)."""
    decomposed = unicodedata.normalize("NFD", name.lower())
    letters = unicodedata.normalize("NFC", decomposed.translate(_STRESS_MARKS))
    words = _NON_LETTERS.split(letters.replace("ё", "е"))
    return frozenset(word for word in words if word and word not in GENERIC_WORDS)


def _build_index() -> dict[frozenset[str], str]:
    index: dict[frozenset[str], str] = {}
    for code in SUBJECT_CODES:
        index[name_key(REGIONS[code].name_ru)] = code
    for code, spellings in EXTRA_SPELLINGS.items():
        for spelling in spellings:
            index[name_key(spelling)] = code
    return index


_INDEX = _build_index()


def _constituent(name: str) -> str | None:
    return _INDEX.get(name_key(name))


def _combination(name: str) -> str | None:
    codes = {_constituent(part) for part in _SEPARATORS.split(name.strip())}
    if None in codes:
        return None
    known = {code for code in codes if code is not None}
    if len(known) == 1:
        return known.pop()
    return COMBINED_CODES.get(frozenset(known))


def _alternatives(name: str) -> str | None:
    codes = {_combination(part) for part in name.split("|")}
    codes.discard(None)
    return codes.pop() if len(codes) == 1 else None


@cache
def region_code(name: str, territory: str = "") -> str | None:
    """The code of a registry spelling, or None where it is unknown.

    ``territory`` is the registry's "Территория ГАР" column, used when ``name`` is ``-``.
    """
    if name.strip() in _BLANK:
        return _alternatives(territory) if territory.strip() not in _BLANK else UNKNOWN
    return _alternatives(name)
