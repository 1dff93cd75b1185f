"""Ingest into the real local Kafka: chunks land on their partition; re-runs send nothing."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
from kafka import KafkaConsumer, TopicPartition

from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import partition_for_region
from phonebank.infra.redis_client import connect
from phonebank.ingest.chunks import KafkaSink
from phonebank.ingest.progress import Progress
from phonebank.ingest.runner import IngestOptions, IngestRun
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings, child_env
from tests.helpers import iter_generated

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

#: seconds to wait for every record to be readable
READ_TIMEOUT_SECONDS = 30


def ingest(settings: Settings, path: Path, checkpoints: Path) -> dict[str, Any]:
    options = IngestOptions(
        [str(path)],
        checkpoint_dir=checkpoints,
        chunk_size=250,
        rejects=checkpoints / "rejects.tsv",
        progress=Progress(io.StringIO(), interactive=False),
    )
    return IngestRun(settings, NumberingPlan.default(), options, lambda: KafkaSink(settings)).run()


def read_all(settings: Settings) -> list[tuple[int, bytes, NumberChunk]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = [
            TopicPartition(settings.numbers_topic, p) for p in range(settings.numbers_partitions)
        ]
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
    client = connect(settings, decode_responses=True)
    try:
        counts = cast(
            dict[str, str],
            client.hgetall(KeyScheme(settings.key_prefix, settings.campaign).ingested),
        )
    finally:
        client.close()
    return Counter({region: int(count) for region, count in counts.items()})


def test_kill_9_mid_file_then_rerun_loses_no_line(settings: Settings, tmp_path: Path) -> None:
    # Given a file of 400,000 numbers and a checkpoint every 20,000 lines
    numbers = [n for _, n in iter_generated(NumberingPlan.default(), 400_000, seed=9)]
    path = tmp_path / "numbers.txt"
    path.write_text("".join(f"+7{n}\n" for n in numbers))
    checkpoints = tmp_path / "ck"
    env = child_env(settings.model_copy(update={"ingest_metrics_port": 0}))
    command = [
        sys.executable,
        "-m",
        "phonebank.cli",
        "ingest",
        str(path),
        "--checkpoint-dir",
        str(checkpoints),
        "--checkpoint-lines",
        "20000",
        "--rejects",
        str(tmp_path / "rejects.tsv"),
        "--summary",
        str(tmp_path / "summary.json"),
    ]
    # When the ingest is killed with SIGKILL once it has checkpointed part of the file
    victim = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    while checkpoint_position(checkpoints) == 0:
        assert victim.poll() is None, "the ingest finished before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = checkpoint_position(checkpoints)
    # And run again to the end
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    # Then it resumed, and every number of the file is in Kafka
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sources"][0]["state"] == "resumed"
    assert 0 < killed_at < len(numbers)
    sent = {n for _, _, chunk in read_all(settings) for n in chunk.numbers}
    assert sent == set(numbers)


def checkpoint_position(folder: Path) -> int:
    """Lines the (single) checkpoint in ``folder`` has passed, 0 if none yet."""
    for path in folder.glob("*.json"):
        try:
            return int(json.loads(path.read_text()).get("position", 0))
        except (ValueError, OSError):
            return 0
    return 0
