"""The gateway's ASGI application (Starlette): routes, JSON answers, headers, page, probes.

``/api/v1/`` routes come from :data:`phonebank.gateway.openapi.ROUTES`; each runs
:meth:`~phonebank.gateway.api.LeaseApi.handle` on the event loop
(:func:`~phonebank.infra.loop_bridge.run_on_loop`: the lease client is synchronous, its
Redis round trips are awaited), shielded from cancellation so that a call the client
hung up on still finishes as it would have (its lease is then found by ``/me``). ``/`` and
``/static/*`` serve whatever files ``gateway/static/`` holds (read once at start);
``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json`` need no token. Every
answer, the router's 404/405 included, is JSON (but the page and /metrics) and carries
the security headers; an unexpected error is a JSON 500 whose traceback goes to the log
only. CORS is allowed only for the configured origins.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from phonebank.gateway import openapi
from phonebank.gateway.api import Answer, ApiRequest, LeaseApi, refusal
from phonebank.gateway.errors import ApiError, not_found
from phonebank.infra import metrics as names
from phonebank.infra.http import SecurityHeaders
from phonebank.infra.loop_bridge import run_on_loop
from phonebank.infra.redis_client import RedisClient

log = logging.getLogger(__name__)

#: the page's folder
STATIC_FOLDER = Path(__file__).resolve().parent / "static"
JSON = "application/json"

Endpoint = Callable[[Request], Awaitable[Response]]


def _result(status: int) -> str:
    """The ``result`` label of a status: ``ok`` or its phrase in snake case."""
    if status == HTTPStatus.OK:
        return "ok"
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def json_answer(answer: Answer) -> Response:
    """An :class:`Answer` as a response (204: no body)."""
    if answer.payload is None:
        return Response(status_code=answer.status, headers=dict(answer.headers))
    if isinstance(answer.payload, BaseModel):
        body = answer.payload.model_dump_json().encode()
    else:
        body = json.dumps(answer.payload, ensure_ascii=False).encode()
    return Response(body, answer.status, dict(answer.headers), media_type=JSON)


def load_static(folder: Path = STATIC_FOLDER) -> dict[str, tuple[bytes, str]]:
    """Every file of the page's folder: name → (content, content type)."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and not path.name.startswith("."):
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            files[path.name] = (path.read_bytes(), kind)
    return files


class Gateway:
    """Everything the app answers from: the API, probes, metrics and the page."""

    def __init__(
        self,
        api: LeaseApi,
        client: RedisClient,
        registry: CollectorRegistry,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.api = api
        self.registry = registry
        self._client = client
        self._trusted = frozenset(trusted_proxies)
        self._static = load_static()
        self._requests = Counter(
            names.GATEWAY_REQUESTS,
            "Gateway HTTP requests by route.",
            ["operation", "result"],
            registry=registry,
        )

    def count(self, operation: str, status: int) -> None:
        """Count one answer by route and result."""
        self._requests.labels(operation, _result(status)).inc()

    def address(self, request: Request) -> str:
        """The client address: the peer, or X-Forwarded-For's first from a trusted proxy."""
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and peer in self._trusted:
            return forwarded.split(",")[0].strip() or peer
        return peer

    def api_endpoint(self, operation: str) -> Endpoint:
        """The endpoint of one ``/api/v1/`` operation."""

        async def endpoint(request: Request) -> Response:
            call = ApiRequest(
                operation=operation,
                header=request.headers.get,
                address=self.address(request),
                body=await request.body(),
                lease_id=request.path_params.get("lease_id", ""),
                ref=request.path_params.get("ref", ""),
                query=dict(request.query_params),
            )
            with anyio.CancelScope(shield=True):
                answer = await run_on_loop(self.api.handle, call)
            return json_answer(answer)

        return self._counted(operation, endpoint)

    def _counted(self, operation: str, endpoint: Endpoint) -> Endpoint:
        async def counted(request: Request) -> Response:
            try:
                response = await endpoint(request)
            except Exception:
                log.exception("gateway: unexpected error in %s", operation)
                error = ApiError(
                    HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error"
                )
                response = json_answer(refusal(error))
            self.count(operation, response.status_code)
            return response

        return counted

    async def page(self, request: Request) -> Response:
        """``/`` and ``/static/{name}``: a file of the page, or 404."""
        name = request.path_params.get("name", "index.html")
        found = self._static.get(name)
        if found is None:
            return json_answer(refusal(not_found()))
        return Response(found[0], media_type=found[1])

    async def health(self, request: Request) -> Response:
        """Liveness: the process answers."""
        return json_answer(Answer(HTTPStatus.OK, {"status": "ok"}))

    async def ready(self, request: Request) -> Response:
        """Readiness: Redis answers PING."""
        try:
            await anyio.to_thread.run_sync(self._client.ping)
        except redis.RedisError as exc:
            log.warning("readyz: Redis PING failed (%s)", type(exc).__name__)
            return json_answer(
                Answer(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "redis unavailable"})
            )
        return json_answer(Answer(HTTPStatus.OK, {"status": "ready"}))

    async def metrics(self, request: Request) -> Response:
        """Prometheus text."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def schema(self, request: Request) -> Response:
        """The OpenAPI document."""
        return json_answer(Answer(HTTPStatus.OK, openapi.document()))

    def routes(self) -> list[Route]:
        """Every route of the app."""
        api = [
            Route(spec.path, self.api_endpoint(spec.operation), methods=[spec.method])
            for spec in openapi.ROUTES
        ]
        site = [
            ("/", "page", self.page),
            ("/static/{name}", "page", self.page),
            ("/healthz", "health", self.health),
            ("/readyz", "ready", self.ready),
            ("/metrics", "metrics", self.metrics),
            ("/openapi.json", "openapi", self.schema),
        ]
        return api + [Route(path, self._counted(op, fn), methods=["GET"]) for path, op, fn in site]


def create_app(gateway: Gateway, cors_origins: Sequence[str] = ()) -> Starlette:
    """The ASGI app of one gateway."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            allowed = (
                exc.headers.get("Allow", "")
                if isinstance(exc, HTTPException) and exc.headers
                else ""
            )
            error = ApiError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"use {allowed}",
                headers={"Allow": allowed},
            )
        else:
            error = ApiError(
                HTTPStatus(status),
                "not_found" if status == 404 else "bad_request",
                HTTPStatus(status).phrase.lower(),
            )
        gateway.count("unknown", status)
        return json_answer(refusal(error))

    middleware = [Middleware(SecurityHeaders)]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-Lease-Token", "Idempotency-Key"],
                max_age=600,
            )
        )
    handlers: dict[Any, Any] = {HTTPException: http_error}
    return Starlette(routes=gateway.routes(), middleware=middleware, exception_handlers=handlers)
