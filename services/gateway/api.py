"""The lease API apart from sockets: routes, volunteer auth, lease calls, errors → statuses.

Every ``/api/v1/`` call needs a valid volunteer bearer token (checked before the body
is read). Calls on a lease also need the lease token (``X-Lease-Token`` header or
``lease_token`` in the body), and the lease token must have been made for the caller:
it starts with the caller's volunteer hash (:mod:`phonebank.leases.limits`), so
another volunteer's lease answers 404 exactly like a lease that does not exist.
No route lists anything; the only number ever answered is the caller's leased one.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import redis
from pydantic import BaseModel, ValidationError

from phonebank.domain.guidelines import GuidelineLibrary
from phonebank.domain.lease_types import (
    AlreadyCompletedError,
    LeaseExpiredError,
    NotLeaseHolderError,
    OutsideCallingHoursError,
    Preferences,
    VolunteerLimitReachedError,
)
from phonebank.domain.records import Outcome
from phonebank.gateway import models
from phonebank.gateway.tokens import TokenError, VolunteerToken, verify
from phonebank.leases.client import LeaseClient
from phonebank.leases.limits import token_owner, volunteer_hash

log = logging.getLogger(__name__)

#: content type of every API answer
JSON = "application/json"
#: milliseconds in one second (Retry-After is in whole seconds)
SECOND_MS = 1000
#: seconds a client should wait after Redis was unreachable
UNAVAILABLE_RETRY_SECONDS = 5
#: a lease id: region code, a dot, 32 hex digits
LEASE_ID = re.compile(r"^[A-Z]{2}-[A-Z0-9_]{1,12}\.[0-9a-f]{32}$")
_LEASE_ACTION = re.compile(r"^/api/v1/leases/(?P<lease_id>[^/]{1,100})/(?P<action>[a-z]{1,16})$")
_GUIDELINE = re.compile(r"^/api/v1/guidelines/(?P<ref>[A-Za-z0-9_.-]{1,64}@[0-9]{1,6})$")
_LEASES = "/api/v1/leases"
_BEARER = "bearer "

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Response:
    """One answer: status, body, content type and extra headers."""

    status: HTTPStatus
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


class ApiError(Exception):
    """A refusal with its status, a stable error code and a message for people."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        message: str,
        extra: Mapping[str, Any] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = dict(extra or {})
        self.headers = headers

    def response(self) -> Response:
        """The JSON error answer."""
        payload = {"error": self.code, "message": str(self), **self.extra}
        return json_response(self.status, payload, self.headers)


def json_response(
    status: HTTPStatus, payload: Mapping[str, Any], headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """A JSON answer (UTF-8, Russian text unescaped)."""
    return Response(status, json.dumps(payload, ensure_ascii=False).encode(), JSON, headers)


def _retry_after(milliseconds: int) -> tuple[tuple[str, str], ...]:
    return (("Retry-After", str(max(1, math.ceil(milliseconds / SECOND_MS)))),)


@dataclass(frozen=True)
class ApiRequest:
    """What the API needs of one HTTP request; the body is read only when needed."""

    method: str
    path: str
    header: Callable[[str], str | None]
    read_body: Callable[[], bytes]


def parse(model: type[Model], body: bytes) -> Model:
    """Validate a JSON body (empty = ``{}``); 400 naming the fields, never echoing input."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON"
            ) from None
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
            for e in errors
        ]
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "invalid_request", "the body is not valid", {"details": details}
        ) from None


class LeaseApi:
    """Routes ``/api/v1/`` requests to the lease client; one instance serves all threads."""

    def __init__(self, secret: str, leases: LeaseClient, guidelines: GuidelineLibrary) -> None:
        self._secret = secret
        self._leases = leases
        self._guidelines = guidelines

    def handle(self, request: ApiRequest) -> tuple[str, Response]:
        """``(operation, answer)``; the operation names the route for the metrics."""
        operation = "unknown"
        try:
            operation, handler = self._route(request)
            volunteer = self.authenticate(request.header("Authorization"))
            return operation, handler(volunteer)
        except ApiError as refusal:
            return operation, refusal.response()
        except redis.RedisError as exc:
            log.warning("%s: Redis unavailable (%s)", operation, type(exc).__name__)
            return operation, ApiError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "unavailable",
                "try again shortly",
                headers=(("Retry-After", str(UNAVAILABLE_RETRY_SECONDS)),),
            ).response()

    def _route(self, request: ApiRequest) -> tuple[str, Callable[[VolunteerToken], Response]]:
        path, method = request.path, request.method
        if path == _LEASES:
            _require(method, "POST")
            return "acquire", lambda who: self.acquire(who, request.read_body())
        guideline = _GUIDELINE.match(path)
        if guideline:
            _require(method, "GET")
            return "guideline", lambda who: self.guideline(guideline["ref"])
        action = _LEASE_ACTION.match(path)
        if action and action["action"] in {"renew", "complete", "release"}:
            _require(method, "POST")
            lease_id = action["lease_id"]
            operate = getattr(self, action["action"])
            return action["action"], lambda who: operate(
                who, lease_id, request.header("X-Lease-Token"), request.read_body()
            )
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such endpoint")

    def authenticate(self, authorization: str | None) -> VolunteerToken:
        """The volunteer of an ``Authorization: Bearer`` header, or a 401."""
        if not authorization or not authorization[: len(_BEARER)].lower() == _BEARER:
            raise _unauthorized("a volunteer bearer token is required")
        try:
            return verify(self._secret, authorization[len(_BEARER) :].strip())
        except TokenError as refusal:
            log.info("volunteer token refused: %s", refusal)
            raise _unauthorized(str(refusal)) from None

    # --- endpoints ------------------------------------------------------------------------

    def acquire(self, volunteer: VolunteerToken, body: bytes) -> Response:
        """Lease one number: 201 with the lease, 204 when nothing is leasable."""
        wanted = parse(models.AcquireRequest, body)
        preferences = Preferences(frozenset(wanted.regions), tuple(wanted.languages))
        try:
            lease = self._leases.acquire(volunteer.volunteer_id, preferences)
        except VolunteerLimitReachedError as refusal:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "volunteer_limit",
                str(refusal),
                {"retry_after_ms": refusal.retry_after_ms},
                _retry_after(refusal.retry_after_ms),
            ) from None
        except OutsideCallingHoursError as refusal:
            raise _closed(refusal, self._leases.now_ms()) from None
        if lease is None:
            return Response(HTTPStatus.NO_CONTENT)
        log.info(
            "lease %s granted (%s, attempt %d)", lease.lease_id, lease.masked_number, lease.attempt
        )
        return json_response(HTTPStatus.CREATED, models.lease_view(lease))

    def renew(
        self, volunteer: VolunteerToken, lease_id: str, header_token: str | None, body: bytes
    ) -> Response:
        """Restart the lease's countdown: 200 with the new deadline."""
        wanted = parse(models.LeaseTokenRequest, body)
        token = self._lease_token(volunteer, lease_id, header_token, wanted.lease_token)
        deadline_ms = _refusals(lambda: self._leases.renew(lease_id, token))
        return json_response(HTTPStatus.OK, models.renew_view(lease_id, deadline_ms))

    def complete(
        self, volunteer: VolunteerToken, lease_id: str, header_token: str | None, body: bytes
    ) -> Response:
        """Record the call's outcome: 200; a repeat with the same token is 200 too."""
        wanted = parse(models.CompleteRequest, body)
        token = self._lease_token(volunteer, lease_id, header_token, wanted.lease_token)
        completion = _refusals(
            lambda: self._leases.complete(
                lease_id, token, Outcome(wanted.outcome), wanted.callback_at
            )
        )
        log.info("lease %s completed: %s (%s)", lease_id, wanted.outcome, completion.status)
        return json_response(HTTPStatus.OK, models.completion_view(lease_id, completion))

    def release(
        self, volunteer: VolunteerToken, lease_id: str, header_token: str | None, body: bytes
    ) -> Response:
        """Give the number back uncalled: 200."""
        wanted = parse(models.LeaseTokenRequest, body)
        token = self._lease_token(volunteer, lease_id, header_token, wanted.lease_token)
        _refusals(lambda: self._leases.release(lease_id, token))
        return json_response(HTTPStatus.OK, {"lease_id": lease_id, "status": "released"})

    def guideline(self, ref: str) -> Response:
        """Every language of the guideline ``id@version``: 200, or 404."""
        translations = self._guidelines.translations(ref)
        if not translations:
            raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such guideline")
        return json_response(HTTPStatus.OK, models.guideline_view(ref, translations))

    def _lease_token(
        self, volunteer: VolunteerToken, lease_id: str, header: str | None, in_body: str | None
    ) -> str:
        """The lease token, checked to be the caller's; 404 for anyone else's lease."""
        if header is not None and in_body is not None and header != in_body:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_request", "X-Lease-Token and lease_token differ"
            )
        token = header if header is not None else in_body
        if not token:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "lease_token_required",
                "send the lease token in X-Lease-Token or as lease_token",
            )
        owner = token_owner(token) or ""
        mine = volunteer_hash(self._secret, volunteer.volunteer_id)
        if not LEASE_ID.match(lease_id) or not hmac.compare_digest(owner, mine):
            raise _not_found()
        return token


Result = TypeVar("Result")


def _refusals(call: Callable[[], Result]) -> Result:
    """Run a lease call, turning the client's refusals into statuses."""
    try:
        return call()
    except NotLeaseHolderError:
        raise _not_found() from None
    except LeaseExpiredError:
        raise ApiError(
            HTTPStatus.GONE,
            "lease_expired",
            "the lease has expired; its number went back to the queue",
        ) from None
    except AlreadyCompletedError:
        raise ApiError(
            HTTPStatus.CONFLICT, "lease_completed", "the lease was already completed"
        ) from None


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method_not_allowed",
            f"use {allowed}",
            headers=(("Allow", allowed),),
        )


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        HTTPStatus.UNAUTHORIZED,
        "unauthorized",
        message,
        headers=(("WWW-Authenticate", 'Bearer realm="phonebank"'),),
    )


def _not_found() -> ApiError:
    return ApiError(HTTPStatus.NOT_FOUND, "lease_not_found", "no such lease of yours")


def _closed(refusal: OutsideCallingHoursError, now_ms: int) -> ApiError:
    opening = refusal.next_opening_ms
    extra: dict[str, Any] = {
        "next_opening_ms": opening,
        "next_opening": None if opening is None else models.iso_utc(opening),
    }
    headers = () if opening is None else _retry_after(max(opening - now_ms, 0))
    return ApiError(
        HTTPStatus.LOCKED,
        "outside_calling_hours",
        "no region you may call is inside its calling hours now",
        extra,
        headers,
    )
