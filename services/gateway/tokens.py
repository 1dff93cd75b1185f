"""Volunteer bearer tokens: JWTs (RFC 7519) minted by an organiser or an identity provider.

Verified with PyJWT: ``HS256`` keyed with ``PHONEBANK_VOLUNTEER_SECRET`` (what
:func:`mint` and ``phonebank gateway token`` make), or ``EdDSA`` / ``RS256`` with the
public keys of ``PHONEBANK_VOLUNTEER_TOKEN_PUBLIC_KEYS`` (PEM files; a token's ``kid``
names a file by its stem). Required claims: ``sub`` (the volunteer id), ``aud`` (the
campaign), ``iat`` and ``exp`` with ``exp - iat`` at most the lifetime cap; optional
``languages``. ``alg: none`` and every other algorithm are refused. There is no
volunteer database: whoever holds a valid token is that volunteer until it expires or
the volunteer is banned (:mod:`phonebank.gateway.guard`).

:class:`TokenError` carries a reason fit for a log line; it never contains the token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

#: a volunteer id: letters, digits and ``_ . @ -``, 1 to 64 characters
VOLUNTEER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: a guideline language code in the ``languages`` claim
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}$")
#: most languages a token may list (count)
MAX_LANGUAGES = 5
#: characters: longest bearer token accepted before any decoding (DoS guard)
MAX_TOKEN_CHARS = 2048
#: seconds of clock skew tolerated on ``iat`` and ``exp``
LEEWAY_SECONDS = 60
#: verified tokens remembered per process (count; about 0.5 KB each)
VERIFIED_TOKENS_KEPT = 16_384
#: the algorithm of tokens signed with the shared secret
SHARED_ALGORITHM = "HS256"
#: public-key algorithms, by the key type they need
PUBLIC_ALGORITHMS: dict[str, type[Any]] = {"EdDSA": Ed25519PublicKey, "RS256": RSAPublicKey}
#: claims every token must carry
REQUIRED_CLAIMS = ("sub", "aud", "iat", "exp")


class TokenError(ValueError):
    """A bearer token that is refused (the message says why, never the token)."""


@dataclass(frozen=True)
class VolunteerToken:
    """What a verified token says: who, until when (Unix seconds), which languages."""

    volunteer_id: str
    expires_at: int
    languages: tuple[str, ...] = ()


def load_public_keys(paths: Sequence[str | Path]) -> dict[str, Any]:
    """PEM public keys by file stem (the ``kid`` a token may name); EdDSA or RSA only."""
    keys: dict[str, Any] = {}
    for path in map(Path, paths):
        key = load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey | RSAPublicKey):
            raise ValueError(f"{path}: only Ed25519 and RSA public keys are accepted")
        keys[path.stem] = key
    return keys


def mint(
    secret: str,
    volunteer_id: str,
    audience: str,
    ttl_seconds: int,
    *,
    languages: Sequence[str] = (),
    now: float | None = None,
) -> str:
    """An HS256 token for ``volunteer_id`` of campaign ``audience``, valid ``ttl_seconds``."""
    if not VOLUNTEER_ID_PATTERN.match(volunteer_id):
        raise ValueError("volunteer id must be 1-64 of A-Z a-z 0-9 _ . @ -")
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": volunteer_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if languages:
        claims["languages"] = list(languages)
    return jwt.encode(claims, secret, algorithm=SHARED_ALGORITHM)


@dataclass(frozen=True)
class TokenVerifier:
    """Verifies volunteer tokens of one campaign."""

    secret: str
    audience: str
    max_ttl_seconds: int
    public_keys: Mapping[str, Any] = field(default_factory=dict)
    #: tokens verified already → their claims: a token's claims depend on its text and
    #: the keys alone, so a repeat only needs its expiry checked again (the ban list is
    #: checked on every call anyway); emptied when full
    _verified: dict[str, VolunteerToken] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def verify(self, token: str, now: float | None = None) -> VolunteerToken:
        """The volunteer a token names; :class:`TokenError` if it is refused."""
        moment = time.time() if now is None else now
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at + LEEWAY_SECONDS <= moment:
                self._verified.pop(token, None)
                raise TokenError("token expired")
            return known
        claims = self._verify_signed(token, moment)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _verify_signed(self, token: str, now: float) -> VolunteerToken:
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        algorithm, key = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False},
            )
        except jwt.InvalidAudienceError:
            raise TokenError("token for another campaign") from None
        except jwt.InvalidSignatureError:
            raise TokenError("bad signature") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token ({type(exc).__name__})") from None
        return self._claims(claims, now)

    def _key_for(self, header: Mapping[str, Any]) -> tuple[str, Any]:
        algorithm = header.get("alg")
        if algorithm == SHARED_ALGORITHM:
            return algorithm, self.secret
        wanted = PUBLIC_ALGORITHMS.get(str(algorithm))
        if wanted is None:
            raise TokenError(f"algorithm {str(algorithm)[:16]!r} not accepted")
        kid = header.get("kid")
        candidates = [
            key
            for name, key in self.public_keys.items()
            if isinstance(key, wanted) and (kid is None or name == kid)
        ]
        if len(candidates) != 1:
            raise TokenError("no single public key for this token")
        return str(algorithm), candidates[0]

    def _claims(self, claims: Mapping[str, Any], now: float) -> VolunteerToken:
        subject, issued, expires = claims["sub"], claims["iat"], claims["exp"]
        if not isinstance(subject, str) or not VOLUNTEER_ID_PATTERN.match(subject):
            raise TokenError("bad subject")
        if not isinstance(issued, int) or not isinstance(expires, int):
            raise TokenError("iat and exp must be integers")
        if expires + LEEWAY_SECONDS <= now:
            raise TokenError("token expired")
        if expires - issued > self.max_ttl_seconds:
            raise TokenError("token lifetime over the cap")
        languages = claims.get("languages", [])
        if (
            not isinstance(languages, list)
            or len(languages) > MAX_LANGUAGES
            or not all(isinstance(code, str) and LANGUAGE_PATTERN.match(code) for code in languages)
        ):
            raise TokenError("bad languages claim")
        return VolunteerToken(subject, expires, tuple(languages))
