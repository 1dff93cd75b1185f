"""The volunteer's record of leases that may be open, so a lost answer never loses a number.

``open`` (a HASH on the volunteer's slot: lease token → lease id) is written in the same
round trip as, and *before*, each region's ``acquire`` (docs/lease-protocol.md, "Open
leases"); complete, release and an acquire that leased nothing remove the entry. The
record may name a lease that was never granted or has ended since: :meth:`OpenLeases.find`
reads each named lease in its region and keeps only live ones with the matching token,
dropping the stale entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from phonebank.domain.lease_types import LeaseError, split_lease_id
from phonebank.infra.redis_client import RedisClient
from phonebank.infra.replies import reply_text
from phonebank.leases.keys import KeyScheme
from phonebank.leases.limits import token_owner
from phonebank.leases.scripts import ScriptPipeline, Scripts

#: most entries read from one volunteer's record (the concurrent cap is at most 10)
MAX_OPEN_ENTRIES = 32
#: fields of a lease hash that rebuild the acquire answer
LEASE_FIELDS = ("token", "state", "number", "attempt", "deadline_ms", "leased_at_ms", "guideline")


@dataclass(frozen=True)
class OpenLease:
    """One live lease of the volunteer, as its region's hash holds it."""

    lease_id: str
    token: str
    region: str
    national_number: int
    attempt: int
    deadline_ms: int
    leased_at_ms: int
    guideline: str


class OpenLeases:
    """Writes and reads the volunteer's ``open`` record."""

    def __init__(self, client: RedisClient, keys: KeyScheme, scripts: Scripts, ttl_ms: int) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._ttl_ms = ttl_ms

    def _open_key(self, token: str) -> str | None:
        person = token_owner(token)
        return None if person is None else self._keys.volunteer(person).open

    def record(self, batch: ScriptPipeline, token: str, lease_id: str) -> None:
        """Queue ``HSET open token lease_id`` (before the acquire it records)."""
        key = self._open_key(token)
        if key is not None:
            batch.hset(key, token, lease_id)
            batch.pexpire(key, self._ttl_ms)

    def forget(self, batch: ScriptPipeline, token: str) -> None:
        """Queue ``HDEL open token`` (the lease ended, or none was granted)."""
        key = self._open_key(token)
        if key is not None:
            batch.hdel(key, token)

    def find(
        self, person: str, known_region: Callable[[str], bool], now_ms: int
    ) -> list[OpenLease]:
        """The volunteer's live leases, most recently granted first; stale entries go."""
        key = self._keys.volunteer(person).open
        listing = self._scripts.pipeline(self._client)
        listing.hgetall(key)
        entries = _pairs(listing.execute()[0])[:MAX_OPEN_ENTRIES]
        named: list[tuple[str, str, str]] = []
        stale: list[str] = []
        for token, lease_id in entries:
            region = _region(lease_id, known_region)
            if region is None:
                stale.append(token)
            else:
                named.append((token, lease_id, region))
        batch = self._scripts.pipeline(self._client)
        for _, lease_id, region in named:
            batch.hmget(self._keys.region(region).lease(lease_id), *LEASE_FIELDS)
        replies = batch.execute() if named else []
        found: list[OpenLease] = []
        for (token, lease_id, _), reply in zip(named, replies, strict=True):
            lease = _live(lease_id, token, reply, now_ms)
            if lease is None:
                stale.append(token)
            else:
                found.append(lease)
        if stale:
            forget = self._scripts.pipeline(self._client)
            for token in stale:
                forget.hdel(key, token)
            forget.execute()
        return sorted(found, key=lambda lease: lease.leased_at_ms, reverse=True)


def _pairs(reply: Any) -> list[tuple[str, str]]:
    """The (token, lease id) entries of a raw HGETALL reply: RESP3's map, or RESP2's
    flat list (the protocol the connection negotiated)."""
    if isinstance(reply, dict):
        pairs: Iterable[tuple[Any, Any]] = reply.items()
    else:
        flat = list(reply) if isinstance(reply, list) else []
        pairs = zip(flat[::2], flat[1::2], strict=True)
    return [(reply_text(token), reply_text(lease_id)) for token, lease_id in pairs]


def _region(lease_id: str, known_region: Callable[[str], bool]) -> str | None:
    try:
        region, _ = split_lease_id(lease_id)
    except LeaseError:
        return None
    return region if known_region(region) else None


def _live(lease_id: str, token: str, reply: list[Any], now_ms: int) -> OpenLease | None:
    values = [None if value is None else reply_text(value) for value in reply]
    held_token, state, number, attempt, deadline, leased_at, guideline = values
    if held_token != token or state != "live" or deadline is None or int(deadline) <= now_ms:
        return None
    region, _ = split_lease_id(lease_id)
    return OpenLease(
        lease_id,
        token,
        region,
        int(number or 0),
        int(attempt or 1),
        int(deadline),
        int(leased_at or 0),
        guideline or "",
    )
