"""N assigners on the 96-partition numbers topic of the three-broker Kafka.

Three ``phonebank assigner`` processes share the group; one is killed with SIGKILL, one
is added, one is stopped with SIGSTOP past the session timeout and continued. The
queues are small (backpressure holds and resumes partitions all along) and the test
drains them as volunteers would. Judges: the group's committed offsets (every
partition to its end) and Redis (every number queued exactly once: drained or still
ready, and the assigners' ``queued`` count equals the distinct numbers).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonebank.domain.records import NumberChunk
from phonebank.infra.kafka import ensure_topics, make_admin, make_producer
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme
from phonebank.settings import Settings, child_env
from tests.kafka_cluster.helpers import (
    end_offsets,
    exactly_once,
    fully_committed,
    queued_numbers,
    queued_total,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka_cluster]

#: partitions of the numbers topic (the production default)
PARTITIONS = 96
#: chunks per partition × numbers per chunk
CHUNKS_PER_PARTITION = 3
CHUNK_NUMBERS = 100
#: regions the chunks belong to (12 partitions feed each region)
REGIONS = ("RU-MOW", "RU-SPE", "RU-SVE", "RU-KDA", "RU-NVS", "RU-TA", "RU-BA", "RU-ROS")
#: numbers of each region
PER_REGION = PARTITIONS // len(REGIONS) * CHUNKS_PER_PARTITION * CHUNK_NUMBERS
#: ready numbers per region the assigners fill up to, and refill below
HIGH_WATERMARK = 600
LOW_WATERMARK = 300
#: the smallest session timeout the brokers accept (ms): a stopped assigner leaves fast
SESSION_TIMEOUT_MS = 6000
#: numbers popped from each ready list per drain (a crowd of volunteers)
DRAIN_PER_REGION = 200


def chunks() -> list[tuple[int, NumberChunk]]:
    """``(partition, chunk)``: 3 chunks of 100 distinct numbers on each of the 96."""
    return [
        (
            partition,
            NumberChunk(
                campaign="default",
                region=REGIONS[partition % len(REGIONS)],
                source="n-assigners",
                seq=partition * CHUNKS_PER_PARTITION + index,
                numbers=[
                    9_000_000_000 + partition * 100_000 + index * 1000 + i
                    for i in range(CHUNK_NUMBERS)
                ],
            ),
        )
        for partition in range(PARTITIONS)
        for index in range(CHUNKS_PER_PARTITION)
    ]


def produce_on(settings: Settings, placed: list[tuple[int, NumberChunk]]) -> None:
    """Each chunk on its given partition."""
    producer = make_producer(settings)
    for partition, chunk in placed:
        producer.send(
            settings.numbers_topic,
            key=chunk.region.encode(),
            value=chunk.encode(),
            partition=partition,
        )
    producer.flush()
    producer.close()


def start_assigner(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``phonebank assigner`` in its own process, on the test's namespace and brokers,
    its output in ``log``."""
    env = child_env(settings)
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "phonebank.cli", "assigner", "--no-metrics"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def assignment(settings: Settings) -> dict[str, set[int]]:
    """Member id → partitions of the numbers topic, for each member of the group now."""
    admin = make_admin(settings)
    try:
        group = admin.describe_groups([settings.assigner_group])[settings.assigner_group]
    finally:
        admin.close()
    return {
        str(member["member_id"]): {
            partition
            for assigned in (member.get("member_assignment") or {}).get("assigned_partitions", ())
            if assigned["topic"] == settings.numbers_topic
            for partition in assigned["partitions"]
        }
        for member in group.get("members", ())
    }


def members(settings: Settings) -> set[str]:
    """Member ids of the assigner group now."""
    return set(assignment(settings))


def shared_by_three(settings: Settings) -> bool:
    """Three members, each owning partitions, together all of them."""
    owned = list(assignment(settings).values())
    return len(owned) == 3 and all(owned) and set().union(*owned) == set(range(PARTITIONS))


class Volunteers:
    """Take numbers from the ready lists (``LPOP``), remembering each one taken."""

    def __init__(self, client: RedisClient, settings: Settings) -> None:
        self.client = client
        self.scheme = KeyScheme(settings.key_prefix, settings.campaign)
        self.taken: Counter[int] = Counter()
        #: the deepest ready list seen before a drain (the watermark holds it)
        self.deepest = 0

    def drain(self) -> int:
        """Take up to ``DRAIN_PER_REGION`` numbers of each region; returns how many."""
        pipe = self.client.pipeline(transaction=False)
        for region in REGIONS:
            pipe.llen(self.scheme.region(region).ready)
            pipe.lpop(self.scheme.region(region).ready, DRAIN_PER_REGION)
        replies = pipe.execute()
        self.deepest = max(self.deepest, *map(int, replies[::2]))
        popped = [int(n) for reply in replies[1::2] for n in reply or ()]
        self.taken.update(popped)
        return len(popped)


@pytest.fixture
def wide(cluster_settings: Settings) -> Settings:
    """The test's namespace on 96 partitions, small queues, the shortest session."""
    settings = cluster_settings.model_copy(
        update={
            "numbers_partitions": PARTITIONS,
            "queue_high_watermark": HIGH_WATERMARK,
            "queue_low_watermark": LOW_WATERMARK,
            "kafka_session_timeout_ms": SESSION_TIMEOUT_MS,
        }
    )
    ensure_topics(settings)
    return settings


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The assigner processes a test starts; each is continued and stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
    for process in started:
        process.wait(timeout=60)


def test_three_assigners_killed_added_stopped_queue_every_number_once(
    wide: Settings,
    redis_client: RedisClient,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """Given 28,800 numbers on all 96 partitions and three assigner processes, with
    queues of 600 per region that volunteers drain,
    When one assigner is killed with SIGKILL and a fourth is started, then one is
    stopped with SIGSTOP until the group has dropped it, and continued,
    Then every partition is committed to its end, every number was queued exactly once
    (taken or still ready), the stopped assigner is back in the group and no process
    died; the three members share all 96 partitions."""
    settings = wide
    placed = chunks()
    produce_on(settings, placed)
    volunteers = Volunteers(redis_client, settings)
    logs = [tmp_path / f"assigner-{index}.log" for index in range(4)]
    processes.extend(start_assigner(settings, logs[index]) for index in range(3))
    wait_for("three members", lambda: len(members(settings)) == 3)
    first = members(settings)
    wait_for("regions filled", lambda: queued_total(redis_client, settings) >= HIGH_WATERMARK)
    # When one is killed and one added
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait()
    processes.append(start_assigner(settings, logs[3]))
    wait_for("the dead replaced", lambda: progressed(settings, volunteers, first, 3, 1))
    # And one is stopped past the session timeout, then continued
    before_stop = members(settings)
    processes[1].send_signal(signal.SIGSTOP)
    wait_for("the stopped one dropped", lambda: progressed(settings, volunteers, before_stop, 2, 0))
    after_stop = members(settings)  # read while it is still stopped: it cannot rejoin first
    processes[1].send_signal(signal.SIGCONT)
    wait_for("the stopped one back", lambda: progressed(settings, volunteers, after_stop, 3, 1))
    # Then everything is consumed, once, and the three share every partition
    wait_for("every partition consumed", lambda: drained_to_end(settings, volunteers))
    wait_for("the partitions shared by three", lambda: shared_by_three(settings))
    ends = end_offsets(settings, settings.numbers_topic)
    assert len(ends) == PARTITIONS and all(ends.values())
    expected = [n for _, chunk in placed for n in chunk.numbers]
    exactly_once(volunteers.taken + queued_numbers(redis_client, settings), expected)
    assert queued_total(redis_client, settings) == len(expected)
    assert all(process.poll() is None for process in processes[1:])
    print(f"assigner logs: {tmp_path}")
    # And the queues were held near their watermark (partitions paused, then resumed):
    # each region gets 3,600 numbers; the owners of its 12 partitions may each top it up
    # from the same depth read, so it may pass 600, but not by a region's worth
    assert HIGH_WATERMARK <= volunteers.deepest < PER_REGION // 2


def progressed(
    settings: Settings, volunteers: Volunteers, before: set[str], size: int, new: int
) -> bool:
    """Volunteers take numbers; whether the group has ``size`` members, ``new`` of them
    not in ``before``."""
    volunteers.drain()
    now = members(settings)
    return len(now) == size and len(now - before) == new


def drained_to_end(settings: Settings, volunteers: Volunteers) -> bool:
    """Volunteers take numbers; whether the group committed every partition's end."""
    volunteers.drain()
    return fully_committed(settings)
