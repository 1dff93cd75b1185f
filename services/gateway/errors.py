"""The gateway's refusals: one exception with a status, a stable error code and a message.

Every error answer is ``{"error": CODE, "message": TEXT, …}`` (plus the fields a refusal
names); ``docs/gateway.md`` lists the codes. Frontends show their own words per code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

#: milliseconds in one second (Retry-After is in whole seconds)
SECOND_MS = 1000
#: seconds a client should wait after Redis was unreachable
UNAVAILABLE_RETRY_SECONDS = 5


class ApiError(Exception):
    """A refusal with its status, a stable error code and a message for developers."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        message: str,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def payload(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": self.code, "message": str(self), **self.extra}


def retry_after(milliseconds: int) -> dict[str, str]:
    """A ``Retry-After`` header of at least one second."""
    return {"Retry-After": str(max(1, math.ceil(milliseconds / SECOND_MS)))}


def unauthorized(message: str) -> ApiError:
    """401 with a Bearer challenge."""
    return ApiError(
        HTTPStatus.UNAUTHORIZED,
        "unauthorized",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="phonebank"'},
    )


def banned() -> ApiError:
    """403: the volunteer is on the ban list."""
    return ApiError(HTTPStatus.FORBIDDEN, "banned", "this volunteer may no longer call")


def rate_limited(retry_after_ms: int) -> ApiError:
    """429 with the wait."""
    return ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; wait before the next",
        {"retry_after_ms": retry_after_ms},
        retry_after(retry_after_ms),
    )


def unavailable() -> ApiError:
    """503: Redis did not answer."""
    return ApiError(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "unavailable",
        "try again shortly",
        {"retry_after_ms": UNAVAILABLE_RETRY_SECONDS * SECOND_MS},
        {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)},
    )


def not_found(message: str = "not found") -> ApiError:
    """404 for a path or a guideline."""
    return ApiError(HTTPStatus.NOT_FOUND, "not_found", message)


def lease_not_found() -> ApiError:
    """404 for a lease that is not the caller's (or does not exist)."""
    return ApiError(HTTPStatus.NOT_FOUND, "lease_not_found", "no such lease of yours")


def journal_unavailable() -> ApiError:
    """503: Kafka did not acknowledge a do-not-call answer; nothing was changed."""
    return ApiError(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "unavailable",
        "the do-not-call answer could not be stored; nothing was changed, send it again",
        {"retry_after_ms": UNAVAILABLE_RETRY_SECONDS * SECOND_MS},
        {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)},
    )
