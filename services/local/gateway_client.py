"""A small HTTP client of the gateway's lease API, as the demo's simulated volunteers use it.

The simulated volunteers are frontends like any other: they hold a volunteer bearer
token and speak ``/api/v1/`` over HTTP, never the lease client. One
:class:`GatewayClient` per volunteer thread keeps one connection (reopened when the
server closes it). An acquire carries an ``Idempotency-Key`` that is reused when the
request is retried after a network failure or a 5xx, so a lost answer never costs a
second number; a complete is safe to repeat (the gateway answers ``already_recorded``).
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

#: seconds one request may take
REQUEST_TIMEOUT_SECONDS = 10.0
#: tries of one request before giving up (network failures and 5xx answers)
MAX_TRIES = 5
#: seconds between two tries of a failed request
RETRY_PAUSE_SECONDS = 0.2
#: seconds to wait on a 409/423/429 whose answer names no time
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class GatewayUnavailableError(Exception):
    """The gateway did not answer (or answered 5xx) for every try of a request."""


@dataclass(frozen=True)
class Answer:
    """Status and JSON body (``{}`` for none) of one request."""

    status: int
    data: dict[str, Any]
    retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS


class GatewayClient:
    """One volunteer's HTTP session with a gateway on ``host:port``."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._connection: http.client.HTTPConnection | None = None

    def acquire(self, languages: tuple[str, ...] = ("ru",)) -> Answer:
        """``POST /api/v1/leases`` (201 lease, 204 nothing now, 409, 423, 429 …)."""
        key = uuid.uuid4().hex
        return self._request(
            "/api/v1/leases", {"languages": list(languages)}, {"Idempotency-Key": key}
        )

    def complete(
        self, lease: dict[str, Any], outcome: str, callback_at: str | None = None
    ) -> Answer:
        """``POST /api/v1/leases/{id}/complete`` with the lease token."""
        body: dict[str, Any] = {"outcome": outcome}
        if callback_at is not None:
            body["callback_at"] = callback_at
        path = f"/api/v1/leases/{lease['lease_id']}/complete"
        return self._request(path, body, {"X-Lease-Token": lease["lease_token"]})

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _request(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        payload = json.dumps(body).encode()
        for _ in range(MAX_TRIES):
            try:
                answer = self._send(path, payload, {**self._headers, **headers})
            except (OSError, http.client.HTTPException):
                self.close()
            else:
                if answer.status < HTTPStatus.INTERNAL_SERVER_ERROR:
                    return answer
            time.sleep(RETRY_PAUSE_SECONDS)
        raise GatewayUnavailableError(f"no answer from the gateway for {path.split('/')[3]}")

    def _send(self, path: str, payload: bytes, headers: dict[str, str]) -> Answer:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=REQUEST_TIMEOUT_SECONDS
            )
        self._connection.request("POST", path, body=payload, headers=headers)
        response = self._connection.getresponse()
        raw = response.read()
        if response.will_close:
            self.close()
        data = json.loads(raw) if raw else {}
        return Answer(response.status, data if isinstance(data, dict) else {}, _wait(response))


def _wait(response: http.client.HTTPResponse) -> float:
    value = response.getheader("Retry-After") or ""
    return float(value) if value.isdigit() else DEFAULT_RETRY_AFTER_SECONDS
