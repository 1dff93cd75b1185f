"""Schemathesis against the running gateway's /openapi.json: no 5xx, answers match the schema."""

from __future__ import annotations

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzzing
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from phonebank.settings import Settings
from tests.integration.gateway_helpers import running_gateway
from tests.integration.lease_helpers import FIRST, fill, local_instant

pytestmark = pytest.mark.integration

#: what is checked of every answer: no 5xx, a declared status, a declared content type,
#: a body that matches the schema
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: generated cases per operation (keeps the whole run well under a minute)
CASES_PER_OPERATION = 25


def test_every_operation_answers_within_its_schema(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a running gateway with a queued number and generous rate limits
    fill(settings, redis_client, "RU-MOW", [FIRST + n for n in range(50)])
    roomy = settings.model_copy(
        update={
            "gateway_rate_per_token": "100000/minute",
            "gateway_rate_per_address": "100000/minute",
            "gateway_auth_failures_per_address": "100000/minute",
            "volunteer_max_per_hour": 100_000,
        }
    )
    with running_gateway(roomy, redis_client, local_instant(12)) as gateway:
        base = f"http://127.0.0.1:{gateway.port}"
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        headers = {"Authorization": f"Bearer {gateway.token('fuzzer')}"}
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()

            @fuzzing(
                max_examples=CASES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy())
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=base, headers=headers)
                # When any generated request is sent, Then no 5xx and the answer fits
                assert response.status_code < 500, (case.method, case.path, response.text)
                case.validate_response(response, checks=CHECKS)

            try:
                check()
            except Exception as exc:  # collect, to report every operation at once
                failures.append(f"{operation.method} {operation.path}: {exc}")
    assert failures == []
