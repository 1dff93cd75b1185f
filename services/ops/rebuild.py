"""``phonebank rebuild``: Redis wiped or lost → its state again, from Kafka (and the answers
recorded in the new Redis since).

Kafka is the system of record. With the assigners stopped (so no relay moves events and
no worker queues numbers meanwhile) and the campaign's Redis state gone (a Redis still
holding the dedupe bitmaps is refused: restoring twice would count twice), the rebuild

1. reads ``phonebank.dnc`` (the operators' do-not-call list), ``phonebank.outcomes``
   (events deduplicated by id) and ``phonebank.numbers`` (the per-region ingested
   counts) from the start, then every outcome stream of the new Redis: answers recorded
   since Redis came back, which no relay has moved yet (they stay there, and the
   assigners' relay sends them to Kafka when they start);
2. replays each number's events through the scripts' state machine
   (:mod:`phonebank.domain.number_history`, the one the audit uses): a number that
   ended (done, retired, do-not-call) or was parked is restored in that state and marked
   seen, so the assigner never queues it again; a number still in play keeps its attempt
   and expiry counts and is queued again by the assigner; numbers an answer put on the
   do-not-call list are listed; the region counters (``enqueued done retired dnc
   attempted reached leased expired late``) and the ``ingested`` counts are restored;
3. deletes the assigner group's committed offsets, so the next assigners read
   ``phonebank.numbers`` from the start and queue every number not marked seen.

What cannot come back: outcome events that were still in a Redis stream, not yet
relayed, when Redis was lost (the relay runs every second), and the due times of
retries and callbacks (those numbers become leasable at once, inside calling hours).
The reporter recounts with ``phonebank reporter --rebuild``.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar, cast

from pydantic import ValidationError

from phonebank.assigner import dedupe
from phonebank.domain.number_history import NumberHistory, NumberState, replay
from phonebank.domain.records import DncRecord, OutcomeEvent
from phonebank.domain.retry_policy import RetryPolicy
from phonebank.infra.kafka import make_admin, read_topic
from phonebank.infra.redis_client import RedisClient, RedisPipeline, connect, primaries
from phonebank.infra.replies import reply_text
from phonebank.leases.dnc import add_numbers
from phonebank.leases.keys import KeyScheme, RegionKeys
from phonebank.leases.relay import StreamEntry
from phonebank.ops import kafka_state, redis_state
from phonebank.ops.kafka_state import OutcomeLog
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: the counter each finished state is counted in
FINISHED = {NumberState.DONE: "done", NumberState.RETIRED: "retired", NumberState.DNC: "dnc"}
#: the summary's names of the states that are not finished
_IN_PLAY_NAMES = {NumberState.IN_PLAY: "in play", NumberState.PARKED: "parked"}
#: keys asked per SCAN call (finding the outcome streams)
SCAN_COUNT = 1000

Record = TypeVar("Record")


class RebuildError(RuntimeError):
    """The rebuild cannot run now; the message says why."""


@dataclass
class RebuildSummary:
    """What the rebuild restored (counts)."""

    events: int = 0
    duplicates: int = 0
    invalid: int = 0
    operator_dnc: int = 0
    #: events found in the new Redis's streams (recorded since it came back)
    pending: int = 0
    states: Counter[str] = field(default_factory=Counter)
    ingested: Counter[str] = field(default_factory=Counter)


def decoded(
    settings: Settings, topic: str, decode: Callable[[bytes], Record], summary: RebuildSummary
) -> Iterator[Record]:
    """The valid records of a whole topic; the invalid ones are counted, not fatal."""
    for record in read_topic(settings, topic):
        try:
            yield decode(record.value)
        except ValidationError:
            summary.invalid += 1


def stream_regions(client: RedisClient, scheme: KeyScheme) -> list[str]:
    """The regions that have an outcome stream in Redis (found with SCAN)."""
    pattern = f"{scheme.prefix}:c:{scheme.campaign}:{{r:*}}:outcomes"
    found = set()
    for node in primaries(client):
        for key in node.scan_iter(pattern, SCAN_COUNT):
            found.add(reply_text(key).rsplit("{r:", 1)[-1].split("}", 1)[0])
    return sorted(found)


def pending_events(client: RedisClient, scheme: KeyScheme, into: OutcomeLog) -> int:
    """Add the events of every outcome stream to ``into``; how many were new."""
    added = 0
    for region in stream_regions(client, scheme):
        entries = cast(list[StreamEntry], client.xrange(scheme.region(region).outcomes))
        events, _ = redis_state.stream_events(entries)  # invalid ones: the relay dead-letters
        added += sum(into.add(event, (-1, -1)) for event in events)
    return added


def replay_all(
    settings: Settings, client: RedisClient, policy: RetryPolicy, summary: RebuildSummary
) -> dict[int, NumberHistory]:
    """Every number's history from the outcomes topic and the streams."""
    outcomes = kafka_state.read_outcomes(settings)
    summary.pending = pending_events(
        client, KeyScheme(settings.key_prefix, settings.campaign), outcomes
    )
    summary.events = len(outcomes.events)
    summary.duplicates = outcomes.duplicates
    summary.invalid += outcomes.invalid
    by_number: dict[int, list[OutcomeEvent]] = defaultdict(list)
    for event in outcomes.events:
        by_number[event.number].append(event)
    return {
        number: replay(events[0].region, events, policy, settings.lease_max_expiries)
        for number, events in by_number.items()
    }


def _restore_counters(pipe: RedisPipeline, keys: RegionKeys, history: NumberHistory) -> None:
    """The counters of leases and calls one number contributes."""
    counts = {
        "leased": len(history.intervals),
        "expired": history.expired_leases,
        "late": history.late_answers,
        "attempted": int(history.attempted),
        "reached": history.reached,
    }
    for name, count in counts.items():
        if count:
            pipe.hincrby(keys.counters, name, count)


def restore(
    client: RedisClient,
    settings: Settings,
    histories: dict[int, NumberHistory],
    summary: RebuildSummary,
) -> None:
    """Write the replayed states into Redis."""
    scheme = KeyScheme(settings.key_prefix, settings.campaign)
    finished: list[int] = []
    pipe = client.pipeline(transaction=False)
    for number, history in histories.items():
        keys = scheme.region(history.region)
        state = FINISHED.get(history.state) or _IN_PLAY_NAMES[history.state]
        summary.states[state] += 1
        pipe.sadd(scheme.regions, history.region)
        _restore_counters(pipe, keys, history)
        if history.state is NumberState.IN_PLAY:
            _in_play(pipe, keys, number, history)
            continue
        finished.append(number)
        pipe.hincrby(keys.counters, "enqueued", 1)
        if history.state is NumberState.PARKED:
            _in_play(pipe, keys, number, history)
            pipe.sadd(keys.parked, str(number))
        else:
            pipe.hincrby(keys.counters, state, 1)
    pipe.execute()
    dedupe.mark_seen(client, scheme, finished)
    # the answers' do-not-call numbers, through the list's one writer (its keys and shards)
    listed = {n: h.region for n, h in histories.items() if h.dnc_listed}
    add_numbers(client, settings.key_prefix, listed, listed.get)


def _in_play(pipe: RedisPipeline, keys: RegionKeys, number: int, history: NumberHistory) -> None:
    if history.attempts:
        pipe.hset(keys.attempts, str(number), history.attempts)
    if history.expiries:
        pipe.hset(keys.expiries, str(number), history.expiries)


def restore_ingested(client: RedisClient, settings: Settings, summary: RebuildSummary) -> None:
    """The per-region ``ingested`` counts (the coverage denominators), from the numbers topic."""
    summary.ingested = kafka_state.count_ingested(settings)
    if summary.ingested:
        scheme = KeyScheme(settings.key_prefix, settings.campaign)
        client.hset(scheme.ingested, mapping=dict(summary.ingested))  # type: ignore[arg-type]


def restore_operator_dnc(client: RedisClient, settings: Settings, summary: RebuildSummary) -> None:
    """The do-not-call list the operators added, from ``phonebank.dnc``."""
    by_region: dict[int, str] = {}
    for entry in decoded(settings, settings.dnc_topic, DncRecord.decode, summary):
        by_region[entry.number] = entry.region
    add_numbers(client, settings.key_prefix, by_region, by_region.get)
    summary.operator_dnc = len(by_region)


def require_lost(client: RedisClient, scheme: KeyScheme) -> None:
    """Refuse a Redis that still has the assigner's dedupe bitmaps: it was not lost (a
    partial loss is wiped first), or a rebuild already ran; either way restoring again
    would count every finished number twice."""
    pattern = scheme.seen("*")
    for node in primaries(client):
        for _ in node.scan_iter(pattern, SCAN_COUNT):
            raise RebuildError(
                "Redis still holds the assigner's dedupe bitmaps: it was not lost, or a "
                "rebuild already ran. Wipe the campaign's keys first (README, "
                "'Rebuilding Redis from Kafka')"
            )


def forget_assigner_offsets(settings: Settings) -> None:
    """Delete the assigner group (refused while a member is alive)."""
    admin = make_admin(settings)
    try:
        group = admin.describe_groups([settings.assigner_group])[settings.assigner_group]
        if group["members"]:
            raise RebuildError(
                f"{len(group['members'])} assigner(s) still running in group "
                f"{settings.assigner_group}: stop them first"
            )
        if settings.assigner_group in {g["group_id"] for g in admin.list_groups()}:
            admin.delete_groups([settings.assigner_group])
    finally:
        admin.close()


def rebuild(
    settings: Settings, client: RedisClient, policy: RetryPolicy | None = None
) -> RebuildSummary:
    """Rebuild Redis from Kafka (see the module docstring)."""
    summary = RebuildSummary()
    require_lost(client, KeyScheme(settings.key_prefix, settings.campaign))
    forget_assigner_offsets(settings)
    restore_operator_dnc(client, settings, summary)
    histories = replay_all(settings, client, policy or RetryPolicy(), summary)
    restore(client, settings, histories, summary)
    restore_ingested(client, settings, summary)
    log.info("rebuilt from %d events: %s", summary.events, dict(summary.states))
    return summary


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    """``phonebank rebuild``."""
    client = connect(settings)
    try:
        summary = rebuild(settings, client)
    except RebuildError as exc:
        print(f"phonebank rebuild: {exc}")
        return 1
    finally:
        client.close()
    print(
        f"replayed {summary.events} outcome events ({summary.pending} of them from the "
        f"streams of the new Redis, {summary.duplicates} duplicates, "
        f"{summary.invalid} invalid), {summary.operator_dnc} operator do-not-call numbers; "
        f"ingested counts of {len(summary.ingested)} regions; "
        f"numbers: {dict(summary.states)}. Start the assigners: they queue the rest from "
        f"the numbers topic. Recount the report with: phonebank reporter --rebuild"
    )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank rebuild``."""
    parser = commands.add_parser(
        "rebuild", help="restore Redis from Kafka (assigners stopped) after it was lost"
    )
    parser.set_defaults(handler=cmd_rebuild)
