"""``phonebank redis acl``: the shipped template rendered with the passwords."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from phonebank.cli import main
from phonebank.ops.redis_acl import TEMPLATE, USERS

REPO = Path(__file__).resolve().parents[2]
#: commands the ACL test refuses for every user, checked in the file too
NEVER = ("flushall", "flushdb", "config", "debug", "keys", "scan", "shutdown", "module", "eval")


def set_passwords(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    passwords = {user: f"{user}-password-0123456789abcdef" for user in USERS}
    for user, password in passwords.items():
        monkeypatch.setenv(f"PHONEBANK_REDIS_PASSWORD_{user.upper()}", password)
    return passwords


def test_the_rendered_file_has_one_hashed_user_per_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Given every password in the environment, When the template is rendered, Then the
    file has the default user off and one line per service with its password's SHA-256,
    no comment, no placeholder, no clear password and none of the forbidden commands."""
    passwords = set_passwords(monkeypatch)
    out = tmp_path / "users.acl"
    monkeypatch.chdir(REPO)
    assert main(["redis", "acl", "--template", str(TEMPLATE), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert lines[0].startswith("user default off")
    by_user = {line.split()[1]: line for line in lines[1:]}
    assert sorted(by_user) == sorted(USERS)
    for user, line in by_user.items():
        assert "#" + hashlib.sha256(passwords[user].encode()).hexdigest() in line
        assert passwords[user] not in line and "{" not in line.replace("{r:*}", "")
        allowed = {rule[1:].lower() for rule in line.split() if rule.startswith("+")}
        assert allowed.isdisjoint(NEVER) and "@all" not in allowed, user


def test_a_missing_password_is_named_and_nothing_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the gateway's password unset, When rendering, Then exit 2 naming it."""
    set_passwords(monkeypatch)
    monkeypatch.delenv("PHONEBANK_REDIS_PASSWORD_GATEWAY")
    out = tmp_path / "users.acl"
    template = str(REPO / TEMPLATE)
    assert main(["redis", "acl", "--template", template, "--out", str(out)]) == 2
    assert "PHONEBANK_REDIS_PASSWORD_GATEWAY" in capsys.readouterr().err
    assert not out.exists()
