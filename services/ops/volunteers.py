"""``phonebank volunteers ban ID… | unban ID…``: the ban list of volunteer tokens.

The list is a Redis SET of volunteer hashes (``KeyScheme.banned``; never the ids). The
gateway checks it on every call (403 ``banned``). ``ban`` also ends every open lease of
each banned volunteer at once: released, so the numbers go back to the front of their
queues and no attempt is counted. Output names the ids given and counts, nothing else.
"""

from __future__ import annotations

import argparse
import sys

from phonebank.domain.lease_types import LeaseError
from phonebank.gateway.tokens import VOLUNTEER_ID_PATTERN
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.leases.client import LeaseClient
from phonebank.leases.keys import KeyScheme
from phonebank.leases.limits import volunteer_hash
from phonebank.settings import Settings, SettingsError, require_volunteer_secret

#: exit code for a bad id or an insecure setting
EXIT_USAGE = 2


def ban(
    settings: Settings,
    client: RedisClient,
    volunteer_ids: list[str],
    leases: LeaseClient | None = None,
) -> int:
    """Ban the volunteers and end their open leases; return how many leases ended."""
    secret = require_volunteer_secret(settings)
    banned_key = KeyScheme(settings.key_prefix, settings.campaign).banned
    client.sadd(banned_key, *(volunteer_hash(secret, volunteer) for volunteer in volunteer_ids))
    leases = leases or LeaseClient(settings, client)
    ended = 0
    for volunteer in volunteer_ids:
        for lease in leases.open_leases_of(volunteer):
            try:
                leases.release(lease.lease_id, lease.token)
                ended += 1
            except LeaseError:
                pass  # it ended meanwhile
    return ended


def unban(settings: Settings, client: RedisClient, volunteer_ids: list[str]) -> int:
    """Take the volunteers off the ban list; return how many were on it."""
    secret = require_volunteer_secret(settings)
    banned_key = KeyScheme(settings.key_prefix, settings.campaign).banned
    hashes = [volunteer_hash(secret, volunteer) for volunteer in volunteer_ids]
    return int(client.srem(banned_key, *hashes))


def cmd_volunteers(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``ban`` or ``unban``."""
    bad = [
        volunteer for volunteer in args.volunteer_ids if not VOLUNTEER_ID_PATTERN.match(volunteer)
    ]
    if bad:
        print("phonebank volunteers: ids are 1-64 of A-Z a-z 0-9 _ . @ -", file=sys.stderr)
        return EXIT_USAGE
    client = connect(settings)
    try:
        if args.volunteers_action == "ban":
            ended = ban(settings, client, args.volunteer_ids)
            print(f"banned {len(args.volunteer_ids)} volunteer(s); ended {ended} open lease(s)")
        else:
            removed = unban(settings, client, args.volunteer_ids)
            print(f"unbanned {removed} volunteer(s)")
    except SettingsError as exc:
        print(f"phonebank volunteers: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        client.close()
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank volunteers ban|unban``."""
    parser = commands.add_parser("volunteers", help="ban or unban volunteers' tokens")
    actions = parser.add_subparsers(dest="volunteers_action", metavar="ACTION", required=True)
    for action, text in (
        ("ban", "refuse their tokens and end their open leases"),
        ("unban", "accept their tokens again"),
    ):
        sub = actions.add_parser(action, help=text, description=f"{action.capitalize()}: {text}.")
        sub.add_argument("volunteer_ids", nargs="+", metavar="VOLUNTEER_ID")
        sub.set_defaults(handler=cmd_volunteers)
