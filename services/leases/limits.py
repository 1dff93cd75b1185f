"""Volunteer limits on the volunteer's own Cluster slot: concurrent leases and leases per hour.

The region's scripts cannot touch the volunteer's keys (another slot), so each lease
holds a *reservation* in the volunteer's ``live`` and ``hourly`` sets, taken atomically
by ``reserve-2.lua`` before the region's ``acquire`` runs (see :mod:`phonebank.leases.client`).

The reservation's member is a digest of the lease token, and the token starts with the
volunteer's keyed hash: whoever completes, releases or renews with the token can find
and end (or extend) the reservation in the same round trip as the region call, and
nobody without the token can free a slot. The token is random after its first part.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from phonebank.domain.clock import HOUR_MS
from phonebank.leases.keys import KeyScheme, VolunteerKeys
from phonebank.leases.scripts import ScriptPipeline

#: hex digits of the keyed volunteer hash (128 bits)
VOLUNTEER_HASH_HEX_DIGITS = 32
#: random bytes in a lease token after the volunteer hash
TOKEN_RANDOM_BYTES = 16
#: separates the volunteer hash from the random part of a token
OWNER_SEPARATOR = "."
#: hex digits of a reservation member (digest of the token)
RESERVATION_HEX_DIGITS = 32
#: milliseconds in the rolling window of the hourly cap
ROLLING_HOUR_MS = HOUR_MS


def volunteer_hash(secret: str, volunteer: str) -> str:
    """The keyed hash that stands for a volunteer id in Redis and in events."""
    digest = hmac.new(secret.encode(), volunteer.encode(), hashlib.sha256).hexdigest()
    return digest[:VOLUNTEER_HASH_HEX_DIGITS]


def new_token(person: str) -> str:
    """A fresh lease token for the volunteer whose keyed hash is ``person``."""
    return f"{person}{OWNER_SEPARATOR}{secrets.token_hex(TOKEN_RANDOM_BYTES)}"


def idempotent_ids(secret: str, person: str, key: str) -> tuple[str, str]:
    """``(lease token, lease id suffix)`` for the volunteer ``person`` and an
    ``Idempotency-Key``: the same key gives the same pair, so a retried acquire is
    recognised (``acquire-9.lua`` answers the existing lease); nobody without the secret
    can compute them."""
    digest = hmac.new(
        secret.encode(), f"idempotent-acquire/{person}/{key}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{person}{OWNER_SEPARATOR}{digest[:32]}", digest[32:64]


def token_owner(token: str) -> str | None:
    """The volunteer hash a token was made for (``None`` for a malformed token)."""
    person, separator, rest = token.partition(OWNER_SEPARATOR)
    if not separator or len(person) != VOLUNTEER_HASH_HEX_DIGITS or not rest:
        return None
    return person


def reservation_of(token: str) -> str:
    """The reservation member that stands for the lease of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()[:RESERVATION_HEX_DIGITS]


class VolunteerLimits:
    """Queues the volunteer-slot half of each lease operation onto a script pipeline."""

    def __init__(self, keys: KeyScheme, max_leases: int, max_per_hour: int, ttl_ms: int) -> None:
        self._keys = keys
        self._max_leases = max_leases
        self._max_per_hour = max_per_hour
        self._ttl_ms = ttl_ms

    def _keys_of(self, token: str) -> VolunteerKeys | None:
        person = token_owner(token)
        return None if person is None else self._keys.volunteer(person)

    def reserve(self, batch: ScriptPipeline, token: str, clock_offset_ms: int) -> None:
        """Take one slot of both limits for the lease of ``token`` (reply: reserve-2.lua)."""
        keys = self._keys_of(token)
        if keys is None:
            raise ValueError("malformed token")
        batch.script(
            "reserve",
            keys,
            [
                reservation_of(token),
                self._ttl_ms,
                self._max_leases,
                self._max_per_hour,
                ROLLING_HOUR_MS,
                clock_offset_ms,
            ],
        )

    def unreserve(self, batch: ScriptPipeline, token: str) -> None:
        """Give back both slots of a reservation that led to no lease."""
        keys = self._keys_of(token)
        if keys is not None:
            batch.script("unreserve", keys, [reservation_of(token)])

    def end(self, batch: ScriptPipeline, token: str) -> None:
        """The lease of ``token`` ended: free its concurrent slot (the hourly one stays)."""
        keys = self._keys_of(token)
        if keys is not None:
            batch.zrem(keys.live, reservation_of(token))

    def extend(self, batch: ScriptPipeline, token: str, deadline_ms: int) -> None:
        """The lease of ``token`` was renewed: keep its slot until ``deadline_ms``."""
        keys = self._keys_of(token)
        if keys is not None:
            batch.zadd_existing(keys.live, reservation_of(token), deadline_ms)
            batch.pexpire(keys.live, self._ttl_ms)
