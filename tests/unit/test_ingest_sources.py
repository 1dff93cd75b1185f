"""Ingest sources: text, CSV, gzip, directories, stdin, and hostile input."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from phonebank.ingest.sources import (
    MAX_LINE_BYTES,
    LineSplitter,
    Source,
    SourceError,
    content_id,
    expand,
    read_blocks,
)


def lines_of(source: Source, column: str | None = None, skip: int = 0) -> list[tuple[int, bytes]]:
    out = []
    for block in read_blocks(source, column, skip):
        for number, text in zip(
            block.line_numbers.tolist(), block.data.split(b"\n")[:-1], strict=True
        ):
            out.append((number, text))
    return out


def source(path: Path) -> Source:
    return expand([str(path)])[0]


def test_text_file_lines_keep_numbers_and_empty_lines(tmp_path: Path) -> None:
    # Given a text file with an empty line and no final newline
    path = tmp_path / "a.txt"
    path.write_bytes(b"9161234567\n\n+7 916 000 00 00")
    # When read, Then every line comes back, numbered from 1
    assert lines_of(source(path)) == [(1, b"9161234567"), (2, b""), (3, b"+7 916 000 00 00")]


def test_gzipped_text_reads_like_plain(tmp_path: Path) -> None:
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(b"1\n2\n3\n"))
    assert lines_of(source(path)) == [(1, b"1"), (2, b"2"), (3, b"3")]


def test_skip_resumes_after_whole_lines(tmp_path: Path) -> None:
    # Given a file read past its first 2 lines
    path = tmp_path / "a.txt"
    path.write_bytes(b"a\nb\nc\nd\n")
    # Then reading resumes at line 3 with its number
    assert lines_of(source(path), skip=2) == [(3, b"c"), (4, b"d")]


def test_overlong_line_is_cut_and_marked_and_the_next_line_survives() -> None:
    # Given a stream with a line far longer than the cap, fed in pieces
    splitter = LineSplitter()
    pieces = [b"9161234567\n" + b"9" * 5000, b"9" * 5000, b"\n9161234568\n"]
    results = [splitter.feed(piece) for piece in pieces]
    data = b"".join(lines for lines, _ in results)
    # Then the long line is kept cut (at most cap + 1 bytes) and flagged
    lines = data.split(b"\n")[:-1]
    assert lines[0] == b"9161234567" and lines[2] == b"9161234568"
    assert len(lines[1]) <= MAX_LINE_BYTES + 1
    assert results[2][1] == [0]


def test_csv_column_by_name_skips_header_and_keeps_line_numbers(tmp_path: Path) -> None:
    # Given a ;-separated CSV with a header and a quoted multi-line cell
    path = tmp_path / "people.csv"
    path.write_text('name;Phone\nIvan;+7 916 123-45-67\n"Multi\nline";89161234568\n;\n')
    # When its phone column is read by name (any case)
    got = lines_of(source(path), column="phone")
    # Then one line per record, numbered by its physical line
    assert got == [(2, b"+7 916 123-45-67"), (4, b"89161234568"), (5, b"")]


def test_csv_column_by_index_counts_from_one_and_has_no_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("x,9161234567\ny,9161234568\n")
    assert lines_of(source(path), column="2") == [(1, b"9161234567"), (2, b"9161234568")]


def test_csv_phone_column_is_found_without_option(tmp_path: Path) -> None:
    path = tmp_path / "auto.csv.gz"
    path.write_bytes(gzip.compress("id,телефон\n1,9161234567\n".encode()))
    assert lines_of(source(path)) == [(2, b"9161234567")]


def test_csv_without_the_column_is_one_clear_error(tmp_path: Path) -> None:
    # Given a CSV whose header lacks the column asked for
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    # When read, Then a one-line SourceError names the file and column
    with pytest.raises(SourceError, match=r"x\.csv: no column 'phone'"):
        lines_of(source(path), column="phone")


def test_csv_short_record_is_marked_unparseable(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("name,phone\nonly-a-name\nIvan,9161234567\n")
    block = next(read_blocks(source(path)))
    assert block.unparseable == [0]
    assert block.line_numbers.tolist() == [2, 3]


def test_directories_expand_sorted_without_dotfiles(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("1\n")
    (tmp_path / ".hidden").write_text("1\n")
    names = [Path(s.name).relative_to(tmp_path).as_posix() for s in expand([str(tmp_path)])]
    assert names == ["b.txt", "sub/a.txt"]


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        expand([str(tmp_path / "nope.txt")])


def test_stdin_is_a_source(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(b"9161234567\nabc\n"))
    monkeypatch.setattr(sys, "stdin", fake)
    assert lines_of(expand(["-"])[0]) == [(1, b"9161234567"), (2, b"abc")]


def test_content_id_follows_bytes_and_column(tmp_path: Path) -> None:
    # Given two files with the same bytes and one with other bytes
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("phone\n1\n")
    b.write_text("phone\n1\n")
    c.write_text("phone\n2\n")
    # Then the id depends on content and column choice, not on the name
    assert content_id(source(a), None) == content_id(source(b), None)
    assert content_id(source(a), None) != content_id(source(c), None)
    assert content_id(source(a), None) != content_id(source(a), "1")
