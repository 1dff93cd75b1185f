"""``phonebank rebuild``: Redis wiped or lost → its state again, from Kafka alone.

Kafka is the system of record. With the assigners stopped, the rebuild

1. reads ``phonebank.dnc`` (the operators' do-not-call list) and ``phonebank.outcomes``
   from the start (events deduplicated by id, in completion order);
2. replays each number's outcomes through the retry policy: a number that ended (done,
   retired, do-not-call, or parked after too many expiries) is restored in that state
   and marked seen, so the assigner never queues it again; a number still in play keeps
   its attempt and expiry counts and is queued again by the assigner;
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError

from phonebank.assigner import dedupe
from phonebank.domain.records import DncRecord, Outcome, OutcomeEvent
from phonebank.domain.retry_policy import Disposition, RetryPolicy
from phonebank.infra.kafka import make_admin, read_topic
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.leases.dnc import add_numbers
from phonebank.leases.keys import KeyScheme, dnc_list_key
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: Dispositions after which a number is never queued again.
FINISHED = {Disposition.DONE: "done", Disposition.RETIRE: "retired", Disposition.DO_NOT_CALL: "dnc"}


Record = TypeVar("Record")


class RebuildError(RuntimeError):
    """The rebuild cannot run now; the message says why."""


@dataclass
class NumberHistory:
    """One number's fate, replayed from its outcome events."""

    region: str
    attempts: int = 0
    expiries: int = 0
    disposition: Disposition = Disposition.REQUEUE

    def apply(self, event: OutcomeEvent, policy: RetryPolicy) -> None:
        """Fold one event (in completion order) into the history."""
        if self.disposition in FINISHED:
            return
        if event.outcome is Outcome.EXPIRED:
            self.expiries += 1
            return
        rule = policy.rule(event.outcome)
        if rule.counts_attempt:
            self.attempts = max(self.attempts, event.attempt)
        self.disposition = rule.next_step(self.attempts)


@dataclass
class RebuildSummary:
    """What the rebuild restored (counts)."""

    events: int = 0
    duplicates: int = 0
    invalid: int = 0
    operator_dnc: int = 0
    states: Counter[str] = field(default_factory=Counter)


def decoded(
    settings: Settings, topic: str, decode: Callable[[bytes], Record], summary: RebuildSummary
) -> Iterator[Record]:
    """The valid records of a whole topic; the invalid ones are counted, not fatal."""
    for record in read_topic(settings, topic):
        try:
            yield decode(record.value)
        except ValidationError:
            summary.invalid += 1


def replay(
    settings: Settings, policy: RetryPolicy, summary: RebuildSummary
) -> dict[int, NumberHistory]:
    """Every number's history from the outcomes topic."""
    events: list[OutcomeEvent] = []
    seen_ids: set[str] = set()
    for event in decoded(settings, settings.outcomes_topic, OutcomeEvent.decode, summary):
        if event.event_id in seen_ids or event.campaign != settings.campaign:
            summary.duplicates += event.event_id in seen_ids
            continue
        seen_ids.add(event.event_id)
        events.append(event)
    summary.events = len(events)
    histories: dict[int, NumberHistory] = {}
    for event in sorted(events, key=lambda e: e.completed_at_ms):
        history = histories.setdefault(event.number, NumberHistory(event.region))
        history.apply(event, policy)
    return histories


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
        parked = history.expiries >= settings.lease_max_expiries
        state = FINISHED.get(history.disposition) or ("parked" if parked else "in play")
        summary.states[state] += 1
        pipe.sadd(scheme.regions, history.region)
        if state == "in play":
            if history.attempts:
                pipe.hset(keys.attempts, str(number), history.attempts)
            if history.expiries:
                pipe.hset(keys.expiries, str(number), history.expiries)
            continue
        finished.append(number)
        pipe.hincrby(keys.counters, "enqueued", 1)
        if state == "parked":
            pipe.sadd(keys.parked, str(number))
        else:
            pipe.hincrby(keys.counters, state, 1)
        if state == "dnc":
            pipe.sadd(keys.dnc, str(number))
            pipe.sadd(dnc_list_key(settings.key_prefix, number), str(number))
    pipe.execute()
    dedupe.mark_seen(client, scheme, finished)


def restore_operator_dnc(client: RedisClient, settings: Settings, summary: RebuildSummary) -> None:
    """The do-not-call list the operators added, from ``phonebank.dnc``."""
    by_region: dict[int, str] = {}
    for entry in decoded(settings, settings.dnc_topic, DncRecord.decode, summary):
        by_region[entry.number] = entry.region
    add_numbers(client, settings.key_prefix, by_region, by_region.get)
    summary.operator_dnc = len(by_region)


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
    forget_assigner_offsets(settings)
    restore_operator_dnc(client, settings, summary)
    restore(client, settings, replay(settings, policy or RetryPolicy(), summary), summary)
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
        f"replayed {summary.events} outcome events ({summary.duplicates} duplicates, "
        f"{summary.invalid} invalid), {summary.operator_dnc} operator do-not-call numbers; "
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
