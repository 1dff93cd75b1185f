"""``phonebank gateway``: serve the lease API until SIGTERM; ``gateway token``: mint tokens.

``phonebank gateway`` listens on ``PHONEBANK_BIND_ADDRESS:PHONEBANK_GATEWAY_PORT``
(:mod:`phonebank.infra.http`); it refuses to start while the volunteer secret is the
public default or too short. ``phonebank gateway token VOLUNTEER_ID… [--ttl SECONDS]``
prints one HS256 volunteer token per id, one per line (for organisers: there is no
volunteer database), refusing a lifetime over the cap.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import redis
import redis.asyncio
from prometheus_client import CollectorRegistry
from redis.cluster import RedisCluster

from phonebank.domain.guidelines import load_guidelines
from phonebank.gateway.api import LeaseApi
from phonebank.gateway.app import Gateway, create_app
from phonebank.gateway.guard import Guard, RateLimits
from phonebank.gateway.guideline_html import render_guideline_html
from phonebank.gateway.tokens import TokenVerifier, load_public_keys, mint
from phonebank.infra.http import HttpLimits, RunningServer, start
from phonebank.infra.redis_client import RedisClient, connect
from phonebank.infra.shutdown import stop_on_signals
from phonebank.leases.client import GIL_SWITCH_INTERVAL_SECONDS, LeaseClient
from phonebank.leases.dnc_journal import DncJournal
from phonebank.leases.keys import KeyScheme
from phonebank.leases.metrics import LeaseMetrics
from phonebank.leases.scripts import ScriptsNotLoadedError, load_all
from phonebank.leases.transport import LoopTransport, transport_for
from phonebank.settings import Settings, SettingsError, load_settings, require_volunteer_secret

log = logging.getLogger(__name__)

#: seconds a Redis call may take before the gateway answers 503
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0
#: Redis connections the gateway's requests share (at most; more wait for a free one)
REDIS_MAX_CONNECTIONS = 128
#: exit code for a bad volunteer id, lifetime or setting
EXIT_USAGE = 2


def _load_scripts(client: RedisClient) -> None:
    """Load the scripts if this Redis user may (with deploy/redis/users.acl it may not:
    the assigner loads them, and until it has, lease calls answer 503)."""
    try:
        load_all(client)
    except ScriptsNotLoadedError:
        log.info("this Redis user may not load scripts: the assigner loads them")
    except redis.RedisError as exc:
        log.warning("could not load the scripts at start: %s", exc)


def loop_transport(settings: Settings, client: RedisClient) -> LoopTransport:
    """How the gateway's requests reach Redis from its event loop: an asyncio pool on
    one node; on a Cluster, the cluster transport in worker threads."""
    if isinstance(client, RedisCluster):
        return LoopTransport(transport_for(client), None)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
    )
    return LoopTransport(transport_for(client), pool)


def build_gateway(
    settings: Settings, client: RedisClient | None = None, leases: LeaseClient | None = None
) -> Gateway:
    """A gateway on its own metrics registry, from the settings (or the given parts)."""
    secret = require_volunteer_secret(settings)
    client = client or connect(
        settings,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        max_connections=REDIS_MAX_CONNECTIONS,
    )
    _load_scripts(client)
    registry = CollectorRegistry()
    transport = loop_transport(settings, client)
    leases = leases or LeaseClient(settings, client, transport=transport)
    if leases.metrics is None:
        leases.metrics = LeaseMetrics(registry)
    verifier = TokenVerifier(
        secret,
        settings.campaign,
        settings.volunteer_token_max_ttl_seconds,
        load_public_keys(settings.volunteer_token_public_keys),
    )
    limits = RateLimits.parse(
        settings.gateway_rate_per_token,
        settings.gateway_rate_per_address,
        settings.gateway_auth_failures_per_address,
    )
    keys = KeyScheme(settings.key_prefix, settings.campaign)
    guard = Guard(verifier, limits, client, keys, transport)
    api = LeaseApi(
        guard, leases, load_guidelines(), render_guideline_html, dnc_journal=DncJournal(settings)
    )
    return Gateway(api, client, registry, settings.gateway_trusted_proxies)


def asgi_app() -> Any:
    """The gateway's ASGI app from the environment's settings, for another ASGI server
    (``granian --interface asgi --factory phonebank.gateway.cli:asgi_app``: how
    benchmarks/gateway.py compares servers). ``phonebank gateway`` serves it itself,
    under uvicorn with the limits of :mod:`phonebank.infra.http`."""
    settings = load_settings()
    return create_app(build_gateway(settings), settings.gateway_cors_origins)


def serve(
    gateway: Gateway, settings: Settings, host: str, port: int, limits: HttpLimits | None = None
) -> RunningServer:
    """Serve ``gateway`` on ``host:port`` from a thread; return the running server."""
    app = create_app(gateway, settings.gateway_cors_origins)
    chosen = limits or HttpLimits(max_connections=settings.gateway_max_connections)
    return start(app, host, port, name="gateway", limits=chosen)


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM or Ctrl-C; exit code 0 (2 for an insecure setting)."""
    try:
        gateway = build_gateway(settings)
    except SettingsError as exc:
        print(f"phonebank gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = stop_on_signals("gateway")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    server = serve(gateway, settings, settings.bind_address, settings.gateway_port)
    try:
        stop.wait()
    finally:
        log.info("gateway stopping")
        server.stop()
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print one bearer token per volunteer id, one per line."""
    ttl = settings.volunteer_token_ttl_seconds if args.ttl is None else args.ttl
    cap = settings.volunteer_token_max_ttl_seconds
    try:
        secret = require_volunteer_secret(settings)
        if ttl > cap:
            raise ValueError(f"--ttl {ttl} is over the cap of {cap} s")
        tokens = [
            mint(secret, volunteer, settings.campaign, ttl) for volunteer in args.volunteer_ids
        ]
    except (ValueError, SettingsError) as exc:
        print(f"phonebank gateway token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(tokens))
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``phonebank gateway`` (and ``phonebank gateway token``)."""
    parser = commands.add_parser(
        "gateway",
        help="HTTP lease API for frontends and the reference volunteer page",
        description="Serve /api/v1/ (acquire, me, renew, complete, release, guidelines), the "
        "volunteer page at /, /healthz, /readyz, /metrics and /openapi.json until SIGTERM.",
    )
    parser.set_defaults(handler=cmd_gateway)
    actions = parser.add_subparsers(dest="gateway_action", metavar="ACTION")
    token = actions.add_parser(
        "token",
        help="mint volunteer bearer tokens (JWT, HS256)",
        description="Print one signed bearer token per VOLUNTEER_ID, one per line.",
    )
    token.add_argument(
        "volunteer_ids",
        nargs="+",
        metavar="VOLUNTEER_ID",
        help="1-64 characters of A-Z a-z 0-9 _ . @ -",
    )
    token.add_argument(
        "--ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="lifetime (default: PHONEBANK_VOLUNTEER_TOKEN_TTL_SECONDS; at most "
        "PHONEBANK_VOLUNTEER_TOKEN_MAX_TTL_SECONDS)",
    )
    token.set_defaults(handler=cmd_token)
