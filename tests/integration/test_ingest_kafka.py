"""Ingest into the real local Kafka: chunks land on their partition; re-runs send nothing."""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from phonebank.core.kafka import partition_for_region
from phonebank.core.keys import KeyScheme
from phonebank.core.numbering import NumberingPlan
from phonebank.core.records import NumberChunk
from phonebank.core.settings import Settings
from phonebank.ingest.chunks import KafkaSink
from phonebank.ingest.generate import iter_generated
from phonebank.ingest.progress import Progress
from phonebank.ingest.runner import IngestOptions, IngestRun

pytestmark = pytest.mark.integration

#: seconds to wait for every record to be readable
READ_TIMEOUT_SECONDS = 30


def ingest(settings: Settings, path: Path, checkpoints: Path) -> dict:
    options = IngestOptions([str(path)], checkpoint_dir=checkpoints, chunk_size=250,
                            rejects=checkpoints / "rejects.tsv",
                            progress=Progress(io.StringIO(), interactive=False))
    return IngestRun(settings, NumberingPlan.default(), options,
                     lambda: KafkaSink(settings)).run()


def read_all(settings: Settings) -> list[tuple[int, bytes, NumberChunk]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             enable_auto_commit=False)
    try:
        parts = [TopicPartition(settings.numbers_topic, p)
                 for p in range(settings.numbers_partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: list[tuple[int, bytes, NumberChunk]] = []
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while len(records) < sum(ends.values()) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((r.partition, r.key, NumberChunk.decode(r.value)) for r in batch)
        return records
    finally:
        consumer.close()


def test_chunks_land_on_region_partitions_and_a_rerun_sends_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    # Given 3,000 allocated numbers of many regions in mixed formats, plus junk
    numbers = [n for _, n in iter_generated(NumberingPlan.default(), 3000, seed=42)]
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"8 {n}\n" if n % 2 else f"+7{n}\n" for n in numbers) + "junk\n")
    # When ingested into the real broker
    summary = ingest(settings, path, tmp_path / "ck")
    records = read_all(settings)
    # Then every accepted number arrives, each chunk keyed by its region on its partition
    assert summary["accepted"] == 3000 and summary["rejected"] == 1
    assert sorted(n for _, _, chunk in records for n in chunk.numbers) == sorted(numbers)
    assert len({chunk.region for _, _, chunk in records}) > 10
    for partition, key, chunk in records:
        assert key == chunk.region.encode()
        assert partition == partition_for_region(chunk.region, settings.numbers_partitions)
        assert chunk.campaign == settings.campaign and 0 < len(chunk.numbers) <= 250
    # And the numbers Kafka stored are counted per region for the reporter
    per_region = Counter(chunk.region for _, _, chunk in records for _ in chunk.numbers)
    assert ingested_counts(settings) == per_region
    # When the same file is ingested again, Then nothing more is sent and it says so
    again = ingest(settings, path, tmp_path / "ck")
    assert again["sources"][0]["state"] == "already ingested"
    assert again["chunks"] == 0
    assert len(read_all(settings)) == len(records)
    assert ingested_counts(settings) == per_region


def ingested_counts(settings: Settings) -> Counter[str]:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        counts = client.hgetall(KeyScheme(settings.key_prefix, settings.campaign).ingested)
    finally:
        client.close()
    return Counter({region: int(count) for region, count in counts.items()})
