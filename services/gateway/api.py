"""The lease API apart from sockets: guard, lease calls, refusals → statuses.

:meth:`LeaseApi.handle` runs one ``/api/v1/`` operation (on the event loop, through
:mod:`phonebank.infra.loop_bridge`: the lease client is synchronous, its Redis round
trips are awaited; Kafka's acknowledgement of a do-not-call waits in a worker thread) and
never raises: every refusal becomes an :class:`Answer`.
Each call is admitted by :class:`~phonebank.gateway.guard.Guard` first (address rate
limit, token, ban list, token rate limit: one round trip). Calls on a lease also need the
lease token (``X-Lease-Token`` header or ``lease_token`` in the body), and the lease token must have
been made for the caller: it starts with the caller's volunteer hash, so another
volunteer's lease answers 404 exactly like a lease that does not exist. No route lists
anything; the only number ever answered is the caller's leased one.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import redis
from pydantic import BaseModel, ValidationError

from phonebank.domain.guidelines import GuidelineLibrary
from phonebank.domain.lease_types import (
    AlreadyCompletedError,
    IdempotencyKeyUsedError,
    Lease,
    LeaseExpiredError,
    NotLeaseHolderError,
    NumberDoNotCallError,
    OutsideCallingHoursError,
    Preferences,
    VolunteerLimitReachedError,
    split_lease_id,
)
from phonebank.domain.records import Outcome
from phonebank.gateway import models
from phonebank.gateway.errors import (
    ApiError,
    journal_unavailable,
    lease_not_found,
    not_found,
    retry_after,
    unavailable,
)
from phonebank.gateway.guard import Guard
from phonebank.gateway.tokens import VolunteerToken
from phonebank.infra.loop_bridge import blocking
from phonebank.leases.client import LeaseClient
from phonebank.leases.dnc_journal import DncJournal, DncJournalUnavailableError
from phonebank.leases.limits import token_owner

log = logging.getLogger(__name__)

#: a lease id: region code, a dot, 32 hex digits
LEASE_ID = re.compile(r"^[A-Z]{2}-[A-Z0-9_]{1,12}\.[0-9a-f]{32}$")
#: calling windows of the callee named in a lease answer (count)
LEASE_WINDOWS = 7
_IDEMPOTENCY_KEY = re.compile(models.IDEMPOTENCY_KEY)

Model = TypeVar("Model", bound=BaseModel)
Result = TypeVar("Result")


@dataclass(frozen=True)
class ApiRequest:
    """What the API needs of one HTTP request."""

    operation: str
    header: Callable[[str], str | None]
    address: str
    body: bytes = b""
    lease_id: str = ""
    ref: str = ""
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """One answer: status, JSON payload (None: no body) and extra headers."""

    status: HTTPStatus
    payload: BaseModel | dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def refusal(error: ApiError) -> Answer:
    """The JSON answer of a refusal."""
    return Answer(error.status, error.payload(), error.headers)


def parse(model: type[Model], request: ApiRequest) -> Model:
    """Validate a JSON body (empty = ``{}``); 400/415 naming the fields, never echoing input."""
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if request.body and content_type != "application/json":
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send application/json"
        )
    try:
        return model.model_validate_json(request.body or b"{}")
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
    """The ``/api/v1/`` operations; one instance serves every request."""

    def __init__(
        self,
        guard: Guard,
        leases: LeaseClient,
        guidelines: GuidelineLibrary,
        render_html: Callable[[str], str],
        dnc_journal: DncJournal | None = None,
    ) -> None:
        self.guard = guard
        self._leases = leases
        #: where a do_not_call answer is made durable (Kafka) before it is acknowledged
        self.dnc_journal = dnc_journal
        self._guidelines = guidelines
        self._render_html = render_html
        self._operations: dict[str, Callable[[VolunteerToken, ApiRequest], Answer]] = {
            "acquire": self.acquire,
            "me": self.me,
            "renew": self.renew,
            "complete": self.complete,
            "release": self.release,
            "guideline": self.guideline,
        }

    def handle(self, request: ApiRequest) -> Answer:
        """The answer to one operation (never raises for a refusal or a Redis outage)."""
        try:
            volunteer = self.guard.admit(request.header("authorization"), request.address)
            return self._operations[request.operation](volunteer, request)
        except ApiError as error:
            return refusal(error)
        except redis.RedisError as exc:
            log.warning("%s: Redis unavailable (%s)", request.operation, type(exc).__name__)
            return refusal(unavailable())

    # --- endpoints ------------------------------------------------------------------------

    def acquire(self, volunteer: VolunteerToken, request: ApiRequest) -> Answer:
        """201 a new lease, 200 one the volunteer holds already, 204 nothing leasable."""
        wanted = parse(models.AcquireRequest, request)
        key = request.header("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "invalid_request",
                "Idempotency-Key must be 1-64 of A-Z a-z 0-9 _ -",
            )
        preferences = self._preferences(volunteer, wanted)
        try:
            lease = self._leases.acquire(volunteer.volunteer_id, preferences, key)
        except VolunteerLimitReachedError as refused:
            lease = self._held(volunteer, preferences, refused)
        except OutsideCallingHoursError as refused:
            raise _closed(refused, self._leases.now_ms()) from None
        except IdempotencyKeyUsedError:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "idempotency_key_used",
                "this Idempotency-Key belongs to a lease that has ended; send a new key",
            ) from None
        if lease is None:
            return Answer(HTTPStatus.NO_CONTENT)
        if not lease.existing:
            log.debug(
                "lease %s granted (%s, attempt %d)",
                lease.lease_id,
                lease.masked_number,
                lease.attempt,
            )
        status = HTTPStatus.OK if lease.existing else HTTPStatus.CREATED
        return Answer(status, self._view(lease))

    def me(self, volunteer: VolunteerToken, request: ApiRequest) -> Answer:
        """200 with the volunteer's most recent open lease, 204 when none."""
        preferences = Preferences(languages=volunteer.languages or ("ru",))
        held = self._leases.open_leases_of(volunteer.volunteer_id, preferences)
        if not held:
            return Answer(HTTPStatus.NO_CONTENT)
        return Answer(HTTPStatus.OK, self._view(held[0]))

    def renew(self, volunteer: VolunteerToken, request: ApiRequest) -> Answer:
        """Restart the lease's countdown: 200 with the new deadline."""
        wanted = parse(models.LeaseTokenRequest, request)
        token = self._lease_token(volunteer, request, wanted.lease_token)
        deadline_ms = _refusals(lambda: self._leases.renew(request.lease_id, token))
        return Answer(HTTPStatus.OK, models.renew_view(request.lease_id, deadline_ms))

    def complete(self, volunteer: VolunteerToken, request: ApiRequest) -> Answer:
        """Record the call's outcome: 200; a repeat with the same token is 200 too."""
        wanted = parse(models.CompleteRequest, request)
        token = self._lease_token(volunteer, request, wanted.lease_token)
        receipt = wanted.lease_receipt
        if wanted.outcome == Outcome.DO_NOT_CALL.value:
            self._journal_do_not_call(request.lease_id, token, receipt)
        completion = _refusals(
            lambda: self._leases.complete(
                request.lease_id, token, Outcome(wanted.outcome), wanted.callback_at, receipt
            )
        )
        log.debug(
            "lease %s completed: %s (%s)", request.lease_id, wanted.outcome, completion.status
        )
        return Answer(HTTPStatus.OK, models.completion_view(request.lease_id, completion))

    def release(self, volunteer: VolunteerToken, request: ApiRequest) -> Answer:
        """Give the number back uncalled: 200."""
        wanted = parse(models.LeaseTokenRequest, request)
        token = self._lease_token(volunteer, request, wanted.lease_token)
        _refusals(lambda: self._leases.release(request.lease_id, token))
        return Answer(
            HTTPStatus.OK, models.ReleaseView(lease_id=request.lease_id, status="released")
        )

    def guideline(self, volunteer: VolunteerToken, request: ApiRequest) -> Answer:
        """One language of the guideline ``id@version`` as sanitized HTML: 200, or 404."""
        translations = self._guidelines.translations(request.ref)
        if not translations:
            raise not_found("no such guideline")
        wanted = request.query.get("language", "ru")
        guide = (
            translations.get(wanted) or translations.get("ru") or next(iter(translations.values()))
        )
        languages = sorted(translations, key=lambda code: (code != "ru", code))
        html = self._render_html(guide.body)
        return Answer(HTTPStatus.OK, models.guideline_view(guide, html, languages))

    # --- helpers --------------------------------------------------------------------------

    def _journal_do_not_call(self, lease_id: str, token: str, receipt: str | None) -> None:
        """Make a do_not_call answer durable in Kafka before the lease is completed: a
        Redis loss before the relay runs must not call the person again. 503 when Kafka
        does not acknowledge: the lease and its outcome are unchanged (the page retries),
        but the number is held off the list of leasable numbers (``hold_off``), since the
        unacknowledged record may still land in Kafka. A lease that is not the caller's
        goes on to the usual refusal."""
        if self.dnc_journal is None:
            return
        number = _refusals(lambda: self._leases.number_of(lease_id, token, receipt))
        if number is None:
            return
        try:
            blocking(self.dnc_journal.record, number, split_lease_id(lease_id)[0])
        except DncJournalUnavailableError:
            self._leases.hold_off(number)
            raise journal_unavailable() from None

    def _preferences(self, volunteer: VolunteerToken, wanted: models.AcquireRequest) -> Preferences:
        languages = wanted.languages or list(volunteer.languages) or ["ru"]
        return Preferences(frozenset(wanted.regions), tuple(languages))

    def _held(
        self,
        volunteer: VolunteerToken,
        preferences: Preferences,
        refused: VolunteerLimitReachedError,
    ) -> Lease:
        """At the cap of open leases, the most recent one (its answer may have been lost);
        otherwise (the hourly quota, or none found) the 409."""
        if refused.concurrent:
            held = self._leases.open_leases_of(volunteer.volunteer_id, preferences)
            if held:
                return held[0]
        raise ApiError(
            HTTPStatus.CONFLICT,
            "volunteer_limit",
            str(refused),
            {"retry_after_ms": refused.retry_after_ms},
            retry_after(refused.retry_after_ms),
        )

    def _view(self, lease: Lease) -> models.LeaseView:
        now = self._leases.now_ms()
        windows = self._leases.calendar.upcoming(lease.region, now, LEASE_WINDOWS)
        return models.lease_view(lease, windows, now)

    def _lease_token(
        self, volunteer: VolunteerToken, request: ApiRequest, in_body: str | None
    ) -> str:
        """The lease token, checked to be the caller's; 404 for anyone else's lease."""
        header = request.header("x-lease-token")
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
        mine = self.guard.volunteer_hash(volunteer.volunteer_id)
        if not LEASE_ID.match(request.lease_id) or not hmac.compare_digest(owner, mine):
            raise lease_not_found()
        return token


def _refusals(call: Callable[[], Result]) -> Result:
    """Run a lease call, turning the client's refusals into statuses."""
    try:
        return call()
    except NotLeaseHolderError:
        raise lease_not_found() from None
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
    except NumberDoNotCallError:
        raise ApiError(
            HTTPStatus.GONE,
            "do_not_call",
            "do not call this number: it is on the do-not-call list now; the lease has ended",
        ) from None


def _closed(refused: OutsideCallingHoursError, now_ms: int) -> ApiError:
    opening = refused.next_opening_ms
    extra: dict[str, Any] = {
        "next_opening_ms": opening,
        "next_opening": None if opening is None else models.iso_utc(opening),
    }
    wait_ms = None if opening is None else max(opening - now_ms, 0)
    if wait_ms is not None:
        extra["retry_after_ms"] = wait_ms
    return ApiError(
        HTTPStatus.LOCKED,
        "outside_calling_hours",
        "no region you may call is inside its calling hours now",
        extra,
        {} if wait_ms is None else retry_after(wait_ms),
    )
