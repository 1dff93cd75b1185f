"""Volunteer bearer tokens: minted by an organiser, verified statelessly by the gateway.

A token is ``base64url(payload) "." base64url(signature)`` where ``payload`` is
``VOLUNTEER_ID ":" EXPIRY`` (Unix seconds) and ``signature`` is HMAC-SHA256 of the
payload under a key derived from ``PHONEBANK_VOLUNTEER_SECRET`` (domain-separated, so a
token signature can never coincide with a volunteer hash keyed by the same secret).
There is no volunteer database: whoever holds a valid token is that volunteer until the
token expires. Rotating the secret revokes every token (and changes every volunteer hash).

Verification compares signatures in constant time and raises :class:`TokenError` with
a reason that never contains the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

#: label that derives the token-signing key from the volunteer secret (domain separation)
SIGNING_KEY_LABEL = b"phonebank/gateway/volunteer-token/v1"
#: a volunteer id: letters, digits and ``_ . @ -``, 1 to 64 characters (no ``:``)
VOLUNTEER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: characters: longest bearer token accepted before any decoding (DoS guard)
MAX_TOKEN_CHARS = 256
#: separates the payload from the signature in a token
PART_SEPARATOR = "."
#: separates the volunteer id from the expiry in a payload
FIELD_SEPARATOR = ":"
#: bytes of an HMAC-SHA256 signature
SIGNATURE_BYTES = 32


class TokenError(ValueError):
    """A bearer token that is malformed, forged or expired (the message names which)."""


@dataclass(frozen=True)
class VolunteerToken:
    """What a verified token says: who, and until when (Unix seconds)."""

    volunteer_id: str
    expires_at: int


def _signing_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), SIGNING_KEY_LABEL, hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(_signing_key(secret), payload, hashlib.sha256).digest()


def mint(secret: str, volunteer_id: str, ttl_seconds: int, now: float | None = None) -> str:
    """A token for ``volunteer_id`` valid for ``ttl_seconds`` from ``now`` (Unix seconds)."""
    if not VOLUNTEER_ID_PATTERN.match(volunteer_id):
        raise ValueError("volunteer id must be 1-64 of A-Z a-z 0-9 _ . @ -")
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    issued = time.time() if now is None else now
    payload = f"{volunteer_id}{FIELD_SEPARATOR}{int(issued) + ttl_seconds}".encode()
    return f"{_b64encode(payload)}{PART_SEPARATOR}{_b64encode(_sign(secret, payload))}"


def _decode(token: str) -> tuple[bytes, bytes]:
    if len(token) > MAX_TOKEN_CHARS or token.count(PART_SEPARATOR) != 1:
        raise TokenError("malformed token")
    encoded_payload, encoded_signature = token.split(PART_SEPARATOR)
    try:
        return _b64decode(encoded_payload), _b64decode(encoded_signature)
    except (binascii.Error, ValueError):
        raise TokenError("malformed token") from None


def _fields(payload: bytes) -> VolunteerToken:
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise TokenError("malformed token") from None
    volunteer_id, separator, expiry = text.rpartition(FIELD_SEPARATOR)
    if not separator or not VOLUNTEER_ID_PATTERN.match(volunteer_id) or not expiry.isdigit():
        raise TokenError("malformed token")
    return VolunteerToken(volunteer_id, int(expiry))


def verify(secret: str, token: str, now: float | None = None) -> VolunteerToken:
    """The volunteer a token names; :class:`TokenError` if malformed, forged or expired."""
    payload, signature = _decode(token)
    if len(signature) != SIGNATURE_BYTES:
        raise TokenError("malformed token")
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        raise TokenError("bad signature")
    claims = _fields(payload)
    if claims.expires_at <= (time.time() if now is None else now):
        raise TokenError("token expired")
    return claims
