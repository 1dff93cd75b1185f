"""``phonebank redis acl``: the Redis ACL file of the services; ``redis load-scripts``.

The template ``deploy/redis/users.acl`` lists one Redis user per service with its key
patterns and commands. :func:`render` turns it into the file ``redis-server --aclfile``
loads: ``{prefix}`` becomes the key prefix, ``{password:NAME}`` the SHA-256 of that
user's password (``#<hex>``: Redis keeps no clear password), comment lines are dropped
(Redis's ACL file has none). The passwords come from ``PHONEBANK_REDIS_PASSWORD_<USER>``
(at least :data:`MIN_PASSWORD_CHARS` characters). Each service then connects as its
user: ``PHONEBANK_REDIS_URL=redis://gateway:PASSWORD@host:6379/0``.

``phonebank redis load-scripts`` loads the lease and rate-limit scripts (the assigner
does at start): a user that may only ``EVALSHA`` (the gateway's) needs them loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from phonebank.infra.redis_client import connect
from phonebank.leases.scripts import ScriptsNotLoadedError, load_all
from phonebank.settings import Settings

#: the services that have a Redis user, in the template's order
USERS = ("assigner", "gateway", "reporter", "ingest", "operator")
#: the template shipped with the deployment files
TEMPLATE = Path("deploy/redis/users.acl")
#: environment variable of each user's password: PHONEBANK_REDIS_PASSWORD_GATEWAY …
USER_VARIABLE = "PHONEBANK_REDIS_PASSWORD_{user}"
#: shortest password accepted (hex of 12 random bytes and more)
MIN_PASSWORD_CHARS = 24
#: ``{password:gateway}`` in the template
PASSWORD_PLACEHOLDER = re.compile(r"\{password:(?P<user>[a-z]+)\}")
#: exit code for a missing password or template
EXIT_USAGE = 2


class AclError(ValueError):
    """A template names an unknown user, or a password is missing or short."""


def password_hash(password: str) -> str:
    """The ACL rule that sets ``password`` by its SHA-256 (``#<64 hex>``)."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def render(template: str, prefix: str, passwords: Mapping[str, str]) -> str:
    """The ACL file: placeholders replaced, comments and blank lines dropped."""

    def password(match: re.Match[str]) -> str:
        user = match["user"]
        if user not in passwords:
            raise AclError(f"no password for Redis user {user!r}")
        return password_hash(passwords[user])

    lines = []
    for line in template.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lines.append(PASSWORD_PLACEHOLDER.sub(password, line.replace("{prefix}", prefix)))
    return "\n".join(lines) + "\n"


def passwords_from(environment: Mapping[str, str]) -> dict[str, str]:
    """Every user's password from the environment; :class:`AclError` naming the variable
    of a missing or short one."""
    passwords = {}
    for user in USERS:
        variable = USER_VARIABLE.format(user=user.upper())
        value = environment.get(variable, "")
        if len(value) < MIN_PASSWORD_CHARS:
            raise AclError(f"{variable} must be set, at least {MIN_PASSWORD_CHARS} characters")
        passwords[user] = value
    return passwords


def cmd_acl(args: argparse.Namespace, settings: Settings) -> int:
    """Write the rendered ACL file (mode ``--mode``, 600 unless told)."""
    try:
        text = render(
            Path(args.template).read_text(encoding="utf-8"),
            settings.key_prefix,
            passwords_from(os.environ),
        )
    except (OSError, AclError) as exc:
        print(f"phonebank redis acl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.out)
    output.touch(mode=0o600, exist_ok=True)
    output.chmod(int(args.mode, 8))
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}: users {', '.join(USERS)}")
    return 0


def cmd_load_scripts(args: argparse.Namespace, settings: Settings) -> int:
    """Load the scripts on every master."""
    client = connect(settings)
    try:
        print(f"loaded {load_all(client)} scripts")
    except ScriptsNotLoadedError as exc:
        print(f"phonebank redis load-scripts: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        client.close()
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank redis acl`` and ``phonebank redis load-scripts``."""
    parser = commands.add_parser("redis", help="the Redis users' ACL file; load the scripts")
    actions = parser.add_subparsers(dest="redis_action", metavar="ACTION", required=True)
    acl = actions.add_parser(
        "acl", help="render deploy/redis/users.acl with the passwords (PHONEBANK_REDIS_PASSWORD_*)"
    )
    acl.add_argument("--template", default=str(TEMPLATE), help="the ACL template")
    acl.add_argument("--out", required=True, help="the ACL file to write")
    acl.add_argument(
        "--mode", default="600", choices=["600", "640", "644"], help="its file mode (octal)"
    )
    acl.set_defaults(handler=cmd_acl)
    load = actions.add_parser("load-scripts", help="SCRIPT LOAD the lease and rate-limit scripts")
    load.set_defaults(handler=cmd_load_scripts)
