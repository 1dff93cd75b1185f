"""The bulk normaliser: a block of text lines → national numbers and reason codes.

Returns, per line, the national number where the line is a well-formed +7 number (even
one rejected as Kazakh or non-personal, so reports can show its E.164 form), else 0.

One call handles a whole block (hundreds of thousands of lines) with numpy: every byte
is classed (digit, punctuation ``()-.``, blank, ``+``, newline, other) through a lookup
table, per-line counts come from ``np.add.reduceat``, and the last ten digits of each
line are gathered into an int64. Lines holding any "other" byte (letters, ``tel:``,
quotes, non-ASCII, NUL) take the per-line slow path, which understands those and feeds
the same digit rules, so both paths decide alike.

Digit rules (``+`` must come before the first digit):

* ``+`` then 11 digits starting with 7 → the last 10; ``+`` and another country → not_ru;
* no ``+``: 10 digits → as they are; 11 digits starting with 7 or 8 → the last 10;
* fewer digits → too_short, more → too_long;
* national number starting with 6 or 7 → not_ru (Kazakhstan), with 80 → non_personal
  (8-800 freephone and the other non-geographic codes), with 0, 1, 2 or 5 → unallocated.

What is left is a candidate (reason :data:`OK`): the numbering plan decides the rest.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Reason codes, indexed by the ``uint8`` codes the bulk functions return.
REASONS = (
    "ok",
    "empty",
    "too_short",
    "too_long",
    "letters",
    "not_ru",
    "non_personal",
    "unallocated",
    "excluded_region",
    "unparseable",
)
OK, EMPTY, TOO_SHORT, TOO_LONG, LETTERS, NOT_RU, NON_PERSONAL = range(7)
UNALLOCATED, EXCLUDED_REGION, UNPARSEABLE = range(7, 10)

#: digits in a national significant number
NATIONAL_DIGITS = 10
#: digits of a number written with the country code or trunk prefix
PREFIXED_DIGITS = 11
#: Leading national digits that are Kazakhstan's half of +7.
KAZAKHSTAN_LEADS = frozenset({6, 7})
#: Leading national digits no Russian number has.
UNASSIGNED_LEADS = frozenset({0, 1, 2, 5})
#: First two national digits of non-geographic codes (800 freephone, 809 premium, …).
NON_PERSONAL_PREFIX = 80

_DIGIT, _PUNCT, _BLANK, _PLUS, _NEWLINE, _OTHER = range(6)
_PUNCTUATION = "()-."
_BLANKS = " \t\r"

UInt8Array = npt.NDArray[np.uint8]
Int64Array = npt.NDArray[np.int64]


def _byte_classes() -> UInt8Array:
    table = np.full(256, _OTHER, dtype=np.uint8)
    table[ord("0") : ord("9") + 1] = _DIGIT
    for char, kind in [
        *((c, _PUNCT) for c in _PUNCTUATION),
        *((c, _BLANK) for c in _BLANKS),
        ("+", _PLUS),
        ("\n", _NEWLINE),
    ]:
        table[ord(char)] = kind
    return table


_CLASS_OF_BYTE = _byte_classes()
#: Unicode look-alikes of the separators people paste from word processors.
_LOOKALIKES = str.maketrans(
    {
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2212": "-",
        **{chr(c): "-" for c in range(0x2010, 0x2016)},
    }
)
_TEL_PREFIX = "tel:"
#: Characters the bulk rules understand.
_PLAIN = frozenset("0123456789+" + _PUNCTUATION + _BLANKS)
_QUOTES = "\"'«»“”"


@dataclass
class DigitFacts:
    """Per-line facts the digit rules need, as parallel arrays."""

    count: Int64Array  #: digits on the line
    plus: npt.NDArray[np.bool_]  #: a ``+`` stood before the first digit
    first: Int64Array  #: the first digit (0 where there is none)
    national: Int64Array  #: the last ten digits as a number (0 where fewer)


def apply_digit_rules(facts: DigitFacts) -> tuple[UInt8Array, npt.NDArray[np.bool_]]:
    """Reason code per line from its digit facts, and whether it is a well-formed +7 number.

    A well-formed number has the right digit count and prefix; it may still be rejected
    (Kazakhstan, non-personal, unassigned lead digit) but has an E.164 form.
    """
    count, plus, first = facts.count, facts.plus, facts.first
    reasons = np.full(len(count), OK, dtype=np.uint8)
    prefixed = (count == PREFIXED_DIGITS) & np.where(plus, first == 7, (first == 7) | (first == 8))
    length_ok = prefixed | (~plus & (count == NATIONAL_DIGITS))
    short = count < np.where(plus, PREFIXED_DIGITS, NATIONAL_DIGITS)
    reasons[~length_ok] = np.where(short[~length_ok], TOO_SHORT, TOO_LONG)
    reasons[plus & (count > 0) & (first != 7)] = NOT_RU
    lead = facts.national // 10 ** (NATIONAL_DIGITS - 1)
    judged = reasons == OK
    reasons[judged & np.isin(lead, list(KAZAKHSTAN_LEADS))] = NOT_RU
    reasons[judged & np.isin(lead, list(UNASSIGNED_LEADS))] = UNALLOCATED
    non_personal = facts.national // 10 ** (NATIONAL_DIGITS - 2) == NON_PERSONAL_PREFIX
    reasons[judged & non_personal] = NON_PERSONAL
    return reasons, length_ok


def line_bounds(block: bytes) -> tuple[Int64Array, Int64Array]:
    """Start and end (exclusive, at the newline) of every line of a ``\\n``-ended block."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")).astype(np.int64)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    return starts, ends


def normalize_block(block: bytes) -> tuple[Int64Array, UInt8Array]:
    """National number (0 where none) and reason code of every line of ``block``.

    ``block`` is whole lines, each ended by ``\\n`` (the last one too).
    """
    starts, ends = line_bounds(block)
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    block = _blank_tel_prefixes(block)
    data = np.frombuffer(block, dtype=np.uint8)
    classes = _CLASS_OF_BYTE[data]
    is_digit = classes == _DIGIT
    count = np.add.reduceat(is_digit, starts, dtype=np.int64)
    facts, plus_count, plus_after_digit = _digit_facts(data, classes, is_digit, starts, count)
    reasons, well_formed = apply_digit_rules(facts)
    reasons[(plus_count > 1) | plus_after_digit] = UNPARSEABLE
    no_digits = np.flatnonzero(count == 0)
    if len(no_digits):
        reasons[no_digits] = [
            _no_digit_reason(block[s:e])
            for s, e in zip(starts[no_digits].tolist(), ends[no_digits].tolist(), strict=True)
        ]
    national = np.where(well_formed & (reasons != UNPARSEABLE), facts.national, 0)
    slow = _lines_of(np.flatnonzero(classes == _OTHER), starts)
    if len(slow):
        _normalize_slow_lines(block, starts, np.unique(slow), national, reasons)
    return national, reasons


def _blank_tel_prefixes(block: bytes) -> bytes:
    """``tel:`` as blanks (same length, lines stay put), so those lines stay on the fast path."""
    if b"tel:" not in block and b"TEL:" not in block:
        return block
    return block.replace(b"tel:", b"    ").replace(b"TEL:", b"    ")


def _no_digit_reason(line: bytes) -> int:
    return EMPTY if not line.strip(_BLANKS.encode()) else UNPARSEABLE


def _lines_of(positions: Int64Array, starts: Int64Array) -> Int64Array:
    """The line index of each byte position."""
    lines: Int64Array = np.searchsorted(starts, positions, side="right") - 1
    return lines


def _normalize_slow_lines(
    block: bytes, starts: Int64Array, slow: Int64Array, national: Int64Array, reasons: UInt8Array
) -> None:
    """Clean each odd line in Python, then run the cleaned ones through the bulk rules."""
    ends = np.append(starts[1:], len(block)) - 1
    cleaned_at: list[int] = []
    cleaned: list[bytes] = []
    for line in slow.tolist():
        outcome = clean_line(block[int(starts[line]) : int(ends[line])])
        if isinstance(outcome, bytes):
            cleaned_at.append(line)
            cleaned.append(outcome)
        else:
            national[line], reasons[line] = 0, outcome
    if cleaned:
        batch_national, batch_reasons = normalize_block(b"\n".join(cleaned) + b"\n")
        national[cleaned_at] = batch_national
        reasons[cleaned_at] = batch_reasons


def _digit_facts(
    data: UInt8Array,
    classes: UInt8Array,
    is_digit: npt.NDArray[np.bool_],
    starts: Int64Array,
    count: Int64Array,
) -> tuple[DigitFacts, Int64Array, npt.NDArray[np.bool_]]:
    """Digit facts per line, ``+`` signs per line, and lines with a ``+`` after a digit."""
    digit_at = np.flatnonzero(is_digit)
    digits = data[digit_at] - np.uint8(ord("0"))
    offset = np.cumsum(count) - count
    has_digits = count > 0
    first = np.zeros(len(count), dtype=np.int64)
    first[has_digits] = digits[offset[has_digits]]
    national = np.zeros(len(count), dtype=np.int64)
    full = np.flatnonzero(count >= NATIONAL_DIGITS)
    tail = offset[full] + count[full] - NATIONAL_DIGITS
    for place in range(NATIONAL_DIGITS):
        national[full] = national[full] * 10 + digits[tail + place]
    plus_at = np.flatnonzero(classes == _PLUS)
    plus_line = _lines_of(plus_at, starts)
    plus_count = np.bincount(plus_line, minlength=len(count)).astype(np.int64)
    first_digit_at = np.full(len(count), np.iinfo(np.int64).max, dtype=np.int64)
    first_digit_at[has_digits] = digit_at[offset[has_digits]]
    late_plus = np.zeros(len(count), dtype=np.bool_)
    late_plus[plus_line[plus_at > first_digit_at[plus_line]]] = True
    return DigitFacts(count, plus_count > 0, first, national), plus_count, late_plus


def clean_line(raw: bytes) -> bytes | int:
    """The slow path's cleaning of one line (no newline): plain ASCII, or a reason code.

    Decodes UTF-8, maps look-alike spaces and dashes, drops surrounding quotes and a
    ``tel:`` prefix; letters → LETTERS; anything else the digit rules do not know,
    invalid UTF-8 and NUL → UNPARSEABLE.
    """
    if b"\x00" in raw:
        return UNPARSEABLE
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return UNPARSEABLE
    text = text.translate(_LOOKALIKES).strip().strip(_QUOTES).strip()
    if text.lower().startswith(_TEL_PREFIX):
        text = text[len(_TEL_PREFIX) :]
    if not text.strip(_BLANKS):
        return EMPTY
    if any(unicodedata.category(char).startswith("L") for char in text):
        return LETTERS
    if any(char not in _PLAIN for char in text):
        return UNPARSEABLE
    return text.encode("ascii")


def normalize_text(raw: bytes) -> tuple[int, int]:
    """One line (no newline) through the slow path: national number (0 if none), reason."""
    outcome = clean_line(raw)
    if not isinstance(outcome, bytes):
        return 0, outcome
    national, reasons = normalize_block(outcome + b"\n")
    return int(national[0]), int(reasons[0])
