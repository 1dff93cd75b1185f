"""Volunteer bearer tokens: mint, verify, expiry, forgery, malformed input; the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from phonebank.cli import main
from phonebank.gateway.tokens import MAX_TOKEN_CHARS, TokenError, mint, verify

SECRET = "test-secret"
NOW = 1_773_133_200.0
HOUR_SECONDS = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_minted_token_names_its_volunteer_until_it_expires() -> None:
    # Given a token minted for alice for one hour
    token = mint(SECRET, "alice@example.org", HOUR_SECONDS, now=NOW)
    # When it is verified within the hour, Then it names alice and its expiry
    claims = verify(SECRET, token, now=NOW + HOUR_SECONDS - 1)
    assert (claims.volunteer_id, claims.expires_at) == ("alice@example.org", NOW + HOUR_SECONDS)
    # And the token carries no secret material in clear but the id and expiry
    assert "test-secret" not in token


def test_an_expired_token_is_refused() -> None:
    token = mint(SECRET, "alice", HOUR_SECONDS, now=NOW)
    with pytest.raises(TokenError, match="expired"):
        verify(SECRET, token, now=NOW + HOUR_SECONDS)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = mint("another-secret", "alice", HOUR_SECONDS, now=NOW)
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, token, now=NOW)


def test_a_token_whose_payload_was_changed_is_refused() -> None:
    # Given alice's token with the payload swapped for bob's (signature kept)
    _, signature = mint(SECRET, "alice", HOUR_SECONDS, now=NOW).split(".")
    forged = _b64(f"bob:{int(NOW) + HOUR_SECONDS}".encode()) + "." + signature
    # When it is verified, Then the signature does not match
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, forged, now=NOW)


def test_the_signature_is_not_a_plain_hmac_of_the_payload() -> None:
    # Given a payload signed with the raw secret (the key that also makes volunteer hashes)
    payload = f"alice:{int(NOW) + HOUR_SECONDS}".encode()
    raw = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()
    # Then it is not accepted: tokens use a key derived for them alone
    with pytest.raises(TokenError, match="signature"):
        verify(SECRET, _b64(payload) + "." + _b64(raw), now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "abc",
        "a.b.c",
        "!!!.???",
        "YWxpY2U6MQ." + "A" * 10,
        "x" * (MAX_TOKEN_CHARS + 1),
        _b64(b"no-expiry") + "." + _b64(b"\0" * 32),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenError) as refusal:
        verify(SECRET, token, now=NOW)
    assert token not in str(refusal.value) or token == ""


@pytest.mark.parametrize("volunteer", ["", "a:b", "x" * 65, "ali ce", "алиса"])
def test_mint_refuses_ids_it_could_not_parse_back(volunteer: str) -> None:
    with pytest.raises(ValueError, match="volunteer id"):
        mint(SECRET, volunteer, HOUR_SECONDS)


def test_the_token_command_prints_a_verifiable_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a secret in the environment
    monkeypatch.setenv("PHONEBANK_VOLUNTEER_SECRET", SECRET)
    # When an organiser mints a token for 2 hours
    assert main(["gateway", "token", "vol-42", "--ttl", str(2 * HOUR_SECONDS)]) == 0
    printed = capsys.readouterr()
    # Then stdout is exactly the token, and it verifies for vol-42
    token = printed.out.strip()
    assert verify(SECRET, token).volunteer_id == "vol-42"
    assert "valid until" in printed.err and token not in printed.err


def test_the_token_command_refuses_a_bad_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "token", "a:b"]) == 2
    assert "volunteer id" in capsys.readouterr().err
