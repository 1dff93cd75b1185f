"""The ``phonebank gateway`` subcommand: serve the lease API until SIGTERM; mint tokens.

``phonebank gateway`` listens on ``PHONEBANK_BIND_ADDRESS:PHONEBANK_GATEWAY_PORT``;
``phonebank gateway token VOLUNTEER_ID [--ttl SECONDS]`` prints a volunteer bearer
token (for organisers: there is no volunteer database) and logs only that one was made.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time

from prometheus_client import CollectorRegistry

from phonebank.domain.guidelines import load_guidelines
from phonebank.gateway.server import Gateway, serve
from phonebank.gateway.tokens import mint
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.infra.shutdown import stop_on_signals
from phonebank.leases.client import GIL_SWITCH_INTERVAL_SECONDS, LeaseClient
from phonebank.settings import Settings

log = logging.getLogger(__name__)

#: seconds a Redis call may take before the gateway answers 503
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0
#: exit code for a bad volunteer id or lifetime
EXIT_USAGE = 2


def build_gateway(
    settings: Settings, client: RedisClient | None = None, leases: LeaseClient | None = None
) -> Gateway:
    """A gateway on its own metrics registry, from the settings (or the given parts)."""
    client = client or connect(
        settings,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
    )
    leases = leases or LeaseClient(settings, client)
    return Gateway(
        settings.volunteer_secret.get_secret_value(),
        leases,
        client,
        load_guidelines(),
        CollectorRegistry(),
    )


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM or Ctrl-C; exit code 0."""
    stop = stop_on_signals("gateway")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    server = serve(build_gateway(settings), settings.bind_address, settings.gateway_port)
    try:
        stop.wait()
    finally:
        log.info("gateway stopping")
        server.shutdown()
        server.server_close()
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print a bearer token for one volunteer."""
    ttl = settings.volunteer_token_ttl_seconds if args.ttl is None else args.ttl
    try:
        token = mint(settings.volunteer_secret.get_secret_value(), args.volunteer_id, ttl)
    except ValueError as exc:
        print(f"phonebank gateway token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    expires = dt.datetime.fromtimestamp(int(time.time()) + ttl, dt.UTC)
    print(token)
    print(f"valid until {expires.isoformat(timespec='seconds')}", file=sys.stderr)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank gateway`` (and ``phonebank gateway token``)."""
    parser = commands.add_parser(
        "gateway",
        help="HTTP lease API for frontends and the reference volunteer page",
        description="Serve /api/v1/ (acquire, renew, complete, release, guidelines), the "
        "volunteer page at /, /healthz, /readyz and /metrics until SIGTERM.",
    )
    parser.set_defaults(handler=cmd_gateway)
    actions = parser.add_subparsers(dest="gateway_action", metavar="ACTION")
    token = actions.add_parser(
        "token",
        help="mint a volunteer bearer token",
        description="Print a signed bearer token for VOLUNTEER_ID.",
    )
    token.add_argument(
        "volunteer_id", metavar="VOLUNTEER_ID", help="1-64 characters of A-Z a-z 0-9 _ . @ -"
    )
    token.add_argument(
        "--ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="lifetime (default: PHONEBANK_VOLUNTEER_TOKEN_TTL_SECONDS)",
    )
    token.set_defaults(handler=cmd_token)
