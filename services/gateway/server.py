"""The gateway's HTTP server: body limits, security headers, the page, probes and /metrics.

Standard library ``ThreadingHTTPServer`` (HTTP/1.0: one request per connection, so a
refused body never desynchronises a kept-alive stream). ``/api/v1/`` goes to
:class:`~phonebank.gateway.api.LeaseApi`; ``/`` and ``/static/*`` serve the reference
volunteer page from memory; ``/healthz`` (process up), ``/readyz`` (Redis PING) and
``/metrics`` (lease client latency and grants, gateway requests) need no token.

Every answer carries ``Content-Security-Policy: default-src 'self'``, ``nosniff``,
``no-store`` and no-referrer headers. An unexpected error answers a JSON 500 and is
logged with its traceback server-side only. Request lines are logged at DEBUG (paths
hold lease ids at most: tokens travel in headers, never in URLs).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from phonebank.domain.guidelines import GuidelineLibrary
from phonebank.gateway.api import ApiError, ApiRequest, LeaseApi, Response, json_response
from phonebank.infra import metrics as names
from phonebank.leases.client import LeaseClient
from phonebank.leases.metrics import LeaseMetrics

log = logging.getLogger(__name__)

#: bytes: the largest request body accepted (a complete is ~200 bytes)
MAX_BODY_BYTES = 4096
#: bytes of a refused body read and dropped before answering, so the client sees the
#: answer rather than a connection reset
MAX_DRAIN_BYTES = 64 * 1024
#: seconds a connection may sit idle mid-request before it is dropped (slow clients)
REQUEST_TIMEOUT_SECONDS = 10
#: seconds between the serve loop's checks for shutdown (how long a stop may wait)
SHUTDOWN_POLL_SECONDS = 0.05
#: headers on every answer
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
#: the page's files, served from memory: name → content type
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "call.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "phone.js": "text/javascript; charset=utf-8",
    "session.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
STATIC_FOLDER = Path(__file__).resolve().parent / "static"
_STATIC_PREFIX = "/static/"
_API_PREFIX = "/api/"

Header = Callable[[str], str | None]


def _result(status: HTTPStatus) -> str:
    """The ``result`` label of a status: ``ok`` or its phrase in snake case."""
    if status == HTTPStatus.OK:
        return "ok"
    return status.phrase.lower().replace(" ", "_").replace("-", "_")


class Gateway:
    """Everything the HTTP handler answers from; shared by all request threads."""

    def __init__(
        self,
        secret: str,
        leases: LeaseClient,
        client: redis.Redis,
        guidelines: GuidelineLibrary,
        registry: CollectorRegistry,
    ) -> None:
        if leases.metrics is None:
            leases.metrics = LeaseMetrics(registry)
        self.api = LeaseApi(secret, leases, guidelines)
        self.registry = registry
        self._client = client
        self._requests = Counter(
            names.GATEWAY_REQUESTS,
            "Gateway HTTP requests by route.",
            ["operation", "result"],
            registry=registry,
        )
        self._static = {name: (STATIC_FOLDER / name).read_bytes() for name in STATIC_FILES}

    def respond(
        self, method: str, path: str, header: Header, read_body: Callable[[], bytes]
    ) -> Response:
        """The answer to one request (never raises), counted by route and result."""
        operation = "unknown"
        try:
            if path.startswith(_API_PREFIX):
                operation, response = self.api.handle(ApiRequest(method, path, header, read_body))
            else:
                operation, response = self._site(method, path)
        except Exception:
            log.exception("gateway: unexpected error in %s", operation)
            response = ApiError(
                HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error"
            ).response()
        self._requests.labels(operation, _result(response.status)).inc()
        return response

    def _site(self, method: str, path: str) -> tuple[str, Response]:
        if method != "GET":
            return "unknown", ApiError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use GET",
                headers=(("Allow", "GET"),),
            ).response()
        name = "index.html" if path in {"/", "/index.html"} else path.removeprefix(_STATIC_PREFIX)
        if path.startswith(_STATIC_PREFIX) or name == "index.html":
            if name in self._static:
                return "page", Response(HTTPStatus.OK, self._static[name], STATIC_FILES[name])
        elif path == "/healthz":
            return "health", json_response(HTTPStatus.OK, {"status": "ok"})
        elif path == "/readyz":
            return "ready", self._ready()
        elif path == "/metrics":
            return "metrics", Response(
                HTTPStatus.OK, generate_latest(self.registry), CONTENT_TYPE_LATEST
            )
        return "unknown", ApiError(HTTPStatus.NOT_FOUND, "not_found", "not found").response()

    def _ready(self) -> Response:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            log.warning("readyz: Redis PING failed (%s)", type(exc).__name__)
            return json_response(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "redis unavailable"})
        return json_response(HTTPStatus.OK, {"status": "ready"})


class _Handler(BaseHTTPRequestHandler):
    """Reads the request within limits, asks the gateway, writes the answer."""

    server: GatewayHTTPServer
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "phonebank-gateway"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        path = urlsplit(self.path).path
        response = self.server.gateway.respond(
            self.command, path, self.headers.get, self._read_body
        )
        self._send(response)

    def _read_body(self) -> bytes:
        """The request body, or an :class:`ApiError` (400, 408, 411, 413, 415)."""
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(
                HTTPStatus.LENGTH_REQUIRED,
                "length_required",
                "send a Content-Length; chunked bodies are not accepted",
            )
        declared = self.headers.get("Content-Length", "0").strip()
        if not declared.isdigit():
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "bad Content-Length")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self._drain(length)
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "body_too_large",
                f"the body may be at most {MAX_BODY_BYTES} bytes",
            )
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            raise ApiError(
                HTTPStatus.REQUEST_TIMEOUT,
                "request_timeout",
                f"the body did not arrive within {REQUEST_TIMEOUT_SECONDS} s",
            ) from None
        if len(body) != length:
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "body shorter than declared")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and content_type != "application/json":
            raise ApiError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            )
        return body

    def _drain(self, length: int) -> None:
        if length <= MAX_DRAIN_BYTES:
            self.rfile.read(length)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in (*SECURITY_HEADERS, *response.headers):
            self.send_header(name, value)
        if response.status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if response.status != HTTPStatus.NO_CONTENT:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class GatewayHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one :class:`Gateway`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self.server_address[1])


def serve(gateway: Gateway, host: str, port: int) -> GatewayHTTPServer:
    """Start serving ``gateway`` on ``host:port`` from a daemon thread; return the server."""
    server = GatewayHTTPServer((host, port), gateway)
    thread = threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name="gateway-http", daemon=True
    )
    thread.start()
    log.info("gateway serving on %s:%d", host, server.port)
    return server
