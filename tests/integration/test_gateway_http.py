"""The gateway's HTTP surface: auth on every endpoint, the page, probes, /metrics, errors."""

from __future__ import annotations

import logging
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from phonebank.gateway.app import load_static
from phonebank.gateway.cli import build_gateway, loop_transport, serve
from phonebank.gateway.tokens import mint
from phonebank.infra.metrics import CATALOGUE
from phonebank.settings import Settings, child_env
from tests.helpers import exposed_names
from tests.integration.gateway_helpers import Http, Running, running_gateway
from tests.integration.lease_helpers import FIRST, MOSCOW_ONLY, fill, lease_client, local_instant

pytestmark = [pytest.mark.integration, pytest.mark.on_cluster]

LEASE = "/api/v1/leases/RU-MOW." + "a" * 32
#: every API endpoint with the method it takes
ENDPOINTS = [
    ("POST", "/api/v1/leases"),
    ("POST", LEASE + "/renew"),
    ("POST", LEASE + "/complete"),
    ("POST", LEASE + "/release"),
    ("GET", "/api/v1/guidelines/calm-conversation@1"),
    ("GET", "/api/v1/me"),
]
#: seconds the real command may take to start or to stop
COMMAND_TIMEOUT_SECONDS = 20
#: an unused local port: nothing listens there
CLOSED_PORT = 1


@pytest.fixture
def gateway(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> Iterator[Running]:
    """A gateway at 12:00 Moscow time with one queued number."""
    caplog.set_level(logging.DEBUG, logger="phonebank")
    fill(settings, redis_client, "RU-MOW", [FIRST])
    with running_gateway(settings, redis_client, local_instant(12)) as running:
        yield running


def _bad_bearers(gateway: Running) -> dict[str, str | None]:
    secret = gateway.settings.volunteer_secret.get_secret_value()
    campaign = gateway.settings.campaign
    return {
        "missing": None,
        "garbage": "not-a-token",
        "forged": mint("some-other-secret-of-32-bytes-or-more", "alice", campaign, 3600),
        "expired": mint(secret, "alice", campaign, 1, now=1_000_000_000),
        "other campaign": mint(secret, "alice", "another-campaign", 3600),
    }


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_a_missing_or_bad_token(
    gateway: Running, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    for case, bearer in _bad_bearers(gateway).items():
        # When the endpoint is called without a valid volunteer token
        answer = gateway.request(method, path, {} if method == "POST" else None, bearer=bearer)
        # Then it is a 401 with a JSON error and a Bearer challenge
        assert answer.status == 401, case
        assert answer.json()["error"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        # And the refused token is in no log line
        assert bearer is None or bearer not in caplog.text
    # And a non-Bearer scheme is refused the same way
    basic = gateway.request(method, path, None, headers={"Authorization": "Basic YTpi"})
    assert basic.status == 401


def test_the_page_is_self_contained_and_locked_down(gateway: Running) -> None:
    # When the page and its files are fetched (no token needed)
    page = gateway.request("GET", "/")
    files = {name: gateway.request("GET", f"/static/{name}") for name in load_static()}
    # Then they are served with a same-origin CSP and nosniff
    for answer in (page, *files.values()):
        assert answer.status == 200
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-type"].startswith("text/html")
    # And nothing refers to another origin but the messengers' call links, or runs inline
    text = b"".join(answer.body for answer in (page, *files.values())).decode()
    others = set(re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text))
    assert others == {"https://wa.me", "https://t.me"}
    assert "<script>" not in page.body.decode() and "style=" not in page.body.decode()
    # And an unknown static file is a 404
    assert gateway.request("GET", "/static/secret.py").status == 404


def test_guideline_text_in_russian_and_english(gateway: Running) -> None:
    # When the guideline is asked for in English, and with no language
    path = "/api/v1/guidelines/calm-conversation@1"
    english = gateway.request("GET", path + "?language=en", volunteer="alice")
    russian = gateway.request("GET", path, volunteer="alice")
    # Then each names its language, the translations there are, and HTML without scripts
    assert (english.status, russian.status) == (200, 200)
    assert english.json()["language"] == "en" and russian.json()["language"] == "ru"
    assert "calm" in english.json()["title"].lower()
    assert english.json()["languages"] == ["ru", "en"]
    assert english.json()["html"].startswith("<") and "<script" not in english.json()["html"]
    assert (english.json()["id"], english.json()["version"]) == ("calm-conversation", 1)
    missing = gateway.request("GET", "/api/v1/guidelines/nope@9", volunteer="alice")
    assert missing.status == 404


def test_probes_and_metrics_pass_promtool(gateway: Running) -> None:
    # Given some traffic: a grant, a refused token, an unknown path
    assert gateway.acquire("alice").status == 201
    assert gateway.request("POST", "/api/v1/leases", {}, bearer="x").status == 401
    assert gateway.request("GET", "/nowhere").status == 404
    # When the probes and /metrics are fetched
    health = gateway.request("GET", "/healthz")
    ready = gateway.request("GET", "/readyz")
    metrics = gateway.request("GET", "/metrics")
    # Then the probes are up, and the metrics count grants, latency and requests
    assert (health.status, ready.status, metrics.status) == (200, 200, 200)
    text = metrics.body.decode()
    assert 'phonebank_leases_granted_total{region="RU-MOW"} 1.0' in text
    assert 'phonebank_lease_operation_seconds_count{operation="acquire",result="ok"} 1.0' in text
    assert 'phonebank_gateway_requests_total{operation="acquire",result="unauthorized"} 1.0' in text
    assert exposed_names(text) <= set(CATALOGUE)
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    check = subprocess.run(
        [tool, "check", "metrics"], input=metrics.body, capture_output=True, check=False
    )
    assert (check.returncode, check.stdout + check.stderr) == (0, b"")


def test_readyz_fails_when_redis_is_unreachable(settings: Settings) -> None:
    # Given a gateway whose Redis does not answer
    unreachable = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{CLOSED_PORT}/0"})
    client = redis.Redis.from_url(unreachable.redis_url)
    transport = loop_transport(unreachable, client)
    leases = lease_client(unreachable, client, local_instant(12), MOSCOW_ONLY, transport)
    gateway = build_gateway(unreachable, client, leases)
    server = serve(gateway, unreachable, "127.0.0.1", 0)
    try:
        running = Running(server.port, unreachable, server, gateway, leases)
        # When it is probed and asked for a number
        ready = running.request("GET", "/readyz")
        acquired = running.acquire("alice")
    finally:
        server.stop()
        client.close()
    # Then it is not ready, and the API says 503 rather than failing obscurely
    assert ready.status == 503
    assert (acquired.status, acquired.json()["error"]) == (503, "unavailable")


def test_protocol_errors_are_clear_4xx(gateway: Running) -> None:
    token = gateway.token("alice")
    # Wrong method on an API route, unknown API route, method on the page
    wrong_method = gateway.request("GET", "/api/v1/leases", bearer=token)
    assert (wrong_method.status, wrong_method.headers["allow"]) == (405, "POST")
    assert wrong_method.json()["error"] == "method_not_allowed"
    unknown = gateway.request("POST", "/api/v1/lists", {}, bearer=token)
    assert (unknown.status, unknown.json()["error"]) == (404, "not_found")
    page_method = gateway.request("DELETE", "/")
    assert (page_method.status, page_method.json()["error"]) == (405, "method_not_allowed")
    # And the router's answers carry the security headers too
    for answer in (wrong_method, unknown, page_method):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-type"] == "application/json"
    # A body that is not JSON, a Content-Type that is not JSON
    bad = gateway.request("POST", "/api/v1/leases", b"{", bearer=token)
    assert (bad.status, bad.json()["error"]) == (400, "malformed_json")
    form = gateway.request(
        "POST", "/api/v1/leases", b"a=1", bearer=token, headers={"Content-Type": "text/plain"}
    )
    assert (form.status, form.json()["error"]) == (415, "unsupported_media_type")
    # A malformed lease id is just "not yours"
    odd = gateway.request(
        "POST",
        "/api/v1/leases/..%2f..%2fetc/renew",
        {},
        bearer=token,
        headers={"X-Lease-Token": "a" * 32 + "." + "b" * 32},
    )
    assert odd.status == 404


def test_an_unexpected_error_is_a_json_500_without_a_trace(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a lease client that fails in an unforeseen way
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom at /secret/path")

    monkeypatch.setattr(gateway.leases, "acquire", broken)
    # When a number is asked for, Then the client sees a bare JSON 500
    answer = gateway.acquire("alice")
    assert (answer.status, answer.json()) == (
        500,
        {"error": "internal_error", "message": "internal error"},
    )


def test_the_command_serves_until_sigterm(settings: Settings) -> None:
    # Given `phonebank gateway` started for real on an ephemeral port
    env = child_env(
        settings.model_copy(
            update={"gateway_port": 0, "bind_address": "127.0.0.1", "log_level": "INFO"}
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "phonebank.cli", "gateway"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        started = ""
        while "gateway serving on" not in started:
            started = process.stderr.readline()
            assert started, "the gateway exited before serving"
        port = int(started.rsplit(":", 1)[1])
        # When it is probed, then sent SIGTERM
        assert Http(port, settings).request("GET", "/healthz").status == 200
        process.send_signal(signal.SIGTERM)
        # Then it stops by itself with exit code 0
        assert process.wait(timeout=COMMAND_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
