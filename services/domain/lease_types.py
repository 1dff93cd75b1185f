"""What the lease client hands out and the answers it raises.

:class:`Lease` reveals one number and nothing else about the database. Its ``repr``
masks the number, so a logged lease never shows it in full.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum

from phonebank.domain.records import e164, masked

#: Separates the region from the random part in a lease id (``RU-MOW.3f2a…``).
LEASE_ID_SEPARATOR = "."
#: A lease id as the scripts accept it: region code, ".", 32 hex digits (``args.lua``).
LEASE_ID_FORMAT = re.compile(r"^[A-Z]{2}-[A-Z0-9_]+\.[0-9a-f]{32}$")
#: A lease token as the scripts accept it: volunteer hash, ".", 32 hex digits.
TOKEN_FORMAT = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{32}$")


def lease_id_for(region: str, reservation: str) -> str:
    """The lease id of ``reservation`` in ``region``: the id carries its region."""
    return f"{region}{LEASE_ID_SEPARATOR}{reservation}"


def split_lease_id(lease_id: str) -> tuple[str, str]:
    """``(region, reservation)`` of a lease id; :class:`NotLeaseHolderError` if malformed."""
    region, separator, reservation = lease_id.rpartition(LEASE_ID_SEPARATOR)
    if not separator or not region or not reservation:
        raise NotLeaseHolderError(f"malformed lease id {lease_id!r}")
    return region, reservation


@dataclass(frozen=True)
class Preferences:
    """What a volunteer narrows the choice to: regions (empty = any) and languages."""

    regions: frozenset[str] = frozenset()
    #: languages the volunteer reads guidelines in, most preferred first
    languages: tuple[str, ...] = ("ru",)

    def allows(self, region: str) -> bool:
        """Whether ``region`` is acceptable to the volunteer."""
        return not self.regions or region in self.regions


@dataclass(frozen=True)
class Lease:
    """One number leased to one volunteer until ``deadline_ms``."""

    lease_id: str
    token: str = field(repr=False)
    national_number: int = field(repr=False)
    region: str
    #: the callee's time zone (the first of the region's zones when it has several)
    zone: str
    #: the callee's local time when the lease was granted
    callee_local_time: dt.datetime
    #: guideline ``id@version`` the volunteer was given
    guideline: str
    guideline_language: str
    #: epoch milliseconds (Redis time) the lease was granted
    leased_at_ms: int
    #: epoch milliseconds (Redis time) the lease ends unless renewed
    deadline_ms: int
    #: the attempt this call is (1-based)
    attempt: int
    #: True when this is a lease the volunteer already held (a retried or recovered
    #: acquire), not one granted by this call
    existing: bool = False
    #: the signed receipt of this lease (``lease_receipt``): sent back with complete, it
    #: lets the outcome be recorded (late) even if Redis lost the lease meanwhile
    receipt: str = field(default="", repr=False)

    @property
    def number(self) -> str:
        """The number to call, E.164."""
        return e164(self.national_number)

    @property
    def masked_number(self) -> str:
        """The number fit for a log line."""
        return masked(self.national_number)


class CompletionStatus(StrEnum):
    """How a complete was taken."""

    RECORDED = "recorded"
    #: after the lease had expired or been released: recorded, flagged late
    RECORDED_LATE = "recorded_late"
    #: a repeat with the same token: nothing changed, the first answer stands
    ALREADY_RECORDED = "already_recorded"


@dataclass(frozen=True)
class Completion:
    """The answer to a complete."""

    status: CompletionStatus
    #: id of the outcome event (the first one's on a repeat)
    event_id: str
    #: where the number went: ready, due, done, retired, dnc, or unchanged
    next_state: str


class LeaseError(Exception):
    """A lease operation was refused."""


class NotLeaseHolderError(LeaseError):
    """No such lease, the token is not its token, or it was released."""


class LeaseExpiredError(LeaseError):
    """The lease's deadline has passed; it can no longer be renewed or released."""


class AlreadyCompletedError(LeaseError):
    """The lease was completed; it can no longer be renewed or released."""


class VolunteerLimitReachedError(LeaseError):
    """The volunteer holds the most leases allowed, or used the hour's quota."""

    def __init__(self, message: str, retry_after_ms: int, *, concurrent: bool = False) -> None:
        super().__init__(message)
        #: milliseconds until a lease could be granted again
        self.retry_after_ms = retry_after_ms
        #: True for the cap of open leases, False for the hourly quota
        self.concurrent = concurrent


class BadArgumentError(LeaseError, ValueError):
    """A script refused a malformed argument (``BAD_ARGUMENT``) and changed nothing."""

    def __init__(self, operation: str, argument: str) -> None:
        super().__init__(f"{operation}: malformed argument {argument!r}")
        #: the script's short name of the argument it refused (e.g. ``"lease time to live"``)
        self.argument = argument
        #: the operation that refused it (``acquire``, ``complete``, …)
        self.operation = operation


class NumberDoNotCallError(LeaseError):
    """The number became do-not-call while leased: the lease ended; do not call it.
    (A complete is still recorded, late, before this is raised.)"""


class IdempotencyKeyUsedError(LeaseError):
    """An acquire's idempotency key belongs to a lease that has ended."""


class OutsideCallingHoursError(LeaseError):
    """No region the volunteer may call is inside its calling window now."""

    def __init__(self, message: str, next_opening_ms: int | None) -> None:
        super().__init__(message)
        #: epoch milliseconds the first of those regions opens (None: not within two weeks)
        self.next_opening_ms = next_opening_ms
