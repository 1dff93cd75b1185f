"""Consumer lag read from Kafka, independently of the consuming processes.

A consumer measuring its own lag stops reporting it exactly when it matters: when it is
dead or stuck, its series vanishes with it, and each replica only sees its share. Here
the reporter's :class:`LagMonitor` thread asks the brokers (admin API) for the committed
offsets of the assigner and reporter groups and for the end offsets of their topics,
every :data:`LAG_INTERVAL_SECONDS`, and keeps:

- the lag per group (``phonebank_consumer_lag_records{group}``), summed over partitions;
- the numbers-topic backlog per region (``phonebank_queue_backlog_records{region}``),
  the lag of the partition the region's chunks go to.

A failed measurement clears the figures, so the series go absent (and their
``absent()`` alerts fire) instead of freezing at their last value.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from phonebank.domain.partitions import partition_for_region
from phonebank.infra import metrics as names
from phonebank.leases.client import campaign_region_zones
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: seconds between two lag measurements
LAG_INTERVAL_SECONDS = 5.0
#: milliseconds one admin request may wait for the brokers
ADMIN_TIMEOUT_MS = 5_000
#: metric label of each consumer group (a role, not the configurable group id)
ASSIGNER_ROLE = "assigner"
REPORTER_ROLE = "reporter"


class MeasurementError(Exception):
    """The brokers answered, but not with what a lag measurement needs."""


@dataclass
class LagFigures:
    """The latest measurement: lag per group role, backlog per region (None: unmeasured)."""

    groups: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    measured: bool = False


def partition_lags(
    ends: dict[TopicPartition, int],
    starts: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """End minus committed offset per partition (from the start when never committed)."""
    return {tp: max(0, end - committed.get(tp, starts.get(tp, 0))) for tp, end in ends.items()}


class LagMonitor:
    """Measures group lag from Kafka in a daemon thread; its collector exports it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.groups = {
            ASSIGNER_ROLE: (settings.assigner_group, settings.numbers_topic),
            REPORTER_ROLE: (settings.reporter_group, settings.outcomes_topic),
        }
        self.regions = sorted(campaign_region_zones(settings))
        self.figures = LagFigures()
        self._admin: KafkaAdminClient | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reporter-lag", daemon=True)

    def start(self) -> LagMonitor:
        """Start measuring every :data:`LAG_INTERVAL_SECONDS`."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop measuring and close the admin client."""
        self._stop.set()
        self._thread.join(ADMIN_TIMEOUT_MS / 1000 * 3)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.measure()
                self._stop.wait(LAG_INTERVAL_SECONDS)
        finally:
            if self._admin is not None:
                self._admin.close()

    def measure(self) -> LagFigures:
        """One measurement; on a Kafka error the figures are cleared (absent)."""
        try:
            self.figures = self._read()
        except (KafkaError, OSError, MeasurementError) as exc:
            log.warning("consumer lag not measured: %s", exc)
            self.figures = LagFigures()
            if self._admin is not None:
                self._admin.close()
                self._admin = None
        return self.figures

    def _read(self) -> LagFigures:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                request_timeout_ms=ADMIN_TIMEOUT_MS,
                client_id="phonebank-reporter-lag",
            )
        admin = self._admin
        partitions = _partitions(admin, [topic for _, topic in self.groups.values()])
        ends = _offsets(admin, partitions, OffsetSpec.LATEST)
        starts = _offsets(admin, partitions, OffsetSpec.EARLIEST)
        committed = admin.list_group_offsets({group: None for group, _ in self.groups.values()})
        figures = LagFigures(measured=True)
        for role, (group, topic) in self.groups.items():
            offsets = {tp: meta.offset for tp, meta in committed.get(group, {}).items()}
            mine = {tp: end for tp, end in ends.items() if tp.topic == topic}
            lags = partition_lags(mine, starts, offsets)
            figures.groups[role] = sum(lags.values())
            if role == ASSIGNER_ROLE:
                figures.regions = self._region_backlog(topic, lags)
        return figures

    def _region_backlog(self, topic: str, lags: dict[TopicPartition, int]) -> dict[str, int]:
        count = len(lags)
        if not count:
            return {}
        return {
            region: lags.get(TopicPartition(topic, partition_for_region(region, count)), 0)
            for region in self.regions
        }


def _partitions(admin: KafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; a topic missing or in error fails the measurement
    (a lag of 0 for a topic nobody can read would be a lie)."""
    found = []
    for topic in admin.describe_topics(topics):
        if topic["error_code"] or not topic["partitions"]:
            raise MeasurementError(f"topic {topic['name']} not readable ({topic['error_code']})")
        found += [TopicPartition(topic["name"], p["partition_index"]) for p in topic["partitions"]]
    return found


def _offsets(
    admin: KafkaAdminClient, partitions: list[TopicPartition], spec: OffsetSpec
) -> dict[TopicPartition, int]:
    answer = admin.list_partition_offsets(
        {tp: spec for tp in partitions}, timeout_ms=ADMIN_TIMEOUT_MS
    )
    return {tp: int(info.offset) for tp, info in answer.items()}


class LagCollector(Collector):
    """Exports the monitor's latest figures; nothing while unmeasured."""

    def __init__(self, monitor: LagMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        figures = self.monitor.figures
        if not figures.measured:
            return
        lag = GaugeMetricFamily(
            names.CONSUMER_LAG, "Records a group has not committed.", labels=["group"]
        )
        for role, value in figures.groups.items():
            lag.add_metric([role], value)
        yield lag
        backlog = GaugeMetricFamily(
            names.QUEUE_BACKLOG,
            "Number chunks of the region's partition not committed by the assigners.",
            labels=["region"],
        )
        for region, value in figures.regions.items():
            backlog.add_metric([region], value)
        yield backlog
