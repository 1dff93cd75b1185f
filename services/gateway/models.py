"""The gateway's JSON shapes: strict request models and the views it answers with.

Requests are pydantic models with ``extra="forbid"`` and strict types, so an unknown
field, a number where a string belongs or a naive timestamp is a 400, never a guess.
Views are plain dicts; the lease view is the only one that carries a phone number, and
only the caller's own leased one.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from phonebank.domain.calling_hours import from_ms
from phonebank.domain.guidelines import Guideline
from phonebank.domain.lease_types import Completion, Lease
from phonebank.domain.records import Outcome
from phonebank.domain.regions import REGIONS
from phonebank.gateway.guideline_html import render_guideline_html

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
    return from_ms(instant_ms).isoformat().replace("+00:00", "Z")


def lease_view(lease: Lease) -> dict[str, Any]:
    """The acquire answer: everything the volunteer needs for this one call."""
    region = REGIONS.get(lease.region)
    return {
        "lease_id": lease.lease_id,
        "lease_token": lease.token,
        "number": lease.number,
        "region": {
            "code": lease.region,
            "name": region.name if region else lease.region,
            "name_ru": region.name_ru if region else lease.region,
        },
        "callee_local_time": lease.callee_local_time.isoformat(timespec="minutes"),
        "callee_zone": lease.zone,
        "guideline": {
            "ref": lease.guideline,
            "language": lease.guideline_language,
            "path": GUIDELINES_PATH + lease.guideline,
        },
        "deadline": iso_utc(lease.deadline_ms),
        "deadline_ms": lease.deadline_ms,
        "attempt": lease.attempt,
    }


def renew_view(lease_id: str, deadline_ms: int) -> dict[str, Any]:
    """The renew answer: the new deadline."""
    return {"lease_id": lease_id, "deadline": iso_utc(deadline_ms), "deadline_ms": deadline_ms}


def completion_view(lease_id: str, completion: Completion) -> dict[str, Any]:
    """The complete answer; a repeat says ``already_recorded`` and changes nothing."""
    return {
        "lease_id": lease_id,
        "status": completion.status.value,
        "event_id": completion.event_id,
        "next_state": completion.next_state,
    }


def guideline_view(ref: str, translations: dict[str, Guideline]) -> dict[str, Any]:
    """``GET /api/v1/guidelines/{id@version}``: every language of one guideline."""
    ordered = sorted(translations.values(), key=lambda g: (g.language != "ru", g.language))
    return {
        "ref": ref,
        "texts": [
            {
                "language": g.language,
                "title": g.title,
                "body": g.body,
                "html": render_guideline_html(g.body),
            }
            for g in ordered
        ],
    }
