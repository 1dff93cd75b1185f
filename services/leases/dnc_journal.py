"""The do-not-call journal: a do_not_call answer is durable in Kafka before it is acknowledged.

Redis can be lost and rebuilt from Kafka (``phonebank rebuild``). An outcome reaches
Kafka through the relay, some time after the volunteer's answer; a Redis loss in between
would forget it, and for do-not-call that means calling the person again. So the
gateway writes a :class:`~phonebank.domain.records.DncRecord` to ``phonebank.dnc`` (the
compacted topic the operators' list lives in, which rebuild reads first) and waits for
the broker's acknowledgement (``acks=all``) *before* it completes the lease and answers.
If Kafka does not acknowledge within :data:`JOURNAL_TIMEOUT_MS`, the answer is 503 and
the lease is left as it is (the volunteer's page retries), but the gateway lists the
number at once: a send that timed out may still land in Kafka, and nobody else may be
given the number meanwhile (the chaos suite's Kafka outage found that window).

One producer serves every request thread (kafka-python's producer is thread-safe); it is
made on first use and made again after a failure.
"""

from __future__ import annotations

import logging
import threading

from kafka import KafkaProducer
from kafka.errors import KafkaError

from phonebank.domain import clock
from phonebank.domain.records import DncRecord
from phonebank.infra.kafka import DNC_PARTITIONS, DNC_TOPIC_CONFIG, ensure_topic, make_producer
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: milliseconds each step (connect, topic check, acknowledgement) may take before a 503;
#: at most three steps, so a volunteer waits under 8 s
JOURNAL_TIMEOUT_MS = 2_500
#: the same, in seconds, for ``Future.get``
JOURNAL_TIMEOUT_SECONDS = JOURNAL_TIMEOUT_MS / 1000


class DncJournalUnavailableError(RuntimeError):
    """Kafka did not acknowledge the do-not-call record: nothing was changed."""


class DncJournal:
    """Writes do-not-call records to ``phonebank.dnc`` and waits until they are durable."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None

    def _producer_ready(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                ensure_topic(
                    self._settings,
                    self._settings.dnc_topic,
                    DNC_PARTITIONS,
                    DNC_TOPIC_CONFIG,
                    bootstrap_timeout_ms=JOURNAL_TIMEOUT_MS,
                    request_timeout_ms=JOURNAL_TIMEOUT_MS,
                )
                self._producer = make_producer(
                    self._settings,
                    linger_ms=0,
                    max_block_ms=JOURNAL_TIMEOUT_MS,
                    request_timeout_ms=JOURNAL_TIMEOUT_MS,
                    bootstrap_timeout_ms=JOURNAL_TIMEOUT_MS,
                )
            return self._producer

    def _drop(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=0)

    def record(self, number: int, region: str) -> None:
        """Write ``number`` (of ``region``) to the do-not-call topic and wait for the
        acknowledgement; :class:`DncJournalUnavailableError` if Kafka does not give it."""
        entry = DncRecord(number=number, region=region, added_at_ms=clock.now_ms())
        try:
            producer = self._producer_ready()
            sent = producer.send(
                self._settings.dnc_topic, key=str(number).encode(), value=entry.encode()
            )
            sent.get(timeout=JOURNAL_TIMEOUT_SECONDS)
        except (KafkaError, OSError) as exc:
            log.warning("do-not-call record not acknowledged by Kafka (%s)", type(exc).__name__)
            self._drop()
            raise DncJournalUnavailableError("Kafka did not acknowledge the record") from exc

    def close(self) -> None:
        """Close the producer (flushing what was sent)."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=JOURNAL_TIMEOUT_SECONDS)
