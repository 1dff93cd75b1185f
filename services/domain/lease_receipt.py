"""Lease receipts: what a lease was, signed, so its outcome survives a Redis loss.

A lease lives in Redis. If Redis is lost (and rebuilt from Kafka) while a volunteer is on
the call, the lease hash is gone and a plain complete answers "not found": the outcome of
a real call would be lost. So with every lease the client hands out a *receipt*: the
facts of the lease the outcome event needs (lease id, number, attempt, grant time,
guideline, campaign, the volunteer) and the reservation of its token, signed with
HMAC-SHA256 under a key derived from the server secret. A complete that carries the
receipt (and the token whose reservation it names) is recorded late from the receipt
when Redis no longer knows the lease (``complete-11.lua``, "recovered lease").

The receipt reveals nothing the lease did not (the volunteer holds the number anyway)
and is useless without the lease token; only the server can make one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

#: first part of every receipt (the format's version)
RECEIPT_VERSION = "r1"
#: separates the fields inside the signed payload
FIELD_SEPARATOR = "|"
#: hex digits of the signature (128 bits)
SIGNATURE_HEX_DIGITS = 32
#: longest receipt accepted (characters)
MAX_RECEIPT_CHARS = 400
#: what the signing key is derived for (one secret, one purpose per derived key)
KEY_PURPOSE = b"phonebank lease receipt v1"


@dataclass(frozen=True)
class ReceiptFacts:
    """The facts of one lease a receipt vouches for."""

    lease_id: str
    national_number: int
    attempt: int
    leased_at_ms: int
    guideline: str
    campaign: str
    #: the volunteer hash (the token's first part)
    volunteer: str
    #: the reservation of the lease token (``limits.reservation_of``)
    reservation: str

    def payload(self) -> str:
        fields = (
            self.lease_id,
            str(self.national_number),
            str(self.attempt),
            str(self.leased_at_ms),
            self.guideline,
            self.campaign,
            self.volunteer,
            self.reservation,
        )
        return FIELD_SEPARATOR.join(fields)


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), KEY_PURPOSE, hashlib.sha256).digest()


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(_key(secret), payload.encode(), hashlib.sha256).hexdigest()
    return digest[:SIGNATURE_HEX_DIGITS]


def issue(secret: str, facts: ReceiptFacts) -> str:
    """The signed receipt of ``facts``."""
    payload = facts.payload()
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{RECEIPT_VERSION}.{encoded}.{_signature(secret, payload)}"


def verify(secret: str, receipt: str) -> ReceiptFacts | None:
    """The facts of a receipt this server signed, or None (malformed or forged)."""
    if len(receipt) > MAX_RECEIPT_CHARS:
        return None
    version, _, rest = receipt.partition(".")
    encoded, _, signature = rest.rpartition(".")
    if version != RECEIPT_VERSION or not encoded:
        return None
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(_signature(secret, payload), signature):
        return None
    return _facts(payload.split(FIELD_SEPARATOR))


def _facts(fields: list[str]) -> ReceiptFacts | None:
    if len(fields) != len(ReceiptFacts.__dataclass_fields__):
        return None
    lease_id, number, attempt, leased_at, guideline, campaign, volunteer, reservation = fields
    if not (number.isdigit() and attempt.isdigit() and leased_at.isdigit()):
        return None
    return ReceiptFacts(
        lease_id,
        int(number),
        int(attempt),
        int(leased_at),
        guideline,
        campaign,
        volunteer,
        reservation,
    )
