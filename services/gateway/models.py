"""The gateway's JSON shapes: strict request models and the answer models.

Requests are pydantic models with ``extra="forbid"`` and strict types, so an unknown
field, a number where a string belongs or a naive timestamp is a 400, never a guess.
Answers are pydantic models too: ``/openapi.json`` is generated from both
(:mod:`phonebank.gateway.openapi`). The lease answer is the only one that carries a
phone number, and only the caller's own leased one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from phonebank.domain.calling_hours import Interval, from_ms
from phonebank.domain.guidelines import Guideline
from phonebank.domain.lease_receipt import MAX_RECEIPT_CHARS
from phonebank.domain.lease_types import Completion, Lease
from phonebank.domain.records import Outcome
from phonebank.domain.regions import REGIONS

#: regions a volunteer may narrow an acquire to (count)
MAX_PREFERRED_REGIONS = 100
#: guideline languages a volunteer may list (count)
MAX_LANGUAGES = 5
#: characters of the longest lease token accepted (two 32-hex parts and a dot)
MAX_LEASE_TOKEN_CHARS = 80
#: days ahead a callback may be asked for
MAX_CALLBACK_DAYS = 60
#: path prefix of the guideline texts
GUIDELINES_PATH = "/api/v1/guidelines/"
#: an Idempotency-Key header value
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_-]{1,64}$"

LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
RegionCode = Annotated[str, Field(pattern=r"^[A-Z]{2}-[A-Z0-9_]{1,12}$")]
LeaseToken = Annotated[str, Field(min_length=1, max_length=MAX_LEASE_TOKEN_CHARS)]

#: outcomes a volunteer may report (``expired`` is the reaper's, not a volunteer's)
VOLUNTEER_OUTCOMES = tuple(outcome.value for outcome in Outcome if outcome != Outcome.EXPIRED)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AcquireRequest(_Strict):
    """``POST /api/v1/leases``: optional preferences."""

    regions: list[RegionCode] = Field(default_factory=list, max_length=MAX_PREFERRED_REGIONS)
    languages: list[LanguageCode] = Field(
        default_factory=lambda: ["ru"], min_length=1, max_length=MAX_LANGUAGES
    )

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(REGIONS))
        if unknown:
            raise ValueError(f"unknown region codes {unknown}")
        return value


class LeaseTokenRequest(_Strict):
    """``renew`` / ``release`` body (optional): the lease token, if not in a header."""

    lease_token: LeaseToken | None = None


class CompleteRequest(_Strict):
    """``POST /api/v1/leases/{id}/complete``."""

    outcome: str
    callback_at: AwareDatetime | None = None
    lease_token: LeaseToken | None = None
    #: the acquire answer's ``lease_receipt``: the outcome is then recorded (late) even if
    #: the server lost the lease meanwhile
    lease_receipt: str | None = Field(None, min_length=1, max_length=MAX_RECEIPT_CHARS)

    @field_validator("outcome")
    @classmethod
    def _volunteer_outcome(cls, value: str) -> str:
        if value not in VOLUNTEER_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(VOLUNTEER_OUTCOMES)}")
        return value

    @model_validator(mode="after")
    def _callback_time(self) -> CompleteRequest:
        if self.callback_at is None:
            return self
        if self.outcome != Outcome.CALLBACK:
            raise ValueError("callback_at is only for the outcome callback")
        latest = dt.datetime.now(dt.UTC) + dt.timedelta(days=MAX_CALLBACK_DAYS)
        if self.callback_at > latest:
            raise ValueError(f"callback_at is more than {MAX_CALLBACK_DAYS} days ahead")
        return self


def iso_utc(instant_ms: int) -> str:
    """``2026-03-10T09:15:00Z``."""
    return from_ms(instant_ms).isoformat().replace("+00:00", "Z")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionView(_Answer):
    """A region, named in English and Russian."""

    code: str
    name: str
    name_ru: str


class WindowView(_Answer):
    """One calling window of the callee, with the callee's offset."""

    start: str
    end: str


class GuidelineRef(_Answer):
    """Which guideline the volunteer was given, and where to read it."""

    ref: str
    id: str
    version: int
    language: str
    path: str


class LeaseView(_Answer):
    """The acquire answer and ``GET /api/v1/me``: everything needed for this one call."""

    lease_id: str
    lease_token: str
    lease_receipt: str = Field(
        description="Send it back with complete: the outcome is then recorded even if the "
        "server lost the lease meanwhile."
    )
    number: str
    region: RegionView
    callee_local_time: str
    callee_zone: str
    calling_windows: list[WindowView]
    guideline: GuidelineRef
    deadline: str
    deadline_ms: int
    server_time_ms: int
    attempt: int


class RenewView(_Answer):
    """The renew answer: the new deadline."""

    lease_id: str
    deadline: str
    deadline_ms: int


class CompletionView(_Answer):
    """The complete answer; a repeat says ``already_recorded`` and changes nothing."""

    lease_id: str
    status: str
    event_id: str
    next_state: str


class ReleaseView(_Answer):
    """The release answer."""

    lease_id: str
    status: str


class GuidelineView(_Answer):
    """One guideline in one language, as sanitized HTML."""

    ref: str
    id: str
    version: int
    language: str
    title: str
    html: str
    languages: list[str]


class ErrorView(BaseModel):
    """Every refusal: a stable code, a message for developers, and named extras."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str


def lease_view(lease: Lease, windows: Sequence[Interval], now_ms: int) -> LeaseView:
    """The acquire answer (also ``/me``)."""
    region = REGIONS.get(lease.region)
    guide_id, _, version = lease.guideline.rpartition("@")
    return LeaseView(
        lease_id=lease.lease_id,
        lease_token=lease.token,
        lease_receipt=lease.receipt,
        number=lease.number,
        region=RegionView(
            code=lease.region,
            name=region.name if region else lease.region,
            name_ru=region.name_ru if region else lease.region,
        ),
        callee_local_time=lease.callee_local_time.isoformat(timespec="minutes"),
        callee_zone=lease.zone,
        calling_windows=[
            WindowView(
                start=from_ms(window.start_ms, lease.zone).isoformat(timespec="minutes"),
                end=from_ms(window.end_ms, lease.zone).isoformat(timespec="minutes"),
            )
            for window in windows
        ],
        guideline=GuidelineRef(
            ref=lease.guideline,
            id=guide_id,
            version=int(version) if version.isdigit() else 0,
            language=lease.guideline_language,
            path=GUIDELINES_PATH + lease.guideline,
        ),
        deadline=iso_utc(lease.deadline_ms),
        deadline_ms=lease.deadline_ms,
        server_time_ms=now_ms,
        attempt=lease.attempt,
    )


def renew_view(lease_id: str, deadline_ms: int) -> RenewView:
    """The renew answer: the new deadline."""
    return RenewView(lease_id=lease_id, deadline=iso_utc(deadline_ms), deadline_ms=deadline_ms)


def completion_view(lease_id: str, completion: Completion) -> CompletionView:
    """The complete answer."""
    return CompletionView(
        lease_id=lease_id,
        status=completion.status.value,
        event_id=completion.event_id,
        next_state=completion.next_state,
    )


def guideline_view(guide: Guideline, html: str, languages: Sequence[str]) -> GuidelineView:
    """``GET /api/v1/guidelines/{id@version}``: one language of one guideline."""
    return GuidelineView(
        ref=guide.ref,
        id=guide.guideline_id,
        version=guide.version,
        language=guide.language,
        title=guide.title,
        html=html,
        languages=list(languages),
    )
