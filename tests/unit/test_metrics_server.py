"""The /metrics server of the assigner and ingest: the project's one HTTP layer."""

from __future__ import annotations

import http.client
import json

from prometheus_client import CollectorRegistry, Counter

from phonebank.infra.metrics import start_metrics_server


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def test_metrics_are_served_on_the_hardened_layer() -> None:
    """Given a registry with one counter served on a free port, When /metrics, an unknown
    path and a POST are asked, Then the counter is in Prometheus text, the others are
    JSON 404/405, and every answer carries the security headers."""
    registry = CollectorRegistry()
    Counter("phonebank_test_things_total", "Things.", registry=registry).inc(3)
    server = start_metrics_server(0, registry, "127.0.0.1")
    try:
        status, headers, body = get(server.port, "/metrics")
        missing = get(server.port, "/nope")
        posted = get(server.port, "/metrics", "POST")
        health = get(server.port, "/healthz")
    finally:
        server.stop()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"phonebank_test_things_total 3.0" in body
    assert missing[0] == 404 and json.loads(missing[2])["error"] == "not_found"
    assert posted[0] == 405 and json.loads(posted[2])["error"] == "method_not_allowed"
    assert health[0] == 200
    for answer in (headers, missing[1], posted[1]):
        assert answer["x-content-type-options"] == "nosniff"
