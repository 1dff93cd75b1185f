"""Input sources: text and CSV files, gzipped or not, directories, stdin → blocks of lines.

A source is read in blocks of whole lines (each ended by ``\\n``) for the bulk
classifier. Text files: one number a line. CSV files (``.csv``, ``.csv.gz``): the cells
of one column, one "line" per record; the delimiter is guessed from the header line
(``,`` ``;`` tab ``|``). Nothing is dropped silently: a line longer than
:data:`MAX_LINE_BYTES`, a record without the column or a record the CSV parser refuses
is kept as a line marked unparseable. A CSV without the column named is a
:class:`SourceError` (one line, before anything is read).

Positions for resuming count lines (text) or records (CSV) consumed, so a resumed
source skips exactly what was done whatever the compression.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

#: bytes read from a source at a time (1 MiB keeps the normaliser's arrays in cache)
READ_BYTES = 1 << 20
#: bytes of the longest line kept; longer lines are cut and rejected as unparseable
MAX_LINE_BYTES = 1024
#: CSV records per block
CSV_BLOCK_RECORDS = 65_536
#: The source name of standard input.
STDIN = "-"
#: Header names taken as the phone column when ``--column`` is not given.
PHONE_COLUMNS = (
    "phone",
    "phone_number",
    "number",
    "tel",
    "telephone",
    "msisdn",
    "mobile",
    "телефон",
    "номер",
)
#: Delimiters a CSV header is tried with, most likely first.
CSV_DELIMITERS = (";", ",", "\t", "|")

Int64Array = npt.NDArray[np.int64]


class SourceError(ValueError):
    """A source cannot be read at all; the message is one line naming it."""


@dataclass(frozen=True)
class Source:
    """One input: a file path, or stdin (``-``)."""

    name: str
    path: Path | None

    @property
    def is_csv(self) -> bool:
        """CSV by extension (``.csv`` or ``.csv.gz``)."""
        return self.name.lower().removesuffix(".gz").endswith(".csv")

    @property
    def gzipped(self) -> bool:
        """Gzip by extension."""
        return self.name.lower().endswith(".gz")


@dataclass
class Block:
    """Whole lines of one source, with their line numbers and forced rejections."""

    data: bytes  #: lines, each ended by ``\\n``
    line_numbers: Int64Array  #: 1-based line number in the source, per line
    unparseable: list[int] = field(default_factory=list)  #: indexes of lines to reject
    position: int = 0  #: lines (text) or records (CSV) consumed through this block
    raw_read: int = 0  #: bytes of the file on disk read so far (for progress)


def expand(names: Sequence[str]) -> list[Source]:
    """Sources of the command line: files as given, directories walked (sorted, no dotfiles)."""
    sources: list[Source] = []
    for name in names:
        if name == STDIN:
            sources.append(Source(STDIN, None))
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            sources.extend(Source(str(p), p) for p in files)
        elif path.is_file():
            sources.append(Source(name, path))
        else:
            raise SourceError(f"{name}: no such file or directory")
    return sources


def content_id(source: Source, column: str | None) -> str:
    """Hash of the source's bytes (and column choice); a fresh random id for stdin."""
    if source.path is None:
        return f"stdin-{uuid.uuid4().hex[:16]}"
    digest = hashlib.blake2b(digest_size=16)
    with source.path.open("rb") as stream:
        while chunk := stream.read(READ_BYTES):
            digest.update(chunk)
    if source.is_csv:
        digest.update(f"\0column={column}".encode())
    return digest.hexdigest()


def _open(source: Source) -> tuple[BinaryIO, BinaryIO]:
    """The decompressed stream and the raw one (whose position tracks progress)."""
    raw: BinaryIO = sys.stdin.buffer if source.path is None else source.path.open("rb")
    return (gzip.GzipFile(fileobj=raw) if source.gzipped else raw), raw  # type: ignore[return-value]


def read_blocks(source: Source, column: str | None = None, skip: int = 0) -> Iterator[Block]:
    """Blocks of ``source`` after its first ``skip`` lines (text) or records (CSV)."""
    stream, raw = _open(source)
    try:
        if source.is_csv:
            yield from _csv_blocks(source, stream, raw, column, skip)
        else:
            yield from _text_blocks(stream, raw, skip)
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


class LineSplitter:
    """Cuts a byte stream into whole lines, keeping at most MAX_LINE_BYTES of any line."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> tuple[bytes, list[int]]:
        """Whole lines completed by ``chunk`` and the indexes of over-long ones."""
        last = chunk.rfind(b"\n")
        if last < 0:
            self._keep(chunk)
            return b"", []
        first = chunk.find(b"\n")
        head = (self._carry + chunk[:first])[: MAX_LINE_BYTES + 1]
        lines = head + chunk[first : last + 1]
        self._carry = b""
        self._keep(chunk[last + 1 :])
        return lines, _overlong(lines)

    def finish(self) -> tuple[bytes, list[int]]:
        """The last line if it had no newline."""
        if not self._carry:
            return b"", []
        lines = self._carry + b"\n"
        self._carry = b""
        return lines, _overlong(lines)

    def _keep(self, tail: bytes) -> None:
        self._carry = (self._carry + tail)[: MAX_LINE_BYTES + 1]


def _overlong(lines: bytes) -> list[int]:
    ends = np.flatnonzero(np.frombuffer(lines, dtype=np.uint8) == ord("\n"))
    lengths = np.diff(ends, prepend=-1) - 1
    return [int(i) for i in np.flatnonzero(lengths > MAX_LINE_BYTES)]


def _skip_lines(stream: BinaryIO, count: int) -> bytes:
    """Read past ``count`` lines; returns what follows them in the last chunk read."""
    while count > 0:
        chunk = stream.read(READ_BYTES)
        if not chunk:
            return b""
        newlines = chunk.count(b"\n")
        if newlines < count:
            count -= newlines
            continue
        at = -1
        for _ in range(count):
            at = chunk.index(b"\n", at + 1)
        return chunk[at + 1 :]
    return b""


def _text_blocks(stream: BinaryIO, raw: BinaryIO, skip: int) -> Iterator[Block]:
    splitter = LineSplitter()
    line = skip
    chunks = chain([_skip_lines(stream, skip)], iter(lambda: stream.read(READ_BYTES), b""))
    for chunk in chunks:
        data, overlong = splitter.feed(chunk)
        if data:
            count = data.count(b"\n")
            yield Block(
                data, np.arange(line + 1, line + count + 1), overlong, line + count, _tell(raw)
            )
            line += count
    data, overlong = splitter.finish()
    if data:
        yield Block(data, np.array([line + 1]), overlong, line + 1, _tell(raw))


def _tell(raw: BinaryIO) -> int:
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


def _column_index(header: list[str], column: str | None, name: str) -> tuple[int, bool]:
    """0-based index of the column and whether the first record is a header."""
    if column is not None and column.isdigit():
        if int(column) < 1:
            raise SourceError(f"{name}: --column counts from 1")
        return int(column) - 1, False
    cells = [cell.strip().lower() for cell in header]
    wanted = [column.lower()] if column is not None else list(PHONE_COLUMNS)
    for candidate in wanted:
        if candidate in cells:
            return cells.index(candidate), True
    what = f"column {column!r}" if column is not None else "phone column (give --column)"
    raise SourceError(f"{name}: no {what} in header {header[:20]}")


def _csv_blocks(
    source: Source, stream: BinaryIO, raw: BinaryIO, column: str | None, skip: int
) -> Iterator[Block]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    first_line = text.readline()
    delimiter = max(CSV_DELIMITERS, key=first_line.count)
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    index, has_header = _column_index(header, column, source.name)
    records = csv.reader(chain([] if has_header else [first_line], text), delimiter=delimiter)
    line_offset = 1 if has_header else 0
    done = 0
    cells: list[str] = []
    numbers: list[int] = []
    forced: list[int] = []
    while True:
        try:
            row = next(records)
        except StopIteration:
            break
        except csv.Error:
            row = None
        done += 1
        if done <= skip:
            continue
        cell, bad = _cell(row, index)
        if bad:
            forced.append(len(cells))
        cells.append(cell)
        numbers.append(records.line_num + line_offset)
        if len(cells) >= CSV_BLOCK_RECORDS:
            yield _csv_block(cells, numbers, forced, done, raw)
            cells, numbers, forced = [], [], []
    if cells:
        yield _csv_block(cells, numbers, forced, done, raw)


def _cell(row: list[str] | None, index: int) -> tuple[str, bool]:
    """The cell of a record (newlines flattened) and whether the record is unusable."""
    if row is None:
        return "", True
    if not row:
        return "", False
    if index >= len(row):
        return "", True
    cell = row[index].replace("\r", " ").replace("\n", " ")
    return cell, len(cell) > MAX_LINE_BYTES


def _csv_block(
    cells: list[str], numbers: list[int], forced: list[int], done: int, raw: BinaryIO
) -> Block:
    data = ("\n".join(cells) + "\n").encode("utf-8", errors="replace")
    return Block(data, np.array(numbers, dtype=np.int64), forced, done, _tell(raw))
