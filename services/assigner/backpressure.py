"""Backpressure: hold a partition while its region's ready list is full, without stalling.

When a region's ready list reaches ``queue_high_watermark``, the worker *holds* the
chunk's partition: it seeks it back to the first chunk not queued and, once the fetcher
can hold no parsed record of it (after the next poll, or the one after), pauses it; the
partition resumes when the region falls below ``queue_low_watermark``.

Why the pause is deferred (kafka-python 3.0.12, ``Fetcher.fetched_records``; see
docs/upstream/kafka-python-fetcher-stall.md): records of a partition paused while they
sit in the fetcher's in-line slot are parked, and given back only when that slot is
``None``. A drained record set of another partition is falsy but not ``None``, so the
parked records are never given back, and the partition, having parked data, is never
fetched again: it starves with its numbers still in Kafka. Parsed records enter the slot
only inside a poll, which takes from each record set in turn until it has
``max_poll_records``: a set it moves past is drained, and one it stops in while records
remain is the last partition of the poll's result, which then holds exactly
``max_poll_records`` records. So after every poll the slot can hold undrained records of
that one partition at most, and a held partition is paused at once unless it is that
one (then after the next poll, which drops its stale records or returns them). Any
record of a held partition a poll returns is dropped and the partition sought back
again (the seek makes the fetcher drop the rest as stale). Raw fetch responses of a
paused partition are parked too, but those are restored correctly on resume.

A full region is looked at again after a delay that doubles (up to
:data:`RESUME_CHECK_MAX_SECONDS`) while its depth does not move, and goes back to the
minimum as soon as volunteers drain it (each delay jittered by ±20 %, so the looks at
regions that filled together spread out): an idle assigner does not poll every full
region's length twice a second.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme

log = logging.getLogger(__name__)

#: seconds before a full region is looked at again, at first and after it moved
RESUME_CHECK_MIN_SECONDS = 0.5
#: seconds between two looks at most, while the region's depth does not move
RESUME_CHECK_MAX_SECONDS = 30.0
#: factor the delay grows by per look at an unmoved depth
RESUME_CHECK_GROWTH = 2.0
#: each delay is multiplied by a random factor within 1 ± this, so regions that filled
#: at the same moment are not all looked at in the same instant (a burst of commands)
RESUME_CHECK_JITTER = 0.2

Batch = Mapping[TopicPartition, Sequence[ConsumerRecord]]


@dataclass
class Hold:
    """One held partition: the region that is full and the first offset not queued."""

    region: str
    offset: int
    #: True once ``consumer.pause`` was called (the fetcher then holds nothing parsed)
    paused: bool = False
    #: ready depth at the last look (-1: not looked at yet)
    depth: int = -1
    #: seconds until the next look
    interval: float = RESUME_CHECK_MIN_SECONDS
    #: monotonic seconds of the next look
    next_look: float = 0.0


class Backpressure:
    """The held partitions of one worker (see the module docstring)."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        client: RedisClient,
        scheme: KeyScheme,
        low_watermark: int,
        *,
        max_poll_records: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.max_poll_records = max_poll_records
        self.redis = client
        self.scheme = scheme
        self.low_watermark = low_watermark
        self.clock = clock
        self.holds: dict[TopicPartition, Hold] = {}
        #: region → holds released because the region drained (pause/resume cycles)
        self.released: Counter[str] = Counter()

    def hold(self, partition: TopicPartition, offset: int, region: str) -> None:
        """Seek ``partition`` back to ``offset`` and hold it until ``region`` drains."""
        self.consumer.seek(partition, offset)
        first_look = self.clock() + RESUME_CHECK_MIN_SECONDS
        self.holds[partition] = Hold(region, offset, next_look=first_look)
        log.info("region %s full: holding %s at offset %d", region, partition, offset)

    def screen(self, batch: Batch) -> dict[TopicPartition, Sequence[ConsumerRecord]]:
        """The records of ``batch`` to handle: those of held partitions are dropped (and
        their partition sought back); held partitions are paused now, except the one the
        fetcher may still hold parsed records of (see the module docstring)."""
        full = sum(len(records) for records in batch.values()) >= self.max_poll_records
        in_line = list(batch)[-1] if full and batch else None
        kept: dict[TopicPartition, Sequence[ConsumerRecord]] = {}
        for partition, records in batch.items():
            hold = self.holds.get(partition)
            if hold is None:
                kept[partition] = records
            else:
                self.consumer.seek(partition, hold.offset)
        for partition, hold in self.holds.items():
            if not hold.paused and partition != in_line:
                self.consumer.pause(partition)
                hold.paused = True
        return kept

    def after_rebalance(self, assignment: set[TopicPartition]) -> None:
        """Forget holds of partitions no longer ours; hold the others again (a new
        assignment starts unpaused, at the committed offset)."""
        for partition in list(self.holds):
            if partition not in assignment:
                del self.holds[partition]
        for partition, hold in self.holds.items():
            hold.paused = False
            self.consumer.seek(partition, hold.offset)

    def resume_drained(self) -> None:
        """Look at the held regions that are due (one pipeline); resume those below the
        low-water mark, and space out the next look of those that did not move."""
        now = self.clock()
        due = [(p, hold) for p, hold in self.holds.items() if hold.next_look <= now]
        if not due:
            return
        regions = sorted({hold.region for _, hold in due})
        pipe = self.redis.pipeline(transaction=False)
        for region in regions:
            pipe.llen(self.scheme.region(region).ready)
        depths = dict(zip(regions, (int(d) for d in pipe.execute()), strict=True))
        for partition, hold in due:
            depth = depths[hold.region]
            if depth < self.low_watermark:
                if hold.paused:
                    self.consumer.resume(partition)
                del self.holds[partition]
                self.released[hold.region] += 1
                log.info("region %s drained: resuming %s", hold.region, partition)
                continue
            moved = 0 <= depth < hold.depth
            grown = min(RESUME_CHECK_MAX_SECONDS, hold.interval * RESUME_CHECK_GROWTH)
            hold.interval = RESUME_CHECK_MIN_SECONDS if moved else grown
            hold.depth = depth
            spread = random.uniform(1 - RESUME_CHECK_JITTER, 1 + RESUME_CHECK_JITTER)
            hold.next_look = now + hold.interval * spread
