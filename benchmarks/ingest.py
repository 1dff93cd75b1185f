"""Ingest benchmark: classify throughput, naive libphonenumber baseline, end-to-end to Kafka.

Generates N lines (default 5,000,000) in mixed real-world formats from the shared
registry (about 3 % junk: letters, short numbers, 8-800, blanks), then in one run:

(a) the project's classify path: read the file in blocks, normalise, look up regions,
    dedupe — numbers (lines) per second;
(b) a naive per-line baseline on a subset: ``phonenumbers.parse`` + ``is_valid_number``
    + geocoder description, and the ratio a/b;
(c) end to end into the local Kafka (``phonebank stack up``): a real ``ingest`` run into
    a fresh topic — skipped with ``--no-kafka`` or when the broker is unreachable — with
    the bytes per number the broker stored (its log segments); and, as the same-run
    baseline of the compact chunk format, (d) the same run writing version-1 JSON chunks.

Prints the figures and peak RSS, and ends with one JSON line holding them.

    python benchmarks/ingest.py [--lines N] [--baseline-lines N] [--no-kafka]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import phonenumbers
from phonenumbers import geocoder

from phonebank.domain.numbering import REGION_CODES, NumberingPlan
from phonebank.domain.records import NumberChunk
from phonebank.domain.regions import REGIONS
from phonebank.infra.kafka import make_admin
from phonebank.infra.redis_client import connect
from phonebank.ingest import runner
from phonebank.ingest.chunks import Chunker, EncodedChunk, KafkaSink
from phonebank.ingest.classify import Classifier
from phonebank.ingest.progress import Progress
from phonebank.ingest.runner import IngestOptions, IngestRun
from phonebank.ingest.sources import expand, read_blocks
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings, load_settings, namespaced

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/numbering-plan/DEF-9xx.csv"
STACK_KAFKA_DATA = Path(__file__).resolve().parents[1] / ".stack/kafka-data"
JUNK = ["abc", "916123", "8 800 555 35 35", "", "+380 50 123 45 67", "тел. нет"]


STYLES = (
    "+7 ({0}) {1}-{2}-{3}",
    "8 {0} {1} {2} {3}",
    "8{0}{1}{2}{3}",
    "7{0}{1}{2}{3}",
    "{0}{1}{2}{3}",
    "+7.{0}.{1}.{2}.{3}",
    "tel:+7{0}{1}{2}{3}",
    "+7{0}{1}{2}{3}",
)


def format_lines(numbers: np.ndarray, rng: np.random.Generator) -> bytes:
    """Numbers written the ways people keep them, with about 3 % junk mixed in."""
    styles = rng.integers(0, len(STYLES), len(numbers)).tolist()
    junk = (rng.random(len(numbers)) < 0.03).tolist()
    lines = []
    for number, style, bad in zip(numbers.tolist(), styles, junk, strict=True):
        if bad:
            lines.append(JUNK[style % len(JUNK)])
            continue
        s = str(number)
        lines.append(STYLES[style].format(s[:3], s[3:6], s[6:8], s[8:]))
    return ("\n".join(lines) + "\n").encode()


def make_input(path: Path, plan: NumberingPlan, count: int) -> None:
    rng = np.random.default_rng(2026)
    with path.open("wb") as out:
        for start in range(0, count, 500_000):
            numbers = plan.random_allocated(rng, min(500_000, count - start))
            out.write(format_lines(numbers, rng))


def bench_classify(path: Path, plan: NumberingPlan) -> tuple[float, int]:
    classifier = Classifier(plan, REGIONS)
    started, lines = time.perf_counter(), 0
    for block in read_blocks(expand([str(path)])[0]):
        lines += len(classifier.classify(block.data, block.unparseable))
    return lines / (time.perf_counter() - started), lines


def bench_baseline(path: Path, count: int) -> float:
    with path.open(encoding="utf-8") as handle:
        lines = [next(handle).rstrip("\n") for _ in range(count)]
    started = time.perf_counter()
    for line in lines:
        try:
            number = phonenumbers.parse(line, "RU")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            geocoder.description_for_number(number, "ru")
    return count / (time.perf_counter() - started)


class JsonChunker(Chunker):
    """The chunk encoding ingest had before the compact format: a pydantic model of the
    numbers as a list, dumped as JSON (wire format version 1)."""

    def _emit(self, region: int, numbers: np.ndarray) -> None:
        chunk = NumberChunk(
            campaign=self.campaign,
            region=REGION_CODES[region],
            source=self.source_id,
            seq=self.next_seq,
            numbers=numbers.tolist(),
        )
        value = chunk.model_dump_json().encode()
        self.sink.send(EncodedChunk(chunk.region, chunk.seq, len(numbers), value))
        self.next_seq += 1
        self.chunks_sent += 1


def topic_bytes(topic: str) -> int | None:
    """Bytes of the topic's log segments in the local stack's broker, if it is local."""
    if not STACK_KAFKA_DATA.is_dir():
        return None
    return sum(f.stat().st_size for f in STACK_KAFKA_DATA.glob(f"{topic}-*/*.log"))


def drop_ingested(settings: Settings) -> None:
    """Delete the per-region ingested counts the run wrote in its namespace."""
    client = connect(settings)
    try:
        client.delete(KeyScheme(settings.key_prefix, settings.campaign).ingested)
    finally:
        client.close()


def bench_kafka(
    path: Path, plan: NumberingPlan, tmp: Path, chunker: type[Chunker] = Chunker
) -> tuple[float, float | None] | None:
    """(numbers/s, bytes a number on the broker's disk) of one ingest into a fresh topic."""
    settings = namespaced(load_settings(), f"bench{uuid.uuid4().hex[:8]}")
    topic = settings.numbers_topic
    try:
        make_admin(settings).close()
    except Exception as exc:  # the broker is optional for this benchmark
        print(f"(c) skipped: Kafka unreachable ({exc})", file=sys.stderr)
        return None
    options = IngestOptions(
        [str(path)],
        checkpoint_dir=tmp / f"ck-{topic}",
        rejects=tmp / "rej.tsv",
        progress=Progress(io.StringIO(), interactive=False),
    )
    runner.Chunker = chunker  # type: ignore[attr-defined]  # the baseline swaps the encoding only
    try:
        summary = IngestRun(settings, plan, options, lambda: KafkaSink(settings)).run()
        stored = topic_bytes(topic)
    finally:
        runner.Chunker = Chunker  # type: ignore[attr-defined]
        admin = make_admin(settings)
        admin.delete_topics([topic])
        admin.close()
        drop_ingested(settings)
    per_number = None if stored is None else stored / int(summary["accepted"])
    return float(summary["lines"] / summary["seconds"]), per_number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--baseline-lines", type=int, default=20_000)
    parser.add_argument("--no-kafka", action="store_true")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} not found: the benchmark needs the shared registry")
    plan = NumberingPlan.load([SHARED])
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        path = tmp / "numbers.txt"
        started = time.perf_counter()
        make_input(path, plan, args.lines)
        print(
            f"input: {args.lines:,} lines, {path.stat().st_size / 2**20:.0f} MiB, "
            f"made in {time.perf_counter() - started:.1f} s"
        )
        classify_rate, lines = bench_classify(path, plan)
        print(f"(a) classify:  {classify_rate:>12,.0f} numbers/s ({lines:,} lines, 1 process)")
        baseline_rate = bench_baseline(path, args.baseline_lines)
        print(
            f"(b) naive phonenumbers: {baseline_rate:>10,.0f} numbers/s "
            f"({args.baseline_lines:,} lines)"
        )
        ratio = classify_rate / baseline_rate
        print(f"    ratio a/b: {ratio:,.0f}x")
        compact = None if args.no_kafka else bench_kafka(path, plan, tmp)
        old = None if compact is None else bench_kafka(path, plan, tmp, JsonChunker)
        for label, result in (("(c) end to end into Kafka", compact), ("(d) same, JSON", old)):
            if result is not None:
                print(f"{label}: {result[0]:>10,.0f} numbers/s, {result[1] or 0:.2f} B/number")
        if compact is not None and old is not None:
            print(f"    rate ratio c/d: {compact[0] / old[0]:.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:,.0f} MiB")
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "lines": args.lines,
                "classify_numbers_per_second": round(classify_rate),
                "baseline_numbers_per_second": round(baseline_rate),
                "ratio": round(ratio, 1),
                "kafka_numbers_per_second": None if compact is None else round(compact[0]),
                "kafka_bytes_per_number": None if compact is None else compact[1],
                "json_kafka_numbers_per_second": None if old is None else round(old[0]),
                "json_kafka_bytes_per_number": None if old is None else old[1],
                "peak_rss_mib": round(peak_mib),
            }
        )
    )


if __name__ == "__main__":
    main()
