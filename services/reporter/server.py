"""The reporter's HTTP surface: ``/``, ``/report.json``, ``/metrics``, ``/healthz``, ``/readyz``.

A Starlette app served by :mod:`phonebank.infra.http` (the project's one HTTP server);
every answer is rendered from the in-memory
:class:`~phonebank.reporter.status.ReporterStatus` (so requests never wait on Kafka),
except the shared Redis state at ``/metrics``, read at scrape time. Unknown paths and
methods answer JSON errors; every answer carries the security headers.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from phonebank.infra.http import RunningServer, SecurityHeaders, error_body, start
from phonebank.reporter.exporter import make_registry, render_metrics
from phonebank.reporter.page import render_page
from phonebank.reporter.status import ReporterStatus

log = logging.getLogger(__name__)

#: content types of the answers
HTML = "text/html; charset=utf-8"
JSON = "application/json"


def create_app(status: ReporterStatus, registry: CollectorRegistry) -> Starlette:
    """The reporter's ASGI app."""

    async def metrics(request: Request) -> Response:
        # the Redis-state collector does I/O: off the event loop, so a slow Redis never
        # holds /healthz or the report page
        body = await run_in_threadpool(render_metrics, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    encoded: list[Any] = [None, b""]  # the last document served, and its JSON

    async def report(request: Request) -> Response:
        document = status.report()
        if encoded[0] is not document:  # a published document is encoded once
            encoded[:] = [document, json.dumps(document, ensure_ascii=False).encode()]
        return Response(encoded[1], media_type=JSON)

    async def page(request: Request) -> Response:
        return Response(render_page(status.report()), media_type=HTML)

    def probe(ok: bool) -> Response:
        code = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        return Response(json.dumps({"status": "ok" if ok else "not ready"}), code, media_type=JSON)

    async def healthz(request: Request) -> Response:
        return probe(status.healthy())

    async def readyz(request: Request) -> Response:
        return probe(status.ready)

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        name = "not_found" if code == HTTPStatus.NOT_FOUND else "method_not_allowed"
        return Response(error_body(name, HTTPStatus(code).phrase.lower()), code, media_type=JSON)

    routes = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/report.json", report, methods=["GET"]),
        Route("/", page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error},
    )


class ReporterServer:
    """The reporter's app served from a thread; ``port`` is the bound one."""

    def __init__(
        self, status: ReporterStatus, port: int, host: str, collectors: tuple[Collector, ...] = ()
    ) -> None:
        self.status = status
        self.registry: CollectorRegistry = make_registry(status, *collectors)
        self._server: RunningServer = start(
            create_app(status, self.registry),
            host or "127.0.0.1",
            port,
            name="reporter",
        )
        self.port = self._server.port

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()


def serve(
    status: ReporterStatus, port: int, host: str = "", collectors: tuple[Collector, ...] = ()
) -> ReporterServer:
    """Start serving ``status`` (and ``collectors`` at ``/metrics``) on ``host:port`` from a
    thread; return the server."""
    return ReporterServer(status, port, host, collectors)
