"""``/openapi.json``: the OpenAPI 3.1 document, generated from the route table and models.

:data:`ROUTES` names every ``/api/v1/`` operation with its method, path, request model
and the answers it can give (status → model); the app serves exactly these routes
(:mod:`phonebank.gateway.app`), and the schemas come from the pydantic models, so the
document cannot drift from the code. Run ``python -m phonebank.gateway.openapi`` to print it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from phonebank.gateway import models

#: refusals any authenticated call may answer
_ALWAYS: dict[int, type[BaseModel] | None] = {
    400: models.ErrorView,
    401: models.ErrorView,
    403: models.ErrorView,
    408: models.ErrorView,
    429: models.ErrorView,
    431: models.ErrorView,
    503: models.ErrorView,
}
#: refusals of calls with a body
_WITH_BODY: dict[int, type[BaseModel] | None] = {
    413: models.ErrorView,
    415: models.ErrorView,
}
_ON_LEASE: dict[int, type[BaseModel] | None] = {404: models.ErrorView}


@dataclass(frozen=True)
class RouteSpec:
    """One operation: where it is, what it takes and what it answers."""

    operation: str
    method: str
    path: str
    summary: str
    answers: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    lease_token: bool = False


ROUTES = (
    RouteSpec(
        "acquire",
        "POST",
        "/api/v1/leases",
        "Lease one number (Idempotency-Key: a retry returns the same lease)",
        {
            201: models.LeaseView,
            200: models.LeaseView,
            204: None,
            409: models.ErrorView,
            423: models.ErrorView,
            **_ALWAYS,
            **_WITH_BODY,
        },
        models.AcquireRequest,
    ),
    RouteSpec(
        "me",
        "GET",
        "/api/v1/me",
        "The caller's open lease (204: none)",
        {200: models.LeaseView, 204: None, **_ALWAYS},
    ),
    RouteSpec(
        "renew",
        "POST",
        "/api/v1/leases/{lease_id}/renew",
        "Restart the lease's countdown",
        {
            200: models.RenewView,
            409: models.ErrorView,
            410: models.ErrorView,
            **_ON_LEASE,
            **_ALWAYS,
            **_WITH_BODY,
        },
        models.LeaseTokenRequest,
        lease_token=True,
    ),
    RouteSpec(
        "complete",
        "POST",
        "/api/v1/leases/{lease_id}/complete",
        "Record the call's outcome (idempotent; 410 do_not_call: the number became "
        "do-not-call while leased, the answer is recorded and the number must not be called)",
        {200: models.CompletionView, 410: models.ErrorView, **_ON_LEASE, **_ALWAYS, **_WITH_BODY},
        models.CompleteRequest,
        lease_token=True,
    ),
    RouteSpec(
        "release",
        "POST",
        "/api/v1/leases/{lease_id}/release",
        "Give the number back uncalled",
        {
            200: models.ReleaseView,
            409: models.ErrorView,
            410: models.ErrorView,
            **_ON_LEASE,
            **_ALWAYS,
            **_WITH_BODY,
        },
        models.LeaseTokenRequest,
        lease_token=True,
    ),
    RouteSpec(
        "guideline",
        "GET",
        "/api/v1/guidelines/{ref}",
        "One guideline (id@version) in one language, as sanitized HTML",
        {200: models.GuidelineView, 404: models.ErrorView, **_ALWAYS},
    ),
)

_REF = "#/components/schemas/{model}"


def _parameters(route: RouteSpec) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    if "{lease_id}" in route.path:
        parameters.append(
            {"name": "lease_id", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if "{ref}" in route.path:
        parameters.append(
            {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}}
        )
        parameters.append(
            {"name": "language", "in": "query", "required": False, "schema": {"type": "string"}}
        )
    if route.lease_token:
        parameters.append(
            {
                "name": "X-Lease-Token",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            }
        )
    if route.operation == "acquire":
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": models.IDEMPOTENCY_KEY},
            }
        )
    return parameters


def _answer(status: int, model: type[BaseModel] | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if model is not None:
        reference = {"$ref": _REF.format(model=model.__name__)}
        answer["content"] = {"application/json": {"schema": reference}}
    return answer


def _operation(route: RouteSpec) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": route.summary,
        "security": [{"bearer": []}],
        "parameters": _parameters(route),
        "responses": {
            str(status): _answer(status, model) for status, model in sorted(route.answers.items())
        },
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=route.body.__name__)}}
            },
        }
    return operation


def document() -> dict[str, Any]:
    """The OpenAPI document of the gateway's API."""
    used = {model for route in ROUTES for model in route.answers.values() if model is not None}
    used |= {route.body for route in ROUTES if route.body is not None}
    ordered = sorted(used, key=lambda model: model.__name__)
    answers = _answer_models()
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "serialization" if model in answers else "validation") for model in ordered
    ]
    _, schemas = models_json_schema(modes, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "phonebank gateway", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _answer_models() -> set[type[BaseModel]]:
    return {model for route in ROUTES for model in route.answers.values() if model is not None}


if __name__ == "__main__":
    print(json.dumps(document(), indent=2))
