"""Helpers of the gateway tests: a gateway on an ephemeral port and a tiny HTTP client."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from phonebank.gateway.app import Gateway
from phonebank.gateway.cli import build_gateway, loop_transport, serve
from phonebank.gateway.tokens import mint
from phonebank.infra.http import HttpLimits, RunningServer
from phonebank.leases.client import LeaseClient
from phonebank.settings import Settings
from tests.integration.lease_helpers import MOSCOW_ONLY, lease_client

#: seconds a test request may take
HTTP_TIMEOUT_SECONDS = 10
#: seconds a test volunteer token lives
TOKEN_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Answer:
    """One HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Http:
    """A volunteer-side HTTP client of a gateway on 127.0.0.1:``port``."""

    port: int
    settings: Settings

    def token(self, volunteer: str) -> str:
        """A valid bearer token for ``volunteer``."""
        secret = self.settings.volunteer_secret.get_secret_value()
        return mint(secret, volunteer, self.settings.campaign, TOKEN_TTL_SECONDS)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        volunteer: str | None = None,
        bearer: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; ``body`` bytes are sent as is, anything else as JSON."""
        sent = dict(headers or {})
        if volunteer is not None:
            bearer = self.token(volunteer)
        if bearer is not None:
            sent.setdefault("Authorization", f"Bearer {bearer}")
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=HTTP_TIMEOUT_SECONDS
        )
        try:
            connection.request(method, path, body=payload, headers=sent)
            answer = connection.getresponse()
            return Answer(
                answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
            )
        finally:
            connection.close()

    def acquire(
        self, volunteer: str, preferences: Any = None, idempotency_key: str | None = None
    ) -> Answer:
        """``POST /api/v1/leases`` (with an ``Idempotency-Key`` if given)."""
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        return self.request(
            "POST", "/api/v1/leases", preferences or {}, volunteer=volunteer, headers=headers
        )

    def me(self, volunteer: str) -> Answer:
        """``GET /api/v1/me``."""
        return self.request("GET", "/api/v1/me", volunteer=volunteer)

    def on_lease(
        self,
        action: str,
        volunteer: str,
        lease: Mapping[str, Any],
        body: Any = None,
        lease_token: str | None = None,
    ) -> Answer:
        """``POST /api/v1/leases/{id}/{action}`` with the lease token in the header."""
        token = lease["lease_token"] if lease_token is None else lease_token
        return self.request(
            "POST",
            f"/api/v1/leases/{lease['lease_id']}/{action}",
            body if body is not None else {},
            volunteer=volunteer,
            headers={"X-Lease-Token": token},
        )


@dataclass
class Running(Http):
    """A gateway serving in this process and the lease client behind it."""

    server: RunningServer
    gateway: Gateway
    leases: LeaseClient


@contextmanager
def running_gateway(
    settings: Settings, client: redis.Redis, at: dt.datetime, limits: HttpLimits | None = None
) -> Iterator[Running]:
    """A gateway whose lease clock reads ``at`` (Moscow only), on an ephemeral port."""
    leases = lease_client(settings, client, at, MOSCOW_ONLY, loop_transport(settings, client))
    gateway = build_gateway(settings, client=client, leases=leases)
    server = serve(gateway, settings, "127.0.0.1", 0, limits)
    try:
        yield Running(server.port, settings, server, gateway, leases)
    finally:
        server.stop()
