"""``phonebank audit``: prove the invariants of DESIGN.md on a live namespace, from Kafka and Redis.

The order of the reads makes a snapshot of a running system sound (docs/audit.md):

1. the dedupe bitmaps (a number is marked seen only after it is queued, so a number
   seen here is in some state in step 2);
2. each region in one ``MULTI`` at its own Redis ``TIME`` (:mod:`phonebank.ops.redis_state`),
   with the outcome events not yet relayed, the dead-letter size and the live leases;
3. the lease hashes (``SCAN``), the reporter's checkpoint and the ingested counts;
4. Kafka, to the end: outcomes (so an event relayed after step 2 is still found), then
   numbers (so every number queued in step 2 is known), then the do-not-call list.

Events completed after a region's snapshot instant are left out of its replay. Each
number's events are replayed by :mod:`phonebank.domain.number_history` (the state
machine ``rebuild`` uses too) and the result is checked against Redis:

- **conservation**: every distinct accepted number is in exactly one state (backlog,
  ready, due, leased, done, do-not-call, retired, parked), and each region's counters add
  up (docs/lease-protocol.md, "Conservation");
- **exclusivity**: one live lease per number; no two lease intervals of one number overlap;
- **do-not-call finality**: no lease granted after the number became do-not-call (an
  answer or the operators' list), nor after it finished;
- **calling window**: every lease granted inside its region's calling window;
- **events**: every ended lease hash has its event in Kafka or in the stream; no entry in
  a dead-letter stream;
- **reporter**: its checkpointed totals equal the events below its checkpointed offsets;
- **ingested**: the per-region ``ingested`` counts equal what the numbers topic holds.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from phonebank.domain.calling_hours import CallingPolicy, window_at
from phonebank.domain.number_history import (
    NEVER_MS,
    NumberHistory,
    NumberState,
    is_expiry,
    replay,
)
from phonebank.domain.records import DncRecord, OutcomeEvent
from phonebank.domain.regions import REGIONS
from phonebank.domain.retry_policy import RetryPolicy
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import DEDUPE_BITS_PER_PREFIX, KeyScheme, ReporterKeys
from phonebank.leases.queues import known_regions
from phonebank.ops import kafka_state, redis_state
from phonebank.ops.audit_report import STATES, AuditReport, Violation, print_report
from phonebank.ops.kafka_state import AcceptedNumbers, OutcomeLog
from phonebank.ops.redis_state import LeaseRecord, RegionSnapshot
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.checkpoint import Checkpoint, CheckpointStore
from phonebank.settings import Settings

Int64Array = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
#: state code of each state name (index in STATES); 0 = not placed yet
CODE = {name: index + 1 for index, name in enumerate(STATES)}
#: bits in a byte (the seen bitmaps: most significant bit first)
BYTE_BITS = 8
#: the Redis locations of an in-play number, in the order they are read
LOCATIONS = ("ready", "due", "leased", "parked")


@dataclass
class RedisView:
    """Everything read from Redis (steps 1–3)."""

    seen: dict[int, bytes]
    regions: dict[str, RegionSnapshot]
    leases: list[LeaseRecord]
    #: every number on a do-not-call set of the prefix
    dnc: Int64Array
    ingested: dict[str, int]
    checkpoint: Checkpoint | None


@dataclass
class KafkaView:
    """Everything read from Kafka (step 4)."""

    outcomes: OutcomeLog
    accepted: AcceptedNumbers
    dnc: dict[int, DncRecord]


@dataclass
class Replayed:
    """The histories of the numbers with events, and every lease interval seen."""

    histories: dict[int, NumberHistory] = field(default_factory=dict)
    #: number → (granted at, certain end, lease id, live) of each of its leases
    leases: dict[int, list[tuple[int, int, str, bool]]] = field(default_factory=dict)
    #: event ids known (Kafka and the streams)
    event_ids: set[str] = field(default_factory=set)
    #: (region, granted at, deadline or 0, lease id, number)
    grants: list[tuple[str, int, int, str, int]] = field(default_factory=list)


def read_redis(client: RedisClient, settings: Settings) -> RedisView:
    """Steps 1–3."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    seen = redis_state.read_seen(client, scheme)
    leases_found = list(redis_state.lease_keys(client, scheme))
    regions = sorted(set(known_regions(client, scheme)) | {r for r, _ in leases_found})
    snapshots = {r: redis_state.read_region(client, scheme.region(r)) for r in regions}
    leases = redis_state.read_ended_leases(client, scheme)
    raw = client.hgetall(scheme.ingested)
    store = CheckpointStore(client, ReporterKeys(settings.key_prefix, settings.campaign))
    return RedisView(
        seen=seen,
        regions=snapshots,
        leases=leases,
        dnc=redis_state.read_all_dnc(client, settings.key_prefix),
        ingested={reply_text(k): int(v) for k, v in raw.items()},
        checkpoint=store.load(settings.outcomes_topic),
    )


def read_kafka(settings: Settings) -> KafkaView:
    """Step 4."""
    outcomes = kafka_state.read_outcomes(settings)
    return KafkaView(outcomes, kafka_state.read_numbers(settings), kafka_state.read_dnc(settings))


def audit(
    settings: Settings,
    client: RedisClient,
    policy: RetryPolicy | None = None,
    clock_offset_ms: int = 0,
) -> AuditReport:
    """Read everything and check it (see the module docstring)."""
    started = time.monotonic()
    redis_view = read_redis(client, settings)
    kafka_view = read_kafka(settings)
    report = check(settings, redis_view, kafka_view, policy or RetryPolicy(), clock_offset_ms)
    report.seconds = time.monotonic() - started
    return report


def check(
    settings: Settings,
    redis_view: RedisView,
    kafka_view: KafkaView,
    policy: RetryPolicy,
    clock_offset_ms: int = 0,
) -> AuditReport:
    """Every check on what was read."""
    report = AuditReport(campaign=settings.campaign)
    replayed = replay_all(redis_view, kafka_view, policy, settings, clock_offset_ms)
    conservation(report, redis_view, kafka_view, replayed)
    counters(report, redis_view)
    exclusivity(report, redis_view, replayed)
    finality(report, kafka_view, replayed)
    calling_windows(report, replayed, CallingPolicy.from_settings(settings))
    ended_leases(report, redis_view, replayed, clock_offset_ms)
    dead_letters(report, redis_view)
    reporter(report, redis_view, kafka_view)
    ingested(report, redis_view, kafka_view)
    summarize(report, redis_view, kafka_view)
    return report


# --- replay -----------------------------------------------------------------------------


def replay_all(
    redis_view: RedisView,
    kafka_view: KafkaView,
    policy: RetryPolicy,
    settings: Settings,
    clock_offset_ms: int,
) -> Replayed:
    """Each number's events up to its region's snapshot, replayed; the lease intervals."""
    by_number: dict[int, list[OutcomeEvent]] = defaultdict(list)
    ids: set[str] = set()
    cutoff = {r: s.now_ms + clock_offset_ms for r, s in redis_view.regions.items()}
    streams = (e for s in redis_view.regions.values() for e in s.pending)
    for event in [*kafka_view.outcomes.events, *streams]:
        if event.event_id in ids or event.completed_at_ms > cutoff.get(event.region, NEVER_MS):
            continue
        ids.add(event.event_id)
        by_number[event.number].append(event)
    live = _live_by_number(redis_view)
    replayed = Replayed(event_ids=ids)
    for number, events in by_number.items():
        replayed.histories[number] = replay(
            events[0].region,
            events,
            policy,
            settings.lease_max_expiries,
            [(r.lease_id, r.leased_at_ms) for r in live.get(number, ())],
        )
        replayed.leases[number] = _intervals(events)
        replayed.grants.extend(_grants(events))
    for number, records in live.items():
        replayed.leases.setdefault(number, []).extend(
            (r.leased_at_ms, NEVER_MS, r.lease_id, True) for r in records
        )
        replayed.grants.extend(
            (r.region, r.leased_at_ms, r.deadline_ms, r.lease_id, number) for r in records
        )
    return replayed


def _live_by_number(redis_view: RedisView) -> dict[int, list[LeaseRecord]]:
    live: dict[int, list[LeaseRecord]] = defaultdict(list)
    for snapshot in redis_view.regions.values():
        for record in snapshot.live.values():
            if record.state == "live":
                live[record.number].append(record)
    return live


def _intervals(events: list[OutcomeEvent]) -> list[tuple[int, int, str, bool]]:
    """(granted at, certain end, lease id, False) per ended lease: its expiry, or a
    complete on time; a late complete without an expiry ends at an unknown instant (it
    may have been released first), so nothing after its grant is certain."""
    ends: dict[str, tuple[int, int]] = {}
    for event in sorted(events, key=lambda e: e.completed_at_ms):
        certain = event.completed_at_ms if is_expiry(event) or not event.late else 0
        granted, end = ends.get(event.lease_id, (event.leased_at_ms, 0))
        ends[event.lease_id] = (granted, end or certain)
    return [(granted, end or granted, lease, False) for lease, (granted, end) in ends.items()]


def _grants(events: list[OutcomeEvent]) -> Iterable[tuple[str, int, int, str, int]]:
    granted = {e.lease_id: e for e in events}
    return ((e.region, e.leased_at_ms, 0, e.lease_id, e.number) for e in granted.values())


# --- conservation -----------------------------------------------------------------------


def conservation(
    report: AuditReport, redis_view: RedisView, kafka_view: KafkaView, replayed: Replayed
) -> None:
    """Place every accepted number in exactly one state; count the states per region."""
    accepted = kafka_view.accepted
    states = np.zeros(len(accepted.numbers), dtype=np.int8)
    placement = Placement(accepted, states, np.zeros(len(accepted.numbers), dtype=np.int32))
    for snapshot in redis_view.regions.values():
        for location, numbers in _locations(snapshot):
            placement.place(report, snapshot.region, location, numbers)
    _two_states(report, accepted, placement.placed)
    _finished(report, placement, replayed)
    _dnc_dropped(accepted, redis_view, kafka_view, replayed, states)
    _backlog_or_lost(report, accepted, _seen(accepted.numbers, redis_view.seen), states)
    _count_states(report, accepted, states)


def _locations(snapshot: RegionSnapshot) -> list[tuple[str, Int64Array]]:
    leased = np.asarray(sorted(snapshot.holders), dtype=np.int64)
    return [
        ("ready", snapshot.ready),
        ("due", snapshot.due),
        ("leased", leased),
        ("parked", snapshot.parked),
    ]


def _positions(accepted: AcceptedNumbers, numbers: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Positions in ``accepted`` of the numbers found there, and the numbers not found."""
    if not len(accepted.numbers):
        return np.zeros(0, np.int64), numbers
    where = np.minimum(np.searchsorted(accepted.numbers, numbers), len(accepted.numbers) - 1)
    found = accepted.numbers[where] == numbers
    return where[found].astype(np.int64), numbers[~found]


@dataclass
class Placement:
    """Per accepted number (parallel to ``accepted.numbers``): its state code and how many
    Redis locations hold it."""

    accepted: AcceptedNumbers
    states: Int8Array
    placed: npt.NDArray[np.int32]

    def place(self, report: AuditReport, region: str, location: str, numbers: Int64Array) -> None:
        """Put the numbers Redis has at ``location`` of ``region``."""
        accepted = self.accepted
        positions, unknown = _positions(accepted, numbers)
        for number in unknown.tolist():
            detail = f"{location}, not in the numbers topic"
            report.add(Violation("unknown_number", region, number, detail))
        regions = accepted.region_index[positions].tolist()
        wrong = np.asarray([accepted.regions[i] != region for i in regions], dtype=bool)
        for position in positions[wrong].tolist():
            number = int(accepted.numbers[position])
            if region in accepted.alternates.get(number, ()):  # also ingested for it
                accepted.region_index[position] = accepted.regions.index(region)
                continue
            report.add(Violation("wrong_region", region, number, f"{location}, ingested elsewhere"))
        np.add.at(self.placed, positions, 1)
        self.states[positions] = CODE[location]


def _two_states(
    report: AuditReport, accepted: AcceptedNumbers, placed: npt.NDArray[np.int32]
) -> None:
    for position in np.flatnonzero(placed > 1).tolist():
        number = int(accepted.numbers[position])
        region = accepted.regions[int(accepted.region_index[position])]
        report.add(Violation("two_states", region, number, f"in {placed[position]} places"))


def _finished(report: AuditReport, placement: Placement, replayed: Replayed) -> None:
    """Finished numbers by their history; one still queued or leased is a violation."""
    accepted, states, placed = placement.accepted, placement.states, placement.placed
    finished = [(n, h) for n, h in replayed.histories.items() if h.finished]
    numbers = np.asarray([n for n, _ in finished], dtype=np.int64)
    positions, _ = _positions(accepted, numbers)
    known = {int(accepted.numbers[p]): p for p in positions.tolist()}
    for number, history in finished:
        position = known.get(number)
        if position is None:
            report.add(Violation("unknown_number", history.region, number, "events only"))
        elif placed[position]:
            where = STATES[states[position] - 1]
            report.add(
                Violation("two_states", history.region, number, f"{history.state} and {where}")
            )
        else:
            states[position] = CODE[_FINISHED_NAME[history.state]]


_FINISHED_NAME = {NumberState.DONE: "done", NumberState.RETIRED: "retired", NumberState.DNC: "dnc"}


def _dnc_dropped(
    accepted: AcceptedNumbers,
    redis_view: RedisView,
    kafka_view: KafkaView,
    replayed: Replayed,
    states: Int8Array,
) -> None:
    """A number nowhere else but on the do-not-call list was dropped by a script."""
    listed = [s.dnc for s in redis_view.regions.values()]
    listed.append(redis_view.dnc)
    listed.append(np.asarray(list(kafka_view.dnc), dtype=np.int64))
    listed.append(
        np.asarray([n for n, h in replayed.histories.items() if h.dnc_listed], dtype=np.int64)
    )
    positions, _ = _positions(accepted, np.concatenate(listed))
    free = positions[states[positions] == 0]
    states[free] = CODE["dnc"]


def _seen(numbers: Int64Array, bitmaps: dict[int, bytes]) -> npt.NDArray[np.bool_]:
    """Whether each number's bit is set in the assigner's dedupe bitmaps."""
    seen = np.zeros(len(numbers), dtype=bool)
    prefixes = numbers // DEDUPE_BITS_PER_PREFIX
    for prefix, blob in bitmaps.items():
        members = np.flatnonzero(prefixes == prefix)
        if not len(members) or not blob:
            continue
        bitmap = np.frombuffer(blob, dtype=np.uint8)
        offsets = numbers[members] % DEDUPE_BITS_PER_PREFIX
        index = offsets // BYTE_BITS
        inside = index < len(bitmap)
        masks = (0x80 >> (offsets % BYTE_BITS)).astype(np.uint8)
        bits = np.zeros(len(members), dtype=bool)
        bits[inside] = (bitmap[index[inside]] & masks[inside]) != 0
        seen[members] = bits
    return seen


def _backlog_or_lost(
    report: AuditReport,
    accepted: AcceptedNumbers,
    seen: npt.NDArray[np.bool_],
    states: Int8Array,
) -> None:
    """Numbers in no state: not yet queued (backlog), or queued and lost."""
    unplaced = states == 0
    states[unplaced & ~seen] = CODE["backlog"]
    for position in np.flatnonzero(unplaced & seen).tolist():
        number = int(accepted.numbers[position])
        region = accepted.regions[int(accepted.region_index[position])]
        report.add(Violation("lost", region, number, "queued once, now in no state"))
    states[unplaced & seen] = CODE["lost"]


def _count_states(report: AuditReport, accepted: AcceptedNumbers, states: Int8Array) -> None:
    width = len(STATES) + 1
    regions = len(accepted.regions)
    flat = accepted.region_index.astype(np.int64) * width + states
    table = np.bincount(flat, minlength=regions * width).reshape(regions, width)
    for index, region in enumerate(accepted.regions):
        row = {name: int(table[index, CODE[name]]) for name in STATES}
        report.states[region] = row


def counters(report: AuditReport, redis_view: RedisView) -> None:
    """Each region's counters add up (docs/lease-protocol.md, "Conservation")."""
    for region, snapshot in redis_view.regions.items():
        count = snapshot.counters.get
        finished = sum(count(name, 0) for name in ("done", "retired", "dnc", "dropped_duplicates"))
        in_play = len(snapshot.ready) + len(snapshot.due) + len(snapshot.leases)
        accounted = in_play + len(snapshot.parked) + finished
        if accounted != count("enqueued", 0):
            detail = f"enqueued {count('enqueued', 0)}, accounted for {accounted}"
            report.add(Violation("counters", region, None, detail))


# --- exclusivity, finality, windows -------------------------------------------------------


def exclusivity(report: AuditReport, redis_view: RedisView, replayed: Replayed) -> None:
    """One live lease per number; no overlapping lease intervals."""
    for snapshot in redis_view.regions.values():
        numbers = Counter(r.number for r in snapshot.live.values() if r.state == "live")
        for number, leases in numbers.items():
            if leases > 1:
                report.add(Violation("double_lease", snapshot.region, number, f"{leases} live"))
    for number, intervals in replayed.leases.items():
        _overlaps(report, number, sorted(intervals), replayed)


def _overlaps(
    report: AuditReport,
    number: int,
    intervals: list[tuple[int, int, str, bool]],
    replayed: Replayed,
) -> None:
    held_until, holder_live = 0, False
    for granted, end, lease_id, live in intervals:
        if granted < held_until and not (live and holder_live):
            region = lease_id.rsplit(".", 1)[0]
            report.add(Violation("overlapping_leases", region, number, f"{_mask_id(lease_id)}"))
        if end > held_until:
            held_until, holder_live = end, live


def _mask_id(lease_id: str) -> str:
    """A lease id shortened for output (not secret, but long)."""
    region, _, tail = lease_id.rpartition(".")
    return f"lease {region}.{tail[:8]}"


def finality(report: AuditReport, kafka_view: KafkaView, replayed: Replayed) -> None:
    """No lease granted after the number became do-not-call, or finished."""
    for number, intervals in replayed.leases.items():
        history = replayed.histories.get(number)
        operator = kafka_view.dnc.get(number)
        dnc_times = [
            t for t in (history and history.dnc_at_ms, operator and operator.added_at_ms) if t
        ]
        dnc_at = min(dnc_times) if dnc_times else None
        finished_at = history.finished_at_ms if history else None
        for granted, _, lease_id, _ in intervals:
            region = lease_id.rsplit(".", 1)[0]
            if dnc_at is not None and granted > dnc_at:
                report.add(Violation("leased_after_dnc", region, number, _mask_id(lease_id)))
            elif finished_at is not None and granted > finished_at:
                report.add(Violation("leased_after_finish", region, number, _mask_id(lease_id)))


def calling_windows(report: AuditReport, replayed: Replayed, policy: CallingPolicy) -> None:
    """Every lease granted inside its region's calling window (and ending by its end)."""
    for region, granted, deadline, lease_id, number in replayed.grants:
        known = REGIONS.get(region)
        window = window_at(known.zones if known else (), policy, granted)
        if window is None:
            report.add(
                Violation("outside_window", region, number, f"granted, {_mask_id(lease_id)}")
            )
        elif deadline > window.end_ms:
            report.add(Violation("outside_window", region, number, "deadline past the window"))


# --- events, dead letters, reporter, ingested ----------------------------------------------


def ended_leases(
    report: AuditReport, redis_view: RedisView, replayed: Replayed, clock_offset_ms: int
) -> None:
    """Every ended lease hash (completed or expired) has its event."""
    live = {lease for s in redis_view.regions.values() for lease in s.leases}
    for record in redis_view.leases:
        snapshot = redis_view.regions.get(record.region)
        cutoff = (snapshot.now_ms if snapshot else NEVER_MS) + clock_offset_ms
        if record.lease_id in live or record.completed_at_ms > cutoff:
            continue
        kind = {"completed": "complete", "expired": "expire"}.get(record.state)
        if kind and f"{record.lease_id}/{kind}" not in replayed.event_ids:
            report.add(
                Violation("missing_event", record.region, record.number, f"{record.state} lease")
            )
    report.leases["hashes"] = len(redis_view.leases)
    report.leases["live"] = len(live)


def dead_letters(report: AuditReport, redis_view: RedisView) -> None:
    """The relay's dead-letter streams hold outcomes that never reach Kafka."""
    for region, snapshot in redis_view.regions.items():
        report.dead_letters[region] = snapshot.dead_letters
        stuck = snapshot.dead_letters + snapshot.pending_invalid
        if stuck:
            detail = f"{snapshot.dead_letters} dead-lettered, {snapshot.pending_invalid} invalid"
            report.add(Violation("dead_letter", region, None, detail))


def reporter(report: AuditReport, redis_view: RedisView, kafka_view: KafkaView) -> None:
    """The reporter's checkpointed totals equal the events below its offsets."""
    checkpoint = redis_view.checkpoint
    if checkpoint is None:
        report.reporter = {"checked": False, "events": 0, "reason": "no reporter checkpoint"}
        return
    expected = Aggregator(
        checkpoint.aggregator.max_expiries, dedupe_window=len(kafka_view.outcomes.events) + 1
    )
    log = kafka_view.outcomes
    for event, (partition, offset) in zip(log.events, log.positions, strict=True):
        if offset < checkpoint.offsets.get(partition, 0):
            expected.apply(event)
    found = checkpoint.aggregator
    for region in sorted(set(expected.regions) | set(found.regions)):
        mine, theirs = _tally(expected, region), _tally(found, region)
        for name in sorted(set(mine) | set(theirs)):
            if mine.get(name, 0) != theirs.get(name, 0):
                detail = f"{name}: reporter {theirs.get(name, 0)}, events {mine.get(name, 0)}"
                report.add(Violation("reporter_mismatch", region, None, detail))
    report.reporter = {"checked": True, "events": expected.applied, "reason": ""}


def _tally(aggregator: Aggregator, region: str) -> dict[str, int]:
    tally = aggregator.regions.get(region)
    if tally is None:
        return {}
    fields = {
        "attempted": tally.attempted,
        "reached": tally.reached,
        "conversations": tally.conversations,
        "do_not_call": tally.do_not_call,
        "retired": tally.retired,
        "parked": tally.parked,
    }
    fields.update({f"outcome:{name}": count for name, count in tally.outcomes.items()})
    return fields


def ingested(report: AuditReport, redis_view: RedisView, kafka_view: KafkaView) -> None:
    """The coverage denominators equal what the numbers topic holds."""
    stored = kafka_view.accepted.ingested
    for region in sorted(set(stored) | set(redis_view.ingested)):
        if stored.get(region, 0) != redis_view.ingested.get(region, 0):
            detail = f"Redis {redis_view.ingested.get(region, 0)}, Kafka {stored.get(region, 0)}"
            report.add(Violation("ingested_mismatch", region, None, detail))


def summarize(report: AuditReport, redis_view: RedisView, kafka_view: KafkaView) -> None:
    """The counts beside the verdict."""
    log = kafka_view.outcomes
    report.numbers = {
        "accepted": len(kafka_view.accepted.numbers),
        "ingested": sum(kafka_view.accepted.ingested.values()),
        "invalid_records": kafka_view.accepted.invalid,
    }
    report.events = {
        "kafka": len(log.events),
        "pending": sum(len(s.pending) for s in redis_view.regions.values()),
        "duplicates": log.duplicates,
        "invalid": log.invalid,
    }
    report.as_of_ms = max((s.now_ms for s in redis_view.regions.values()), default=0)


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """``phonebank audit [--json]``: exit 0 when every invariant holds, 1 otherwise."""
    client = connect(settings)
    try:
        report = audit(settings, client)
    finally:
        client.close()
    return print_report(report, args)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank audit``."""
    parser = commands.add_parser(
        "audit", help="check the invariants on the live namespace, from Kafka and Redis"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    parser.add_argument(
        "--all", action="store_true", help="text: print every violation (default: 20 a kind)"
    )
    parser.set_defaults(handler=cmd_audit)
