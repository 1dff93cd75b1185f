"""Minimal reproduction: kafka-python 3.0.12 never restores a paused partition's parked records.

Run against any broker:  python kafka_python_fetcher_stall.py [bootstrap]   (default localhost:9092)
It creates a two-partition topic, writes 20 records to each partition, and consumes with
max_poll_records=1 so that the fetcher's in-line slot holds the rest of a partition's
records between two polls. It pauses that partition, drains the other one, resumes the
first, and polls again: on 3.0.12 the resumed partition never returns another record
(exit status 1); with the fix in kafka-python-fetcher-stall.md it does (exit status 0).
"""

import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "localhost:9092"
TOPIC = f"fetcher-stall-{uuid.uuid4().hex[:8]}"
RECORDS_PER_PARTITION = 20
SECONDS_AFTER_RESUME = 10.0

admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
for partition in (0, 1):
    for index in range(RECORDS_PER_PARTITION):
        producer.send(TOPIC, value=b"%d" % index, partition=partition)
producer.flush()

consumer = KafkaConsumer(
    bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", max_poll_records=1
)
partitions = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
consumer.assign(partitions)
received = {tp: 0 for tp in partitions}


def poll() -> None:
    for tp, records in consumer.poll(timeout_ms=500).items():
        received[tp] += len(records)


# 1. Poll until one partition returned a record: its other 19 records sit in the slot.
while not any(received.values()):
    poll()
paused = next(tp for tp, count in received.items() if count)
other = next(tp for tp in partitions if tp != paused)
# 2. Pause it; the next poll parks its parsed records and drains the other partition,
#    leaving a drained (falsy, not None) record set of `other` in the in-line slot.
consumer.pause(paused)
while received[other] < RECORDS_PER_PARTITION:
    poll()
# 3. Resume: the parked records should come back, and the partition be fetched again.
consumer.resume(paused)
deadline = time.monotonic() + SECONDS_AFTER_RESUME
while received[paused] < RECORDS_PER_PARTITION and time.monotonic() < deadline:
    poll()
fetcher = consumer._fetcher
print(f"records of the resumed partition: {received[paused]} of {RECORDS_PER_PARTITION}")
print(f"parked parsed records: {list(fetcher._paused_partition_records)}")
print(f"in-line slot: {fetcher._next_partition_records!r} (truthy: {bool(fetcher._next_partition_records)})")
consumer.close()
admin.delete_topics([TOPIC])
sys.exit(0 if received[paused] == RECORDS_PER_PARTITION else 1)
