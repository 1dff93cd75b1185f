"""The one way phonebank serves HTTP: an ASGI app under uvicorn (httptools parser, uvloop).

:func:`start` binds the listening socket itself (backlog :data:`LISTEN_BACKLOG`, so the
port is known before serving, also for port 0) and runs uvicorn on it in a thread;
:meth:`RunningServer.stop` ends it. The HTTP layer is hardened in
:class:`GuardedProtocol` (uvicorn's httptools protocol with limits), and every answer it
makes itself is JSON with the security headers, like the app's:

- at most :attr:`HttpLimits.max_header_count` header lines and
  :attr:`HttpLimits.max_header_bytes` bytes of request line and headers → 431;
- at most :attr:`HttpLimits.max_body_bytes` of body → 413 (declared or sent);
- the whole request (headers and body) within :attr:`HttpLimits.request_seconds` of its
  first byte → else 408 (slowloris-proof: a byte every few seconds does not extend it);
  a connection that sends nothing is closed after the keep-alive time;
- at most :attr:`HttpLimits.max_connections` open connections → 503 for the next ones;
- a request that is not HTTP → 400.

After such a refusal the connection is half-closed and what the client still sends is
read and dropped (at most :data:`MAX_DRAIN_BYTES`, :data:`DRAIN_SECONDS`), so the
client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

#: pending connections the kernel queues before accepting (SYN retransmits beyond)
LISTEN_BACKLOG = 2048
#: seconds an idle keep-alive connection (or one that never sent a byte) stays open
KEEP_ALIVE_SECONDS = 30
#: bytes of a refused request still read and dropped after answering
MAX_DRAIN_BYTES = 64 * 1024
#: seconds a refused connection is kept half-open to drain before it is closed
DRAIN_SECONDS = 2.0
#: seconds :func:`start` waits for the server to accept connections
STARTUP_TIMEOUT_SECONDS = 10.0
#: seconds :meth:`RunningServer.stop` waits for the server thread to end
STOP_TIMEOUT_SECONDS = 10.0
#: seconds uvicorn lets open requests finish on stop
GRACEFUL_SHUTDOWN_SECONDS = 5
#: headers on every answer, the app's and the HTTP layer's
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


@dataclass(frozen=True)
class HttpLimits:
    """What one request and the whole server may take."""

    #: bytes of request body
    max_body_bytes: int = 4096
    #: header lines of one request
    max_header_count: int = 64
    #: bytes of request line plus headers
    max_header_bytes: int = 16 * 1024
    #: seconds from a request's first byte until it has fully arrived
    request_seconds: float = 10.0
    #: open connections
    max_connections: int = 2048


_ENCODED_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]


class SecurityHeaders:
    """ASGI middleware adding the security headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_ENCODED_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_body(code: str, message: str) -> bytes:
    """The JSON of every refusal: ``{"error": code, "message": message}``."""
    return json.dumps({"error": code, "message": message}).encode()


def raw_answer(status: HTTPStatus, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 JSON refusal that closes the connection."""
    body = error_body(code, message)
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header, body, time and connection limits."""

    limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._drained = 0
        self._in_head = False
        self._head_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    # --- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "too many connections")
            return
        # A connection that never sends a request is closed like an idle keep-alive one.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._drain(len(data))
            return
        super().data_received(data)
        if self._in_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers_too_large",
                    "the request headers are too large",
                )

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            self._refuse(HTTPStatus.BAD_REQUEST, "bad_request", "the request is not valid HTTP")

    # --- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._header_count, self._body_bytes = True, 0, 0, 0
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.limits.request_seconds, self._too_slow)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        self._head_bytes += len(name) + len(value)
        if (
            self._header_count > self.limits.max_header_count
            or self._head_bytes > self.limits.max_header_bytes
        ):
            self._refuse(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "too many or too large request headers",
            )
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        declared = next((v for k, v in self.headers if k == b"content-length"), b"0")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            self._too_large()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._too_large()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        if not self._refused:
            super().on_message_complete()

    # --- refusals ----------------------------------------------------------------------

    def _too_large(self) -> None:
        self._refuse(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "body_too_large",
            f"the body may be at most {self.limits.max_body_bytes} bytes",
        )

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is not None and self.cycle.response_started:
            return  # the app is answering; the request had arrived
        self._refuse(
            HTTPStatus.REQUEST_TIMEOUT,
            "request_timeout",
            f"the request did not arrive within {self.limits.request_seconds:g} s",
        )

    def _refuse(self, status: HTTPStatus, code: str, message: str) -> None:
        """Answer ``status`` as JSON, stop the request, drain a little, then close."""
        self._refused = True
        self._cancel_deadline()
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(raw_answer(status, code, message))
        log.info("http: refused a request (%s)", code)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(DRAIN_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _drain(self, size: int) -> None:
        self._drained += size
        if self._drained > MAX_DRAIN_BYTES:
            self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def _protocol_with(limits: HttpLimits) -> type[GuardedProtocol]:
    return type("LimitedProtocol", (GuardedProtocol,), {"limits": limits})


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


class RunningServer:
    """An ASGI app served by uvicorn from a thread of this process."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, name: str) -> None:
        self._server = server
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._run, name=f"{name}-http", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def _start(self) -> RunningServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(STARTUP_TIMEOUT_SECONDS / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            raise RuntimeError("the HTTP server did not start")
        return self

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting, let open requests finish briefly, end the thread."""
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._sock.close()


def start(
    app: Any,
    host: str,
    port: int,
    *,
    name: str,
    limits: HttpLimits | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> RunningServer:
    """Serve ``app`` on ``host:port`` from a thread; return once it accepts connections."""
    chosen = limits or HttpLimits()
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=_protocol_with(chosen),
        lifespan="off",
        # the client address is the socket's peer; X-Forwarded-For is read by the app
        # from the proxies it trusts (PHONEBANK_GATEWAY_TRUSTED_PROXIES), not by uvicorn,
        # which would trust any loopback peer's claim
        proxy_headers=False,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        backlog=LISTEN_BACKLOG,
        headers=list(headers),
    )
    server = RunningServer(uvicorn.Server(config), listen(host, port), name)
    log.info("%s serving on %s:%d", name, server.host, server.port)
    return server._start()
