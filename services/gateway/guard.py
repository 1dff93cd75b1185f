"""Who may call: the volunteer token, the ban list and the rate limits, checked per request.

Order: the client address's rate limit (every request, before anything else), the
token (:mod:`phonebank.gateway.tokens`; a refusal counts against the address's
failed-authentication limit and is logged at most once a minute per address), the ban
list (``SISMEMBER`` of the volunteer hash in Redis, on every call), then the token's
rate limit. Rate limits use the ``limits`` library's sliding-window counters in Redis,
so they hold across gateway replicas; a refusal carries the seconds until the window
frees a request. Every check raises :class:`~phonebank.gateway.errors.ApiError`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisClusterStorage, RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis.cluster import RedisCluster

from phonebank.gateway.errors import ApiError, banned, rate_limited, unauthorized
from phonebank.gateway.tokens import TokenError, TokenVerifier, VolunteerToken
from phonebank.infra.redis_client import RedisClient, primary_nodes
from phonebank.leases.keys import KeyScheme
from phonebank.leases.limits import volunteer_hash

log = logging.getLogger(__name__)

#: seconds between two log lines about failed authentications from one address
AUTH_LOG_INTERVAL_SECONDS = 60.0
#: addresses remembered for that log throttle (oldest forgotten first)
AUTH_LOG_ADDRESSES = 4096
#: hex digits of the digest that stands for a token or an address in rate-limit keys
LIMIT_KEY_HEX_DIGITS = 32
_BEARER = "bearer "


def _digest(text: str) -> str:
    """A stand-in for a token or an address in Redis keys (never the value itself)."""
    return hashlib.sha256(text.encode()).hexdigest()[:LIMIT_KEY_HEX_DIGITS]


def _cluster_storage(client: RedisCluster, key_prefix: str) -> RedisClusterStorage:
    """The limits' storage on the masters of ``client``, with its credentials and TLS
    (``limits`` opens its own cluster client; an ACL user's password must reach it)."""
    nodes = primary_nodes(client)
    seeds = ",".join(f"{node.host}:{node.port}" for node in nodes)
    pool = client.get_redis_connection(nodes[0]).connection_pool
    user, password = pool.connection_kwargs.get("username"), pool.connection_kwargs.get("password")
    tls = issubclass(pool.connection_class, redis.SSLConnection)
    if password is None:
        return RedisClusterStorage(f"redis+cluster://{seeds}", key_prefix=key_prefix, ssl=tls)
    return RedisClusterStorage(
        f"redis+cluster://{seeds}",
        key_prefix=key_prefix,
        ssl=tls,
        username=user or "default",
        password=password,
    )


class RateLimits:
    """Sliding-window request counters per token, per address, and failed auths."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str,
        per_token: str,
        per_address: str,
        auth_failures: str,
    ) -> None:
        storage: RedisStorage
        if isinstance(client, RedisCluster):
            storage = _cluster_storage(client, f"{prefix}:limits")
        else:
            storage = RedisStorage(
                "redis://", connection_pool=client.connection_pool, key_prefix=f"{prefix}:limits"
            )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self.per_token: RateLimitItem = parse(per_token)
        self.per_address: RateLimitItem = parse(per_address)
        self.auth_failures: RateLimitItem = parse(auth_failures)

    def take(self, item: RateLimitItem, scope: str, who: str) -> None:
        """Count one request; 429 when the window is full."""
        if not self._limiter.hit(item, scope, _digest(who)):
            raise rate_limited(self._retry_after_ms(item, scope, who))

    def _retry_after_ms(self, item: RateLimitItem, scope: str, who: str) -> int:
        reset_at = self._limiter.get_window_stats(item, scope, _digest(who)).reset_time
        return max(1000, math.ceil((reset_at - time.time()) * 1000))


class Guard:
    """Authenticates and admits one request (shared by every request thread)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        limits: RateLimits,
        client: RedisClient,
        keys: KeyScheme,
    ) -> None:
        self._verifier = verifier
        self._limits = limits
        self._client = client
        self._keys = keys
        self._logged: OrderedDict[str, float] = OrderedDict()
        self._logged_lock = threading.Lock()

    def admit_address(self, address: str) -> None:
        """The address's request limit (every request, token or not)."""
        self._limits.take(self._limits.per_address, "address", address)

    def volunteer(self, authorization: str | None, address: str) -> VolunteerToken:
        """The caller of an ``Authorization: Bearer`` header, admitted; or 401/403/429."""
        claims = self._verify(authorization, address)
        if self._client.sismember(self._keys.banned, self.volunteer_hash(claims.volunteer_id)):
            raise banned()
        self._limits.take(self._limits.per_token, "token", claims.volunteer_id)
        return claims

    def volunteer_hash(self, volunteer_id: str) -> str:
        """The keyed hash that stands for the volunteer in Redis."""
        return volunteer_hash(self._verifier.secret, volunteer_id)

    def _verify(self, authorization: str | None, address: str) -> VolunteerToken:
        try:
            if not authorization or authorization[: len(_BEARER)].lower() != _BEARER:
                raise TokenError("no bearer token")
            return self._verifier.verify(authorization[len(_BEARER) :].strip())
        except TokenError as refusal:
            self._log_failure(address, str(refusal))
            self._limits.take(self._limits.auth_failures, "auth-failure", address)
            raise unauthorized(str(refusal)) from None

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


__all__ = ["ApiError", "Guard", "RateLimits"]
