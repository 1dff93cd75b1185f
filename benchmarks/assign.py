"""Benchmark: Kafka → Redis queues with dedupe on, one assigner worker.

Produces N numbers (chunks of one region each) into a private topic, then in the same
run measures:
  (a) the assigner worker draining the topic into the ready lists (dedupe on), and
  (b) the baseline: a bare consumer of the same topic that only decodes the chunks,
and prints numbers/s for each, the ratio a/b, and Redis bytes per queued number
(ready lists plus dedupe bitmaps, from MEMORY USAGE). Ends with one JSON line.

Run on the local stack: ``phonebank stack up; python benchmarks/assign.py [--numbers N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid

import redis

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import (
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
    partition_for_region,
)
from phonebank.leases.keys import KeyScheme
from phonebank.leases.queues import known_regions
from phonebank.settings import Settings, load_settings, namespaced

#: numbers per chunk, as ingest produces them
CHUNK_NUMBERS = 1000


def produce(settings: Settings, total: int, seed: int) -> None:
    """Random allocated-looking numbers of a few regions, in single-region chunks."""
    rng = random.Random(seed)
    regions = ["RU-MOW", "RU-SPE", "RU-KDA", "RU-NVS", "RU-SVE", "RU-TA", "UA-43", "RU-PRI"]
    producer = make_producer(settings)
    for seq in range(total // CHUNK_NUMBERS):
        region = regions[seq % len(regions)]
        prefix = 900 + seq % 90
        numbers = [prefix * 10**7 + rng.randrange(10**7) for _ in range(CHUNK_NUMBERS)]
        chunk = NumberChunk(
            campaign=settings.campaign, region=region, source="bench", seq=seq, numbers=numbers
        )
        producer.send(
            settings.numbers_topic,
            key=region.encode(),
            value=chunk.encode(),
            partition=partition_for_region(region, settings.numbers_partitions),
        )
    producer.flush()
    producer.close()


def drain_baseline(settings: Settings, total: int) -> float:
    """Seconds for a bare consumer to read and decode every chunk."""
    consumer = make_consumer(
        settings, f"{settings.assigner_group}-baseline", settings.numbers_topic, max_poll_records=50
    )
    seen = 0
    start = time.perf_counter()
    while seen < total:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                seen += len(NumberChunk.decode(record.value).numbers)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def drain_assigner(settings: Settings, client: redis.Redis, total: int) -> float:
    """Seconds for the assigner worker to queue every number (dedupe on)."""
    worker = AssignerWorker(settings, client)
    handled = 0
    start = time.perf_counter()
    while handled < total // CHUNK_NUMBERS:
        handled += worker.step()
    elapsed = time.perf_counter() - start
    worker.consumer.close(autocommit=False)
    return elapsed


def redis_bytes(client: redis.Redis, settings: Settings) -> tuple[int, int, int]:
    """(ready-list bytes, dedupe-bitmap bytes, queued numbers)."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    lists = bitmaps = queued = 0
    for region in known_regions(client, scheme):
        ready = scheme.region(region).ready
        lists += int(client.memory_usage(ready, samples=0) or 0)
        queued += int(client.llen(ready))
    for key in client.scan_iter(match=scheme.seen("*"), count=1000):
        bitmaps += int(client.memory_usage(key, samples=0) or 0)
    return lists, bitmaps, queued


def cleanup(settings: Settings, client: redis.Redis) -> None:
    for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        client.unlink(key)
    admin = make_admin(settings)
    admin.delete_topics([settings.numbers_topic, settings.outcomes_topic])
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    NumberingPlan.default()  # warm imports outside the timed part
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = namespaced(
        load_settings(), namespace, queue_high_watermark=args.numbers + 1, queue_low_watermark=1
    )
    client = redis.Redis.from_url(settings.redis_url)
    ensure_topics(settings)
    try:
        produce(settings, args.numbers, args.seed)
        baseline_s = drain_baseline(settings, args.numbers)
        assigner_s = drain_assigner(settings, client, args.numbers)
        lists, bitmaps, queued = redis_bytes(client, settings)
    finally:
        cleanup(settings, client)
    figures = {
        "benchmark": "assign",
        "numbers": args.numbers,
        "assigner_numbers_per_s": round(args.numbers / assigner_s),
        "baseline_consume_numbers_per_s": round(args.numbers / baseline_s),
        "ratio_assigner_to_baseline": round(baseline_s / assigner_s, 3),
        "queued": queued,
        "ready_list_bytes_per_queued_number": round(lists / max(queued, 1), 2),
        "dedupe_bitmap_bytes": bitmaps,
        "dedupe_bitmap_bytes_per_number_at_40m": round(bitmaps / 40_000_000, 2),
    }
    print(f"assigner (dedupe on): {figures['assigner_numbers_per_s']:,} numbers/s")
    print(
        f"baseline (consume + decode only): {figures['baseline_consume_numbers_per_s']:,}"
        f" numbers/s; ratio {figures['ratio_assigner_to_baseline']}"
    )
    print(
        f"Redis: {figures['ready_list_bytes_per_queued_number']} bytes per queued number "
        f"in the ready lists ({queued:,} queued); dedupe bitmaps {bitmaps / 2**20:.1f} MiB "
        f"(fixed, 1.25 MB per 3-digit prefix touched)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
