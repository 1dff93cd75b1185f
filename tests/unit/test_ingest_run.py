"""Ingest runs: dry-run contract, counts, dedupe, chunks, rejects, checkpoints and resume."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import NumberChunk
from phonebank.ingest import runner, sources
from phonebank.ingest.chunks import EncodedChunk, IngestError
from phonebank.ingest.progress import Progress
from phonebank.ingest.runner import IngestOptions, IngestRun
from phonebank.settings import Settings, load_settings

PLAN = NumberingPlan.default()
CONTRACT_KEYS = ["source", "line", "status", "reason", "e164", "region", "tz"]
MIXED = (
    "+7 (916) 123-45-67\n8 916 123 45 67\n\nabc\n+7 949 000 11 22\n8 800 555 35 35\n"
    "9001234567\n+7 914 200 50 00\n9781000001\n"
)


class ListSink:
    """Collects chunks; can fail after a number of sends, like a broker going away."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.chunks: list[NumberChunk] = []
        self.fail_after = fail_after

    def send(self, chunk: EncodedChunk) -> None:
        if self.fail_after is not None and len(self.chunks) >= self.fail_after:
            raise IngestError("broker gone")
        decoded = NumberChunk.decode(chunk.value)
        assert (decoded.region, decoded.seq, len(decoded.numbers)) == (
            chunk.region,
            chunk.seq,
            chunk.count,
        )
        self.chunks.append(decoded)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def quiet() -> Progress:
    return Progress(io.StringIO(), interactive=False)


def dry_run(paths: list[Path], settings: Settings | None = None) -> tuple[list[dict], dict]:
    out = io.StringIO()
    options = IngestOptions([str(p) for p in paths], dry_run=True, report=out, progress=quiet())
    summary = IngestRun(settings or load_settings(), PLAN, options).run()
    return [json.loads(line) for line in out.getvalue().splitlines()], summary


def real_run(
    paths: list[Path],
    tmp_path: Path,
    sink: ListSink,
    chunk_size: int = 1000,
    checkpoint_lines: int = runner.CHECKPOINT_LINES,
) -> dict:
    options = IngestOptions(
        [str(p) for p in paths],
        checkpoint_dir=tmp_path / "ck",
        rejects=tmp_path / "rejects.tsv",
        progress=quiet(),
        chunk_size=chunk_size,
        checkpoint_lines=checkpoint_lines,
    )
    return IngestRun(load_settings(), PLAN, options, lambda: sink).run()


def test_dry_run_writes_one_contract_object_per_line(tmp_path: Path) -> None:
    # Given a file of mixed lines, one empty
    path = tmp_path / "mixed.txt"
    path.write_text(MIXED)
    # When dry-run
    report, summary = dry_run([path])
    # Then one object per line, in order, with exactly the contract's keys
    assert [r["line"] for r in report] == list(range(1, 10))
    assert all(list(r) == CONTRACT_KEYS for r in report)
    assert [(r["status"], r["reason"]) for r in report] == [
        ("accepted", None),
        ("duplicate", None),
        ("rejected", "empty"),
        ("rejected", "letters"),
        ("accepted", None),
        ("rejected", "non_personal"),
        ("rejected", "unallocated"),
        ("accepted", None),
        ("accepted", None),
    ]
    assert report[0] | {"source": None} == {
        "source": None,
        "line": 1,
        "status": "accepted",
        "reason": None,
        "e164": "+79161234567",
        "region": "RU-MOW_MOS",
        "tz": "Europe/Moscow",
    }
    # And multi-zone regions have no single tz; occupied territories are their own regions
    assert (report[4]["region"], report[4]["tz"]) == ("UA-14", None)
    assert (report[7]["region"], report[7]["tz"]) == ("RU-SA", None)
    assert (report[8]["region"], report[8]["tz"]) == ("UA-40", "Europe/Simferopol")
    assert summary["accepted"] + summary["duplicate"] + summary["rejected"] == summary["lines"] == 9


def test_excluded_regions_are_rejected_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(MIXED)
    report, summary = dry_run([path], load_settings(regions_exclude=["occupied"]))
    assert [r["reason"] for r in report if r["region"] in {"UA-14", "UA-40"}] == [
        "excluded_region",
        "excluded_region",
    ]
    assert summary["reasons"]["excluded_region"] == 2


def test_duplicates_span_sources_but_bad_lines_are_rejected_each_time(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("9161234567\nabc\n")
    b.write_text("89161234567\nabc\n")
    report, _ = dry_run([a, b])
    assert [r["status"] for r in report] == ["accepted", "rejected", "duplicate", "rejected"]


def test_hostile_input_never_crashes_and_counts_add_up(tmp_path: Path) -> None:
    # Given invalid UTF-8, NUL bytes, a huge line and CRLF endings
    path = tmp_path / "hostile.txt"
    path.write_bytes(b"\xff\xfe\n9161\x00234567\n" + b"7" * 100_000 + b"\n9161234567\r\n")
    report, summary = dry_run([path])
    assert [r["reason"] for r in report] == ["unparseable"] * 3 + [None]
    assert summary["lines"] == 4


def test_real_run_sends_region_chunks_and_a_rerun_sends_nothing(tmp_path: Path) -> None:
    # Given 5,000 distinct allocated numbers
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"+7{n}\n" for n in range(9161000000, 9161005000)) + "junk\n")
    sink = ListSink()
    # When ingested with chunks of 1,000
    summary = real_run([path], tmp_path, sink, chunk_size=1000)
    # Then all numbers arrive once, in chunks of one region, sequenced from 0
    assert sorted(n for c in sink.chunks for n in c.numbers) == list(range(9161000000, 9161005000))
    assert {c.region for c in sink.chunks} == {"RU-MOW_MOS"}
    assert [c.seq for c in sink.chunks] == list(range(len(sink.chunks)))
    assert all(len(c.numbers) == 1000 for c in sink.chunks)
    assert summary["sources"][0]["state"] == "ingested"
    assert (tmp_path / "rejects.tsv").read_bytes() == f"{path}\t5001\tletters\tjunk\n".encode()
    # When the same file is ingested again, Then nothing is sent and it says so
    again = ListSink()
    summary = real_run([path], tmp_path, again)
    assert again.chunks == []
    assert summary["sources"][0]["state"] == "already ingested"


def test_resume_after_a_crash_loses_no_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given small blocks and frequent checkpoints, and a sink that dies mid-file
    monkeypatch.setattr(sources, "READ_BYTES", 4096)
    path = tmp_path / "numbers.txt"
    numbers = list(range(9161000000, 9161020000))
    path.write_text("".join(f"{n}\n" for n in numbers))
    first = ListSink(fail_after=30)
    with pytest.raises(IngestError):
        real_run([path], tmp_path, first, chunk_size=100, checkpoint_lines=1000)
    # When run again
    second = ListSink()
    summary = real_run([path], tmp_path, second, chunk_size=100, checkpoint_lines=1000)
    # Then every number was sent, the run resumed, and the counts cover the whole file
    sent = {n for c in first.chunks + second.chunks for n in c.numbers}
    assert sent == set(numbers)
    assert summary["sources"][0]["state"] == "resumed"
    assert summary["lines"] == summary["accepted"] == len(numbers)
    assert second.chunks[0].seq > first.chunks[0].seq
