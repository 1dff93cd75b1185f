"""Who may call: the volunteer token, the ban list and the rate limits, checked per request.

The token is verified first (:mod:`phonebank.gateway.tokens`; CPU only). Then ONE round
trip carries every Redis check of the request: the client address's rate limit, the
ban list (``SISMEMBER`` of the volunteer hash) and the token's rate limit; for a refused
token, the address's limit and its failed-authentication limit. The answers are read in
that order: the address's limit first (429), then the token (401, logged at most once a
minute per address), the ban (403), the token's limit (429). Every limit is a
sliding-window counter in Redis (``lua/ratelimit-1.lua``), so it holds across gateway
replicas; a refusal carries the milliseconds until the window frees a request. Every
check raises :class:`~phonebank.gateway.errors.ApiError`.

Why a script of the project's and not the ``limits`` library (used until 2026-12-03):
``limits`` makes one round trip per limit through redis-py's command path; with the ban
check that was three round trips before any lease call, 0.4 ms of the gateway's CPU per
request on the benchmark machine (docs/gateway.md, "Server choice and the benchmark").
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from phonebank.gateway.errors import ApiError, banned, rate_limited, unauthorized
from phonebank.gateway.tokens import TokenError, TokenVerifier, VolunteerToken
from phonebank.infra.redis_client import RedisClient
from phonebank.leases.keys import KeyScheme
from phonebank.leases.limits import volunteer_hash
from phonebank.leases.scripts import ReturnCode, ScriptPipeline, Scripts, refused_argument
from phonebank.leases.transport import Transport
from phonebank.settings import RATE_NOTATION, SettingsError

log = logging.getLogger(__name__)

#: seconds between two log lines about failed authentications from one address
AUTH_LOG_INTERVAL_SECONDS = 60.0
#: addresses remembered for that log throttle (oldest forgotten first)
AUTH_LOG_ADDRESSES = 4096
#: hex digits of the digest that stands for a token or an address in rate-limit keys
LIMIT_KEY_HEX_DIGITS = 32
#: milliseconds of each unit of the rate notation
UNIT_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
#: the rate-limit script's clock offset (ms): Redis TIME as it is (the script's tests move
#: it; the gateway never does)
REDIS_CLOCK = 0
_BEARER = "bearer "
_NOTATION = re.compile(RATE_NOTATION)


def _digest(text: str) -> str:
    """A stand-in for a token or an address in Redis keys (never the value itself)."""
    return hashlib.sha256(text.encode()).hexdigest()[:LIMIT_KEY_HEX_DIGITS]


@dataclass(frozen=True)
class RateLimit:
    """Requests allowed per window (``120/minute``: 120 per 60,000 ms)."""

    #: the setting it was read from (named in errors)
    variable: str
    requests: int
    #: milliseconds
    window_ms: int

    @classmethod
    def parse(cls, variable: str, notation: str) -> RateLimit:
        """``COUNT/UNIT``; :class:`SettingsError` naming ``variable`` otherwise."""
        match = _NOTATION.match(notation)
        if match is None:
            raise SettingsError(
                f"{variable}={notation!r}: write COUNT/UNIT, a unit of second, minute, "
                "hour or day (e.g. 120/minute)"
            )
        return cls(variable, int(notation.split("/", maxsplit=1)[0]), UNIT_MS[match[1]])


@dataclass(frozen=True)
class RateLimits:
    """The gateway's three limits."""

    per_token: RateLimit
    per_address: RateLimit
    auth_failures: RateLimit

    @classmethod
    def parse(cls, per_token: str, per_address: str, auth_failures: str) -> RateLimits:
        return cls(
            RateLimit.parse("PHONEBANK_GATEWAY_RATE_PER_TOKEN", per_token),
            RateLimit.parse("PHONEBANK_GATEWAY_RATE_PER_ADDRESS", per_address),
            RateLimit.parse("PHONEBANK_GATEWAY_AUTH_FAILURES_PER_ADDRESS", auth_failures),
        )


class Guard:
    """Authenticates and admits one request (one instance serves every request)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        limits: RateLimits,
        client: RedisClient,
        keys: KeyScheme,
        transport: Transport | None = None,
    ) -> None:
        self._verifier = verifier
        self._limits = limits
        self._client = client
        self._keys = keys
        self._scripts = Scripts(client, transport)
        self._logged: OrderedDict[str, float] = OrderedDict()
        self._logged_lock = threading.Lock()

    def admit(self, authorization: str | None, address: str) -> VolunteerToken:
        """The caller of an ``Authorization: Bearer`` header, admitted; or 401/403/429."""
        batch = self._scripts.pipeline(self._client)
        self._count(batch, self._limits.per_address, "address", address)
        try:
            claims = self._verify(authorization)
        except TokenError as refusal:
            self._count(batch, self._limits.auth_failures, "auth-failure", address)
            address_reply, failures_reply = batch.execute()
            _check(address_reply)
            self._log_failure(address, str(refusal))
            _check(failures_reply)
            raise unauthorized(str(refusal)) from None
        batch.sismember(self._keys.banned, self.volunteer_hash(claims.volunteer_id))
        self._count(batch, self._limits.per_token, "token", claims.volunteer_id)
        address_reply, is_banned, token_reply = batch.execute()
        _check(address_reply)
        if int(is_banned):
            raise banned()
        _check(token_reply)
        return claims

    def volunteer_hash(self, volunteer_id: str) -> str:
        """The keyed hash that stands for the volunteer in Redis."""
        return volunteer_hash(self._verifier.secret, volunteer_id)

    def _count(self, batch: ScriptPipeline, limit: RateLimit, scope: str, who: str) -> None:
        key = self._keys.rate_window(scope, _digest(who))
        args = [limit.requests, limit.window_ms, REDIS_CLOCK]
        batch.script("ratelimit", {"window": key}, args)

    def _verify(self, authorization: str | None) -> VolunteerToken:
        if not authorization or authorization[: len(_BEARER)].lower() != _BEARER:
            raise TokenError("no bearer token")
        return self._verifier.verify(authorization[len(_BEARER) :].strip())

    def _log_failure(self, address: str, reason: str) -> None:
        now = time.monotonic()
        with self._logged_lock:
            last = self._logged.get(address)
            if last is not None and now - last < AUTH_LOG_INTERVAL_SECONDS:
                return
            self._logged[address] = now
            self._logged.move_to_end(address)
            while len(self._logged) > AUTH_LOG_ADDRESSES:
                self._logged.popitem(last=False)
        log.info("volunteer token refused from %s: %s", address, reason)


def _check(reply: Any) -> None:
    """Nothing for a counted request; 429 with the wait for a refused one."""
    if reply[0] == ReturnCode.OK:
        return
    if reply[0] == ReturnCode.RATE_LIMITED:
        raise rate_limited(int(reply[1]))
    raise RuntimeError(f"ratelimit refused its arguments: {refused_argument(reply)}")


__all__ = ["ApiError", "Guard", "RateLimit", "RateLimits"]
