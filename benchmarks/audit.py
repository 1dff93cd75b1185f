"""Benchmark: ``phonebank audit`` of a campaign of N numbers (default 1M), against a plain read.

Builds a private namespace on the local stack through the services' own paths: ingest's
Kafka sink (8 regions), one assigner worker queueing everything, volunteers leasing and
answering (``--calls``, with every kind of outcome) plus leases left to expire and be
reaped, the relay to Kafka and a reporter checkpoint. Then, in the same run, measures
  (a) the audit (every check, as ``phonebank audit`` runs it), and
  (b) the baseline: a plain read of the same topics (every record fetched and decoded)
      and the same Redis keys (the same commands in the same pipelines, no checks),
and prints seconds for each and the ratio a/b. Ends with one JSON line.

Run on the local stack: ``python benchmarks/audit.py [--numbers N] [--calls C]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import time
import uuid
from zoneinfo import ZoneInfo

import numpy as np
from prometheus_client import CollectorRegistry

from phonebank.assigner.worker import AssignerWorker
from phonebank.domain import chunk_codec, clock
from phonebank.domain.records import Outcome
from phonebank.domain.regions import REGIONS
from phonebank.infra.kafka import ensure_topics, make_admin, make_producer, read_topic
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.ingest.chunks import EncodedChunk, KafkaSink
from phonebank.leases.client import LeaseClient
from phonebank.leases.keys import KeyScheme
from phonebank.leases.reaper import Reaper
from phonebank.leases.relay import OutcomeRelay, RelayMetrics
from phonebank.ops import kafka_state, redis_state
from phonebank.ops.audit import audit, read_kafka, read_redis
from phonebank.reporter.consumer import ReporterService
from phonebank.settings import Settings, load_settings, namespaced

#: numbers per chunk, as ingest produces them
CHUNK_NUMBERS = 1000
#: the campaign's regions (all open at noon Moscow time)
BENCH_REGIONS = ["RU-MOW", "RU-SPE", "RU-KDA", "RU-NVS", "RU-SVE", "RU-TA", "UA-43", "RU-PRI"]
#: answers given, in turn
ANSWERS = [
    Outcome.NO_ANSWER,
    Outcome.CONVERSATION,
    Outcome.BUSY,
    Outcome.REFUSED,
    Outcome.CALLBACK,
    Outcome.WRONG_NUMBER,
    Outcome.VOICEMAIL,
    Outcome.DO_NOT_CALL,
    Outcome.SKIPPED,
]
#: one lease in this many is abandoned (left to expire and be reaped)
ABANDON_EVERY = 10
#: the script clock: a Tuesday noon in Moscow (every benchmark region is open)
NOON_MOSCOW = dt.datetime(2026, 3, 10, 12, tzinfo=ZoneInfo("Europe/Moscow"))
#: milliseconds of margin for the audit's snapshot instant past the last client's clock
SNAPSHOT_MARGIN_MS = 10 * 60_000


def ingest(settings: Settings, total: int, seed: int) -> None:
    """Random numbers of the benchmark regions, through ingest's sink (counts ingested)."""
    rng = np.random.default_rng(seed)
    sink = KafkaSink(settings)
    for seq in range(total // CHUNK_NUMBERS):
        prefix = 900 + seq % 96  # a prefix belongs to one region, as in the registry
        region = BENCH_REGIONS[prefix % len(BENCH_REGIONS)]
        numbers = prefix * 10**7 + rng.integers(0, 10**7, CHUNK_NUMBERS, dtype=np.int64)
        value = chunk_codec.encode(settings.campaign, region, "bench", seq, np.sort(numbers))
        sink.send(EncodedChunk(region, seq, CHUNK_NUMBERS, value))
    sink.flush()
    sink.close()


def queue_all(settings: Settings, client: RedisClient, total: int) -> None:
    """One assigner worker until every chunk is handled."""
    worker = AssignerWorker(settings, client)
    handled = 0
    while handled < total // CHUNK_NUMBERS:
        handled += worker.step()
    worker.consumer.close(autocommit=False)


def call(settings: Settings, client: RedisClient, calls: int, offset_ms: int) -> None:
    """``calls`` leases: most answered, one in ``ABANDON_EVERY`` left to expire, reaped."""
    zones = {code: REGIONS[code].zones for code in BENCH_REGIONS}
    leases = LeaseClient(settings, client, zones, clock_offset_ms=offset_ms)
    abandoned = 0
    for index in range(calls):
        lease = leases.acquire(f"volunteer-{index}")
        if lease is None:
            continue
        if index % ABANDON_EVERY == 0:
            abandoned += 1
            continue
        leases.complete(lease.lease_id, lease.token, ANSWERS[index % len(ANSWERS)])
    late = offset_ms + (settings.lease_ttl_seconds + 1) * 1000
    Reaper(settings, client, clock_offset_ms=late, max_batches=10**6).reap_all()


def relay_and_report(settings: Settings, client: RedisClient) -> None:
    """Relay every event to Kafka, then let a reporter count them and checkpoint."""
    producer = make_producer(settings)
    relay = OutcomeRelay(settings, client, producer, RelayMetrics(CollectorRegistry()))
    while relay.relay_all():
        pass
    producer.close()
    expected = len(kafka_state.read_outcomes(settings).events)
    service = ReporterService(settings)
    consumer = service.open_consumer()
    while service.status.aggregator.applied < expected:
        service.poll_once(consumer)
    service.checkpoint(consumer, force=True)
    consumer.close()


def baseline(settings: Settings, client: RedisClient) -> float:
    """Seconds to read what the audit reads, with no check: the same reads, decoded."""
    start = time.perf_counter()
    read_redis(client, settings)
    read_kafka(settings)
    return time.perf_counter() - start


def plain_read(settings: Settings, client: RedisClient) -> float:
    """Seconds for the barest read: every record of the three topics and, per region, the
    same commands in one pipeline (replies left undecoded)."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    start = time.perf_counter()
    for topic in (settings.numbers_topic, settings.outcomes_topic, settings.dnc_topic):
        for _ in read_topic(settings, topic):
            pass
    redis_state.read_seen(client, scheme)
    pipe = client.pipeline(transaction=False)
    for region in BENCH_REGIONS:
        keys = scheme.region(region)
        pipe.lrange(keys.ready, 0, -1)
        pipe.zrange(keys.due, 0, -1)
        pipe.hgetall(keys.holders)
        pipe.xrange(keys.outcomes)
    pipe.execute()
    list(redis_state.lease_keys(client, scheme))
    return time.perf_counter() - start


def cleanup(settings: Settings, client: RedisClient) -> None:
    for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        client.unlink(key)
    admin = make_admin(settings)
    mine = [t for t in admin.list_topics() if t.startswith(settings.key_prefix + ".")]
    admin.delete_topics(mine)
    admin.close()


def bench_settings(numbers: int) -> Settings:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    return namespaced(
        load_settings(),
        namespace,
        queue_high_watermark=numbers + 1,
        queue_low_watermark=1,
        regions_include=BENCH_REGIONS,
        # a throwaway secret for this run's volunteers (services refuse the default)
        volunteer_secret=secrets.token_urlsafe(32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = bench_settings(args.numbers)
    client = connect(settings)
    offset_ms = int(NOON_MOSCOW.timestamp() * 1000) - clock.now_ms()
    ensure_topics(settings)
    try:
        ingest(settings, args.numbers, args.seed)
        queue_all(settings, client, args.numbers)
        call(settings, client, args.calls, offset_ms)
        relay_and_report(settings, client)
        margin = offset_ms + (settings.lease_ttl_seconds + 1) * 1000 + SNAPSHOT_MARGIN_MS
        report = audit(settings, client, clock_offset_ms=margin)
        baseline_s = baseline(settings, client)
        plain_s = plain_read(settings, client)
    finally:
        cleanup(settings, client)
        client.close()
    figures = {
        "benchmark": "audit",
        "numbers": args.numbers,
        "accepted": report.numbers.get("accepted", 0),
        "events": report.events.get("kafka", 0),
        "violations": len(report.violations),
        "violations_by_kind": {k: n for k, n in report.by_kind().items() if n},
        "audit_s": round(report.seconds, 2),
        "baseline_read_and_decode_s": round(baseline_s, 2),
        "plain_read_s": round(plain_s, 2),
        "ratio_audit_to_read_and_decode": round(report.seconds / baseline_s, 2),
        "ratio_audit_to_plain_read": round(report.seconds / plain_s, 2),
        "target_s": 60,
    }
    print(
        f"audit of {figures['accepted']:,} numbers, {figures['events']:,} events: "
        f"{figures['audit_s']} s, {figures['violations']} violations (target ≤ 60 s)"
    )
    print(
        f"baseline: the same reads decoded {figures['baseline_read_and_decode_s']} s "
        f"(ratio {figures['ratio_audit_to_read_and_decode']}); plain read "
        f"{figures['plain_read_s']} s (ratio {figures['ratio_audit_to_plain_read']})"
    )
    for violation in report.violations[:5]:
        print("violation:", violation.to_json())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
