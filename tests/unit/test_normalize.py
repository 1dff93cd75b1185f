"""The bulk normaliser: formats people keep, reason codes, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebank.domain.normalize import REASONS, normalize_block, normalize_text


def normalize_line(line: str | bytes) -> tuple[int, str]:
    raw = line.encode() if isinstance(line, str) else line
    national, reasons = normalize_block(raw + b"\n")
    return int(national[0]), REASONS[reasons[0]]


def formats(national: int) -> list[str]:
    """Every way the design says people write ``national``."""
    s = str(national)
    return [
        f"+7 ({s[:3]}) {s[3:6]}-{s[6:8]}-{s[8:]}",
        f"8 {s[:3]} {s[3:6]} {s[6:8]} {s[8:]}",
        f"8{s}",
        f"7{s}",
        s,
        f"+7.{s[:3]}.{s[3:6]}.{s[6:8]}.{s[8:]}",
        f"tel:+7{s}",
        f" \t{s}\t ",
        f"+7{s}",
        f'"+7 {s}"',
        f"TEL:+7-{s[:3]}-{s[3:]}",
        f"{s}\r",
        f"+7\u00a0{s[:3]}\u00a0{s[3:]}",
        f"8 ({s[:3]}) {s[3:6]}\u2013{s[6:8]}\u2013{s[8:]}",
    ]


@pytest.mark.parametrize("text", formats(9161234567))
def test_every_kept_format_gives_the_national_number(text: str) -> None:
    assert normalize_line(text) == (9161234567, "ok")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \t", "empty"),
        ("\r", "empty"),
        ("916123456", "too_short"),
        ("+7 916 123 45 6", "too_short"),
        ("12", "too_short"),
        ("991612345678", "too_long"),
        ("+7 916 123 45 678", "too_long"),
        ("99161234567", "too_long"),
        ("abc", "letters"),
        ("тел. 9161234567", "letters"),
        ("9161234567 доб. 12", "letters"),
        ("+380 50 123 45 67", "not_ru"),
        ("+1 212 555 0100", "not_ru"),
        ("+7 701 123 45 67", "not_ru"),
        ("87011234567", "not_ru"),
        ("6123456789", "not_ru"),
        ("8 800 555 35 35", "non_personal"),
        ("+7 809 123 45 67", "non_personal"),
        ("5161234567", "unallocated"),
        ("0161234567", "unallocated"),
        ("2161234567", "unallocated"),
        ("9161234567+", "unparseable"),
        ("++79161234567", "unparseable"),
        ("(((", "unparseable"),
        ("9161234567, 9161234568", "unparseable"),
        ("9161234567;", "unparseable"),
        ("+", "unparseable"),
        ("#9161234567", "unparseable"),
    ],
)
def test_reason_codes(text: str, reason: str) -> None:
    assert normalize_line(text)[1] == reason


@pytest.mark.parametrize("raw", [b"\xff\xfe9161234567", b"9161\x0034567", b"\xd0"])
def test_invalid_utf8_and_nul_are_unparseable(raw: bytes) -> None:
    assert normalize_line(raw) == (0, "unparseable")


def test_rejected_but_well_formed_numbers_keep_their_national_form() -> None:
    # Given well-formed +7 numbers rejected on their prefix, and malformed ones
    # Then the well-formed keep their number (reports show the E.164), the others do not
    assert normalize_line("8 800 555 35 35") == (8005553535, "non_personal")
    assert normalize_line("+7 701 123 45 67") == (7011234567, "not_ru")
    assert normalize_line("+380501234567") == (0, "not_ru")
    assert normalize_line("991612345678") == (0, "too_long")


def test_empty_block_gives_no_lines() -> None:
    national, reasons = normalize_block(b"")
    assert len(national) == len(reasons) == 0


def test_slow_path_handles_quotes_and_prefix_alone() -> None:
    assert normalize_text(b'"tel:+79161234567"') == (9161234567, 0)
    assert normalize_text(b"  ") == (0, REASONS.index("empty"))


candidates = st.integers(min_value=3_000_000_000, max_value=9_999_999_999).filter(
    lambda n: str(n)[0] in "3489" and not str(n).startswith("80")
)


@settings(max_examples=300, deadline=None)
@given(candidates)
def test_every_format_of_a_number_normalises_to_it(national: int) -> None:
    # Given a Russian candidate number, When written in every kept format
    results = {normalize_line(text) for text in formats(national)}
    # Then every one comes back as the same number, accepted by the digit rules
    assert results == {(national, "ok")}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")))
def test_normaliser_never_raises_on_bytes(raw: bytes) -> None:
    national, reason = normalize_line(raw)
    assert reason in REASONS
    assert national == 0 or 10**9 <= national < 10**10


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+()-. \tx7", max_size=16), max_size=30))
def test_a_line_gets_the_same_result_alone_or_in_a_block(lines: list[str]) -> None:
    # Given lines, When normalised in one block and one by one
    joined = "".join(line + "\n" for line in lines).encode()
    national, reasons = normalize_block(joined)
    alone = [normalize_line(line) for line in lines]
    # Then every line gets the same number and reason either way
    assert list(zip(national.tolist(), [REASONS[r] for r in reasons], strict=True)) == alone


def test_block_of_many_lines_is_normalised_in_order() -> None:
    # Given 10,000 distinct numbers in mixed formats
    numbers = np.arange(9_161_000_000, 9_161_010_000)
    lines = [formats(int(n))[i % 14] for i, n in enumerate(numbers)]
    # When normalised as one block
    national, reasons = normalize_block(("\n".join(lines) + "\n").encode())
    # Then every line is accepted with its own number, in order
    assert (reasons == 0).all()
    assert (national == numbers).all()
