"""What Kafka, the system of record, holds for one campaign: read whole, for operators.

``phonebank audit`` and ``phonebank rebuild`` read the three topics from the start to
their end as of the call:

- ``phonebank.numbers``: every number accepted (distinct, as sorted arrays with their
  region) and the per-region ingested count (numbers stored, as ingest counts them: a
  number in two files counts twice);
- ``phonebank.outcomes``: the events, deduplicated by id (the relay is at least once),
  each with the partition and offset of its first copy;
- ``phonebank.dnc``: the operators' do-not-call entries (compacted: the last per number).

Records of another campaign are skipped; records that do not decode are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from phonebank.domain import chunk_codec
from phonebank.domain.records import DncRecord, NumberChunk, OutcomeEvent
from phonebank.infra.kafka import read_topic
from phonebank.settings import Settings

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]


@dataclass
class AcceptedNumbers:
    """The distinct numbers of the numbers topic, sorted, each with its region."""

    numbers: Int64Array
    #: index into :attr:`regions` of each number's region
    region_index: Int32Array
    regions: list[str]
    #: region → numbers stored (with repeats), what ingest counts as ``ingested``
    ingested: Counter[str] = field(default_factory=Counter)
    invalid: int = 0
    #: numbers that appear under two regions (the first region seen is kept)
    conflicting: int = 0
    #: number → the other regions it was ingested for (numbers of :attr:`conflicting`)
    alternates: dict[int, set[str]] = field(default_factory=dict)

    def region_of(self, positions: Int64Array) -> list[str]:
        """The region codes of the numbers at ``positions``."""
        return [self.regions[i] for i in self.region_index[positions].tolist()]


@dataclass
class OutcomeLog:
    """The outcome events of the campaign, one per id, in topic order."""

    events: list[OutcomeEvent] = field(default_factory=list)
    #: (partition, offset) of each event's first copy, parallel to :attr:`events`
    positions: list[tuple[int, int]] = field(default_factory=list)
    duplicates: int = 0
    invalid: int = 0
    #: event id → index in :attr:`events`
    ids: dict[str, int] = field(default_factory=dict)

    def add(self, event: OutcomeEvent, position: tuple[int, int]) -> bool:
        """Keep ``event`` unless its id is known; True if it was new."""
        if event.event_id in self.ids:
            self.duplicates += 1
            return False
        self.ids[event.event_id] = len(self.events)
        self.events.append(event)
        self.positions.append(position)
        return True


def read_numbers(settings: Settings) -> AcceptedNumbers:
    """Every number of the campaign in the numbers topic (see the module docstring)."""
    parts: list[Int64Array] = []
    indexes: list[Int32Array] = []
    regions: dict[str, int] = {}
    ingested: Counter[str] = Counter()
    invalid = 0
    for record in read_topic(settings, settings.numbers_topic):
        try:
            chunk = _chunk(record.value)
        except ValueError:
            invalid += 1
            continue
        if chunk.campaign != settings.campaign:
            continue
        index = regions.setdefault(chunk.region, len(regions))
        ingested[chunk.region] += len(chunk.numbers)
        parts.append(chunk.numbers)
        indexes.append(np.full(len(chunk.numbers), index, dtype=np.int32))
    return _distinct(parts, indexes, list(regions), ingested, invalid)


def _chunk(value: bytes) -> chunk_codec.DecodedChunk:
    """A record's chunk with its numbers as an array (either wire version)."""
    if not isinstance(value, bytes):
        raise chunk_codec.ChunkFormatError("not a bytes value")
    if chunk_codec.is_json(value):
        legacy = NumberChunk.decode(value)
        return chunk_codec.DecodedChunk(
            campaign=legacy.campaign,
            region=legacy.region,
            source=legacy.source,
            seq=legacy.seq,
            numbers=np.asarray(legacy.numbers, dtype=np.int64),
        )
    return chunk_codec.decode(value)


def _distinct(
    parts: list[Int64Array],
    indexes: list[Int32Array],
    regions: list[str],
    ingested: Counter[str],
    invalid: int,
) -> AcceptedNumbers:
    if not parts:
        empty = AcceptedNumbers(np.zeros(0, np.int64), np.zeros(0, np.int32), regions)
        empty.ingested, empty.invalid = ingested, invalid
        return empty
    numbers = np.concatenate(parts)
    index = np.concatenate(indexes)
    order = np.argsort(numbers, kind="stable")
    numbers, index = numbers[order], index[order]
    distinct, first = np.unique(numbers, return_index=True)
    counts = np.diff(np.r_[first, len(numbers)])
    # a number listed under two regions (a registry that moved its range): its others
    other = np.flatnonzero(index != np.repeat(index[first], counts))
    accepted = AcceptedNumbers(distinct, index[first], regions, ingested, invalid)
    for position in other.tolist():
        number = int(numbers[position])
        accepted.alternates.setdefault(number, set()).add(regions[int(index[position])])
    accepted.conflicting = len(accepted.alternates)
    return accepted


def count_ingested(settings: Settings) -> Counter[str]:
    """Region → numbers the numbers topic holds for the campaign (with repeats)."""
    counts: Counter[str] = Counter()
    for record in read_topic(settings, settings.numbers_topic):
        try:
            chunk = _chunk(record.value)
        except ValueError:
            continue
        if chunk.campaign == settings.campaign:
            counts[chunk.region] += len(chunk.numbers)
    return counts


def read_outcomes(settings: Settings) -> OutcomeLog:
    """The campaign's outcome events, deduplicated by id."""
    log = OutcomeLog()
    for record in read_topic(settings, settings.outcomes_topic):
        try:
            event = OutcomeEvent.decode(record.value)
        except (ValidationError, TypeError):
            log.invalid += 1
            continue
        if event.campaign == settings.campaign:
            log.add(event, (record.partition, record.offset))
    return log


def read_dnc(settings: Settings) -> dict[int, DncRecord]:
    """The operators' do-not-call entries: number → its latest record."""
    entries: dict[int, DncRecord] = {}
    for record in read_topic(settings, settings.dnc_topic):
        try:
            entry = DncRecord.decode(record.value)
        except (ValidationError, TypeError):
            continue
        entries[entry.number] = entry
    return entries
