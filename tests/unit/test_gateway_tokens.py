"""Volunteer JWTs: HS256 mint/verify, refusals (alg none, audience, expiry, lifetime,
forgery), EdDSA and RS256 public keys, a token minted by Node's crypto; the CLI."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from phonebank.cli import main
from phonebank.gateway.tokens import TokenError, TokenVerifier, load_public_keys, mint
from tests.conftest import TEST_VOLUNTEER_SECRET

SECRET = TEST_VOLUNTEER_SECRET
CAMPAIGN = "spring"
HOUR_SECONDS = 3600
WEEK_SECONDS = 7 * 24 * HOUR_SECONDS
VERIFIER = TokenVerifier(SECRET, CAMPAIGN, WEEK_SECONDS)
#: the Node.js example of docs/gateway.md, reduced to its HS256 core
NODE_MINT = """
const crypto = require("crypto");
const b64 = (data) => Buffer.from(data).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const header = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
const claims = b64(JSON.stringify({ sub: process.argv[1], aud: process.env.AUD,
  iat: now, exp: now + 3600, languages: ["ru", "en"] }));
const signature = crypto.createHmac("sha256", process.env.SECRET)
  .update(`${header}.${claims}`).digest("base64url");
console.log(`${header}.${claims}.${signature}`);
"""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(**changes: object) -> dict[str, object]:
    now = int(__import__("time").time())
    claims: dict[str, object] = {"sub": "alice", "aud": CAMPAIGN, "iat": now, "exp": now + 600}
    claims.update(changes)
    return claims


def test_a_minted_token_names_its_volunteer_and_languages() -> None:
    # Given a token minted for alice for one hour, with languages
    token = mint(SECRET, "alice@example.org", CAMPAIGN, HOUR_SECONDS, languages=["en", "ru"])
    # When it is verified, Then it names alice and her languages
    claims = VERIFIER.verify(token)
    assert (claims.volunteer_id, claims.languages) == ("alice@example.org", ("en", "ru"))
    # And it is a standard JWT: three base64url parts, HS256
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize(
    ("case", "token"),
    [
        (
            "alg none",
            _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(_claims()).encode()) + ".",
        ),
        ("wrong audience", jwt.encode(_claims(aud="other"), SECRET, algorithm="HS256")),
        (
            "expired",
            jwt.encode(_claims(iat=1_000_000_000, exp=1_000_000_600), SECRET, algorithm="HS256"),
        ),
        (
            "over-long lifetime",
            jwt.encode(
                _claims(exp=int(__import__("time").time()) + 8 * 86400), SECRET, algorithm="HS256"
            ),
        ),
        (
            "forged",
            jwt.encode(_claims(), "another-secret-that-is-long-enough!!", algorithm="HS256"),
        ),
        (
            "no subject",
            jwt.encode(
                {k: v for k, v in _claims().items() if k != "sub"}, SECRET, algorithm="HS256"
            ),
        ),
        ("bad subject", jwt.encode(_claims(sub="a:b/c"), SECRET, algorithm="HS256")),
        (
            "no iat",
            jwt.encode(
                {k: v for k, v in _claims().items() if k != "iat"}, SECRET, algorithm="HS256"
            ),
        ),
        ("HS384", jwt.encode(_claims(), SECRET, algorithm="HS384")),
        ("bad languages", jwt.encode(_claims(languages=["<script>"]), SECRET, algorithm="HS256")),
        ("garbage", "not.a.token"),
        ("too long", "a" * 5000),
    ],
)
def test_refused_tokens(case: str, token: str) -> None:
    # When a token that must not pass is verified, Then it is refused with a reason
    with pytest.raises(TokenError) as refused:
        VERIFIER.verify(token)
    # And the reason never repeats the token
    assert token not in str(refused.value), case


def _pem(private: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey, folder: Path, name: str) -> Path:
    path = folder / f"{name}.pem"
    path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_a_token_verified_before_is_refused_once_it_has_expired() -> None:
    # Given a ten-minute token verified once (its claims are remembered)
    verifier = TokenVerifier(SECRET, CAMPAIGN, WEEK_SECONDS)
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    now = int(__import__("time").time())
    assert verifier.verify(token, now).volunteer_id == "alice"
    # When it comes again within its lifetime, and then after it (and the leeway)
    again = verifier.verify(token, now + 300)
    # Then the repeat is the same volunteer, and the late one is refused, every time
    assert again.volunteer_id == "alice"
    for _ in range(2):
        with pytest.raises(TokenError, match="expired"):
            verifier.verify(token, now + 600 + 61)


def test_a_forged_token_is_refused_even_after_the_real_one_was_verified() -> None:
    # Given alice's real token, verified
    verifier = TokenVerifier(SECRET, CAMPAIGN, WEEK_SECONDS)
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    verifier.verify(token)
    # When the same claims come signed with another key
    forged = jwt.encode(_claims(), "x" * 48, algorithm="HS256")
    # Then it is refused: what is remembered is the exact token, not its claims
    with pytest.raises(TokenError, match="signature"):
        verifier.verify(forged)


def test_an_identity_providers_eddsa_and_rs256_tokens_verify(tmp_path: Path) -> None:
    # Given the campaign site's Ed25519 and RSA public keys in the settings
    ed = ed25519.Ed25519PrivateKey.generate()
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = load_public_keys([_pem(ed, tmp_path, "site-ed"), _pem(rs, tmp_path, "site-rsa")])
    verifier = TokenVerifier(SECRET, CAMPAIGN, WEEK_SECONDS, keys)
    # When the site signs tokens with the private halves
    eddsa = jwt.encode(_claims(sub="bob"), ed, algorithm="EdDSA", headers={"kid": "site-ed"})
    rs256 = jwt.encode(_claims(sub="carol"), rs, algorithm="RS256")
    # Then both verify
    assert verifier.verify(eddsa).volunteer_id == "bob"
    assert verifier.verify(rs256).volunteer_id == "carol"
    # But one signed by another Ed25519 key, or naming an unknown kid, is refused
    stranger = jwt.encode(_claims(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA")
    unknown_kid = jwt.encode(_claims(), ed, algorithm="EdDSA", headers={"kid": "nope"})
    for token in (stranger, unknown_kid):
        with pytest.raises(TokenError):
            verifier.verify(token)
    # And without public keys configured, EdDSA is refused altogether
    with pytest.raises(TokenError):
        VERIFIER.verify(eddsa)


def test_a_token_minted_by_nodes_crypto_verifies() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    # When the docs' Node.js example mints a token with the shared secret
    minted = subprocess.run(
        [node, "-e", NODE_MINT, "vol-0042"],
        env={"SECRET": SECRET, "AUD": CAMPAIGN},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    # Then the gateway's verifier accepts it
    claims = VERIFIER.verify(minted.stdout.strip())
    assert (claims.volunteer_id, claims.languages) == ("vol-0042", ("ru", "en"))


def test_the_token_command_prints_one_token_per_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a campaign in the environment
    monkeypatch.setenv("PHONEBANK_CAMPAIGN", CAMPAIGN)
    # When an organiser mints tokens for two volunteers for 2 hours
    assert main(["gateway", "token", "vol-42", "vol-43", "--ttl", str(2 * HOUR_SECONDS)]) == 0
    lines = capsys.readouterr().out.split()
    # Then stdout holds one verifiable token per id, in order
    assert [VERIFIER.verify(line).volunteer_id for line in lines] == ["vol-42", "vol-43"]


def test_the_token_command_refuses_a_ttl_over_the_cap_and_bad_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["gateway", "token", "vol-42", "--ttl", str(WEEK_SECONDS + 1)]) == 2
    assert "over the cap" in capsys.readouterr().err
    assert main(["gateway", "token", "a:b"]) == 2
    assert "volunteer id" in capsys.readouterr().err


def test_the_token_command_refuses_the_default_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no volunteer secret set
    monkeypatch.delenv("PHONEBANK_VOLUNTEER_SECRET")
    # When a token is asked for, Then none is printed and the variable is named
    assert main(["gateway", "token", "vol-42"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and "PHONEBANK_VOLUNTEER_SECRET" in printed.err
