"""The HTTP layer under hostile clients, on real sockets: slow headers and bodies (408),
big or many headers (431), big bodies (413), broken requests (400), the connection cap
(503), keep-alive; every such answer is JSON with the security headers."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from phonebank.infra.http import HttpLimits
from phonebank.settings import Settings
from tests.integration.gateway_helpers import Running, running_gateway
from tests.integration.lease_helpers import FIRST, fill, local_instant

pytestmark = pytest.mark.integration

#: seconds a request may take to arrive in these tests (the clock knob: 10 s in production)
REQUEST_SECONDS = 1.0
#: seconds between two bytes of a slow client
DRIP_SECONDS = 0.2
#: seconds a test socket waits for an answer
SOCKET_TIMEOUT_SECONDS = 10.0
LIMITS = HttpLimits(request_seconds=REQUEST_SECONDS, max_connections=8)


@pytest.fixture
def gateway(settings: Settings, redis_client: redis.Redis) -> Iterator[Running]:
    """A gateway with a 1 s request deadline and at most 8 connections."""
    fill(settings, redis_client, "RU-MOW", [FIRST])
    with running_gateway(settings, redis_client, local_instant(12), LIMITS) as running:
        yield running


def _connect(gateway: Running) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=SOCKET_TIMEOUT_SECONDS)


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, headers and JSON body of the one answer on ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, json.loads(body or b"{}")


def _assert_json_refusal(headers: dict[str, str], body: dict[str, object], code: str) -> None:
    assert body["error"] == code and isinstance(body["message"], str)
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]


def _drip(sock: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send ``data`` one byte at a time, slowly, until done or the server hangs up."""
    for byte in data:
        if stop.wait(DRIP_SECONDS):
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return


@pytest.mark.parametrize(
    ("case", "prefix", "dripped"),
    [
        ("headers", b"POST /api/v1/leases HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 100),
        (
            "body",
            b"POST /api/v1/leases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 60\r\n\r\n",
            b'{"regions": [' + b" " * 100,
        ),
    ],
)
def test_a_slow_client_gets_408_by_the_deadline(
    gateway: Running, case: str, prefix: bytes, dripped: bytes
) -> None:
    # Given a client that started a request and sends one byte every 0.2 s
    sock = _connect(gateway)
    stop = threading.Event()
    started = time.monotonic()
    sock.sendall(prefix)
    dripper = threading.Thread(target=_drip, args=(sock, dripped, stop), daemon=True)
    dripper.start()
    try:
        # When the deadline passes, Then the server answers 408 though bytes keep coming
        status, headers, body = _read_answer(sock)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        dripper.join()
        sock.close()
    assert status == 408, case
    _assert_json_refusal(headers, body, "request_timeout")
    assert REQUEST_SECONDS <= elapsed < REQUEST_SECONDS + 2, case


def _flood(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server answered and hung up: the point
        sock.sendall(data)


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("huge headers", b"".join(b"X-Big-%d: %s\r\n" % (i, b"a" * 65536) for i in range(99))),
        ("many headers", b"".join(b"X-H%d: 1\r\n" % i for i in range(100))),
    ],
)
def test_big_or_many_headers_are_431(gateway: Running, case: str, headers: bytes) -> None:
    # Given a client sending headers far over the limits
    sock = _connect(gateway)
    flood = threading.Thread(
        target=_flood, args=(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    )
    flood.start()
    try:
        # When the server has read enough, Then it answers 431 as JSON
        status, answer_headers, body = _read_answer(sock)
    finally:
        sock.close()
        flood.join()
    assert status == 431, case
    _assert_json_refusal(answer_headers, body, "headers_too_large")


def test_twenty_huge_header_clients_do_not_hold_memory(gateway: Running) -> None:
    # Given 20 clients each sending 99 headers of 65 KB at once
    def rss_bytes() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096

    before = rss_bytes()
    headers = b"".join(b"X-Big-%d: %s\r\n" % (i, b"a" * 65536) for i in range(99))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    sockets = [_connect(gateway) for _ in range(20)]
    floods = [threading.Thread(target=_flood, args=(sock, request)) for sock in sockets]
    for flood in floods:
        flood.start()
    statuses = [_read_answer(sock)[0] for sock in sockets]
    for sock in sockets:
        sock.close()
    for flood in floods:
        flood.join()
    # Then each was refused (431; 503 past the cap of 8 connections), and the process
    # holds at most a few MB more afterwards
    assert set(statuses) <= {431, 503} and statuses.count(431) >= LIMITS.max_connections
    assert rss_bytes() - before < 30 * 1024 * 1024


@pytest.mark.parametrize(
    ("case", "request_bytes", "status", "code"),
    [
        (
            "declared too large",
            b"POST /api/v1/leases HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
            + b"a" * 5000,
            413,
            "body_too_large",
        ),
        (
            "chunked too large",
            b"POST /api/v1/leases HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"1000\r\n"
            + b"a" * 4096
            + b"\r\n1000\r\n"
            + b"a" * 4096
            + b"\r\n0\r\n\r\n",
            413,
            "body_too_large",
        ),
        (
            "a Content-Length that is no number",
            "POST /api/v1/leases HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\n".encode(),
            400,
            "bad_request",
        ),
        ("not HTTP", b"\x16\x03\x01\x02\x00garbage\r\n\r\n", 400, "bad_request"),
    ],
)
def test_bad_bodies_and_requests_get_json_refusals(
    gateway: Running, case: str, request_bytes: bytes, status: int, code: str
) -> None:
    # When a client sends it, Then the server answers the status as JSON, not a reset
    sock = _connect(gateway)
    try:
        _flood(sock, request_bytes)
        answered, headers, body = _read_answer(sock)
    finally:
        sock.close()
    assert answered == status, case
    _assert_json_refusal(headers, body, code)


def test_connections_over_the_cap_get_503(gateway: Running) -> None:
    # Given the gateway holds its 8 allowed connections open
    held = [_connect(gateway) for _ in range(LIMITS.max_connections)]
    try:
        for sock in held:  # each is accepted and served
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_answer(sock)[0] == 200
        # When one more connects, Then it is told 503 at once, as JSON
        extra = _connect(gateway)
        status, headers, body = _read_answer(extra)
        extra.close()
    finally:
        for sock in held:
            sock.close()
    assert status == 503
    _assert_json_refusal(headers, body, "unavailable")


def test_one_connection_serves_many_requests(gateway: Running) -> None:
    # Given one kept-alive HTTP/1.1 connection
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        # When three requests go over it, Then each is answered and it stays open
        statuses = []
        for _ in range(3):
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
            assert answer.getheader("connection") != "close"
        assert connection.sock is not None
    finally:
        connection.close()
    assert statuses == [200, 200, 200]
