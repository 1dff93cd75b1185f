"""What Redis holds for one campaign, read for the audit in few round trips.

- :func:`read_seen`: the assigner's dedupe bitmaps (found with ``SCAN``, one ``GET`` each
  in one pipeline).
- :func:`read_region`: one region's queues, leases, counters, do-not-call set and the
  outcome events not yet relayed, in ONE ``MULTI``/``EXEC`` with the region's Redis
  ``TIME``: every key of a region shares its hash tag, so the transaction runs on one
  node (or one Cluster slot) and the region is seen at a single instant, as the scripts
  see it. The live leases' hashes follow in one pipeline.
- :func:`read_ended_leases`: the ended lease hashes (kept for the retention period),
  found with ``SCAN`` on every master, read with ``HMGET`` in pipelines.

Nothing here is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from phonebank.domain.records import OutcomeEvent
from phonebank.infra.redis_client import RedisClient, primaries
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import DEDUPE_PREFIX_DIGITS, KeyScheme, RegionKeys, dnc_key
from phonebank.leases.relay import StreamEntry, dead_letter_key

Int64Array = npt.NDArray[np.int64]
#: keys asked per SCAN call
SCAN_COUNT = 1000
#: commands per pipeline when reading many small keys
PIPELINE_BATCH = 2000
#: Redis TIME on the node of the region's slot (the script reads no key)
REGION_TIME_SCRIPT = "return redis.call('TIME')"
#: the lease hash fields the audit reads, in order
LEASE_FIELDS = ("number", "state", "leased_at_ms", "deadline_ms", "completed_at_ms", "attempt")


@dataclass(frozen=True)
class LeaseRecord:
    """One lease hash (live or ended)."""

    lease_id: str
    region: str
    number: int
    state: str
    leased_at_ms: int
    deadline_ms: int
    completed_at_ms: int


@dataclass
class RegionSnapshot:
    """One region at one instant (its Redis ``TIME``)."""

    region: str
    now_ms: int
    ready: Int64Array
    due: Int64Array
    parked: Int64Array
    dnc: Int64Array
    #: number → id of the live lease holding it
    holders: dict[int, str]
    #: live lease id → deadline (ms)
    leases: dict[str, int]
    counters: dict[str, int]
    #: events in the outcome stream, not yet relayed to Kafka
    pending: list[OutcomeEvent]
    #: stream entries that are not valid events (the relay will dead-letter them)
    pending_invalid: int
    #: entries in the relay's dead-letter stream
    dead_letters: int
    #: the live leases' hashes (read right after the snapshot; a lease gone by then is absent)
    live: dict[str, LeaseRecord] = field(default_factory=dict)


def as_mapping(reply: Any) -> dict[Any, Any]:
    """A hash reply as a dict: parsed already, or raw (a Cluster transaction returns its
    replies without redis-py's callbacks: flat lists)."""
    if isinstance(reply, dict):
        return reply
    flat = list(reply or [])
    return dict(zip(flat[::2], flat[1::2], strict=True))


def as_scored(reply: Any) -> list[tuple[Any, float]]:
    """A ``WITHSCORES`` reply as (member, score) pairs, parsed already or raw."""
    items = list(reply or [])
    if items and isinstance(items[0], (tuple, list)):
        return [(member, float(score)) for member, score in items]
    return [(member, float(score)) for member, score in zip(items[::2], items[1::2], strict=True)]


def to_numbers(members: Iterable[bytes | str]) -> Int64Array:
    """Redis members (decimal national numbers) as an array; non-numbers dropped."""
    values = [int(m) for m in members if reply_text(m).isdigit()]
    return np.asarray(values, dtype=np.int64)


def read_seen(client: RedisClient, scheme: KeyScheme) -> dict[int, bytes]:
    """Prefix (3 digits) → its dedupe bitmap."""
    pattern = scheme.seen("*")
    keys = [key for node in primaries(client) for key in node.scan_iter(pattern, SCAN_COUNT)]
    pipe = client.pipeline(transaction=False)
    prefixes = []
    for key in keys:
        prefix = reply_text(key).rsplit("{p:", 1)[-1].rstrip("}")
        if len(prefix) == DEDUPE_PREFIX_DIGITS and prefix.isdigit():
            prefixes.append(int(prefix))
            pipe.get(key)
    return {p: bytes(v or b"") for p, v in zip(prefixes, pipe.execute(), strict=True)}


def read_all_dnc(client: RedisClient, prefix: str) -> Int64Array:
    """Every do-not-call number of the prefix (all campaigns): the union of every set under
    its do-not-call namespace (``keys.dnc_key``'s ``P:dnc:``: the regions' screens, the
    ``unplaced`` set, and whatever other shards the list is kept in), found with SCAN."""
    namespace = dnc_key(prefix, "").split("{", 1)[0]
    keys = [k for node in primaries(client) for k in node.scan_iter(f"{namespace}*", SCAN_COUNT)]
    members: list[Int64Array] = [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(keys), PIPELINE_BATCH):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + PIPELINE_BATCH]:
            pipe.smembers(key)
        members.extend(to_numbers(reply) for reply in pipe.execute())
    return np.unique(np.concatenate(members))


def read_region(client: RedisClient, keys: RegionKeys) -> RegionSnapshot:
    """One region's state in one transaction, then its live leases' hashes."""
    pipe = client.pipeline(transaction=True)
    # TIME through a script on the region's key: a Cluster pipeline refuses keyless commands
    pipe.execute_command("EVAL", REGION_TIME_SCRIPT, 1, keys.ready)
    pipe.lrange(keys.ready, 0, -1)
    pipe.zrange(keys.due, 0, -1)
    pipe.smembers(keys.parked)
    pipe.smembers(keys.dnc)
    pipe.hgetall(keys.holders)
    pipe.zrange(keys.leases, 0, -1, withscores=True)
    pipe.hgetall(keys.counters)
    pipe.xrange(keys.outcomes)
    pipe.xlen(dead_letter_key(keys))
    time, ready, due, parked, dnc, holders, leases, counters, stream, dead = pipe.execute()
    pending, invalid = stream_events(stream)
    snapshot = RegionSnapshot(
        region=keys.region,
        now_ms=int(time[0]) * 1000 + int(time[1]) // 1000,
        ready=to_numbers(ready),
        due=to_numbers(due),
        parked=to_numbers(parked),
        dnc=to_numbers(dnc),
        holders={int(n): reply_text(lease) for n, lease in as_mapping(holders).items()},
        leases={reply_text(lease): int(score) for lease, score in as_scored(leases)},
        counters={reply_text(k): int(v) for k, v in as_mapping(counters).items()},
        pending=pending,
        pending_invalid=invalid,
        dead_letters=int(dead),
    )
    snapshot.live = {r.lease_id: r for r in read_leases(client, keys, list(snapshot.leases))}
    return snapshot


def stream_events(entries: list[StreamEntry]) -> tuple[list[OutcomeEvent], int]:
    """The valid events of outcome stream entries, and how many were not valid."""
    events = []
    invalid = 0
    for _, fields in entries:
        decoded = {reply_text(k): reply_text(v) for k, v in as_mapping(fields).items()}
        try:
            events.append(OutcomeEvent.model_validate(decoded))
        except ValidationError:
            invalid += 1
    return events, invalid


def read_leases(client: RedisClient, keys: RegionKeys, lease_ids: list[str]) -> list[LeaseRecord]:
    """The hashes of ``lease_ids`` of one region (absent ones skipped)."""
    records = []
    for start in range(0, len(lease_ids), PIPELINE_BATCH):
        batch = lease_ids[start : start + PIPELINE_BATCH]
        pipe = client.pipeline(transaction=False)
        for lease_id in batch:
            pipe.hmget(keys.lease(lease_id), *LEASE_FIELDS)
        for lease_id, values in zip(batch, pipe.execute(), strict=True):
            record = _lease_record(lease_id, keys.region, values)
            if record is not None:
                records.append(record)
    return records


def _lease_record(lease_id: str, region: str, values: list[Any]) -> LeaseRecord | None:
    number, state, leased_at, deadline, completed_at, _ = values
    if number is None or state is None:
        return None
    try:
        return LeaseRecord(
            lease_id=lease_id,
            region=region,
            number=int(number),
            state=reply_text(state),
            leased_at_ms=int(float(leased_at or 0)),
            deadline_ms=int(float(deadline or 0)),
            completed_at_ms=int(float(completed_at or 0)),
        )
    except ValueError:
        return None


def lease_keys(client: RedisClient, scheme: KeyScheme) -> Iterator[tuple[str, str]]:
    """(region, lease id) of every lease hash of the campaign, live or ended."""
    marker = ":lease:"
    pattern = f"{scheme.prefix}:c:{scheme.campaign}:{{r:*}}{marker}*"
    for node in primaries(client):
        for key in node.scan_iter(pattern, SCAN_COUNT):
            text = reply_text(key)
            head, _, lease_id = text.partition(marker)
            region = head.rsplit("{r:", 1)[-1].rstrip("}")
            yield region, lease_id


def read_ended_leases(client: RedisClient, scheme: KeyScheme) -> list[LeaseRecord]:
    """Every lease hash of the campaign (the caller tells live from ended by ``state``)."""
    by_region: dict[str, list[str]] = {}
    for region, lease_id in lease_keys(client, scheme):
        by_region.setdefault(region, []).append(lease_id)
    records = []
    for region, ids in sorted(by_region.items()):
        records.extend(read_leases(client, scheme.region(region), ids))
    return records
