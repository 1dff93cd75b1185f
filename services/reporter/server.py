"""The reporter's HTTP server: ``/``, ``/report.json``, ``/metrics``, ``/healthz``, ``/readyz``.

Standard library ``ThreadingHTTPServer``; every answer is rendered from the in-memory
:class:`~phonebank.reporter.status.ReporterStatus`, so requests never touch Redis or
Kafka. Request lines are logged at DEBUG only (they carry no personal data, but
Prometheus scrapes every few seconds).
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from phonebank.reporter.exporter import make_registry, render_metrics
from phonebank.reporter.page import render_page
from phonebank.reporter.status import ReporterStatus

log = logging.getLogger(__name__)

#: content types of the answers
HTML = "text/html; charset=utf-8"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    """Routes GET requests; the server carries the status and the metrics registry."""

    server: ReporterHTTPServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        status = self.server.status
        if path == "/metrics":
            self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, render_metrics(self.server.registry))
        elif path == "/report.json":
            body = json.dumps(status.report(), ensure_ascii=False).encode()
            self._send(HTTPStatus.OK, JSON, body)
        elif path == "/":
            self._send(HTTPStatus.OK, HTML, render_page(status.report()).encode())
        elif path == "/healthz":
            self._probe(status.healthy())
        elif path == "/readyz":
            self._probe(status.ready)
        else:
            self._send(HTTPStatus.NOT_FOUND, TEXT, b"not found\n")

    def _probe(self, ok: bool) -> None:
        if ok:
            self._send(HTTPStatus.OK, TEXT, b"ok\n")
        else:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, TEXT, b"not ready\n")

    def _send(self, code: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class ReporterHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one reporter's status."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], status: ReporterStatus) -> None:
        self.status = status
        self.registry: CollectorRegistry = make_registry(status)
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self.server_address[1])


def serve(status: ReporterStatus, port: int, host: str = "") -> ReporterHTTPServer:
    """Start serving ``status`` on ``host:port`` from a daemon thread; return the server."""
    server = ReporterHTTPServer((host, port), status)
    thread = threading.Thread(target=server.serve_forever, name="reporter-http", daemon=True)
    thread.start()
    log.info("reporter serving on port %d", server.port)
    return server
