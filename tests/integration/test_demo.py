"""`phonebank demo` end to end: every component real, each in its own process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from phonebank.infra import metrics as names
from phonebank.infra.metrics import CATALOGUE
from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings, namespaced
from tests.conftest import drop_keys, drop_topics
from tests.helpers import exposed_names, referenced_names

pytestmark = pytest.mark.integration

#: The /metrics snapshot of each service the demo ran.
SERVICE_METRICS = ("ingest.metrics", "assigner.metrics", "reporter.metrics", "gateway.metrics")
#: numbers the demo run generates: distinct draws from the numbering plan, all ingested
DEMO_COUNT = 3000
#: Files the Grafana dashboard and the alert rules are in.
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory, local_stack: Settings, stack_settings: StackSettings
) -> Iterator[Path]:
    """One short demo run (small count, time compressed), its files kept; its topics and
    Redis keys are removed after the module."""
    folder = tmp_path_factory.mktemp("demo")
    namespace = f"tdemo{uuid.uuid4().hex[:8]}"
    try:
        yield _run_demo(folder, namespace, stack_settings.stack_dir)
    finally:
        cleanup = namespaced(local_stack, namespace)
        drop_topics(cleanup)
        drop_keys(cleanup)


def _run_demo(folder: Path, namespace: str, stack_dir: Path) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "phonebank.cli",
            "demo",
            "--count",
            str(DEMO_COUNT),
            "--duration",
            "8",
            "--speed",
            "300",
            "--volunteers",
            "6",
            "--anytime",
            "--no-wait",
            "--namespace",
            namespace,
            "--report-out",
            str(folder / "report.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    (folder / "stdout.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    demo_folder = stack_dir.resolve() / "demo" / namespace
    for name in ("report.html", *SERVICE_METRICS):
        shutil.copy(demo_folder / name, folder / name)
    return folder


def test_final_table_matches_the_reporter(demo_run: Path) -> None:
    # Given the demo's output and the reporter's /report.json at the end
    out = (demo_run / "stdout.txt").read_text()
    report = json.loads((demo_run / "report.json").read_text())
    # Then calls were made, counted, and the demo's own check agreed with the reporter
    assert report["totals"]["calls"] > 0
    assert report["totals"]["ingested"] == DEMO_COUNT
    assert "reporter matches the volunteers' own tally: yes" in out
    # And every region row of the table is the reporter's row
    for row in report["regions"][:10]:
        assert f"{row['code']:<12} {row['name'][:34]:<34} {row['ingested']:>9,}" in out


def _samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_the_volunteers_went_through_the_gateway(demo_run: Path) -> None:
    """Given the demo's run, When the gateway's /metrics and the output are read,
    Then every lease the reporter counted was granted by the gateway's lease client,
    and the newcomer was offered a signed-in volunteer page link."""
    out = (demo_run / "stdout.txt").read_text()
    report = json.loads((demo_run / "report.json").read_text())
    gateway = (demo_run / "gateway.metrics").read_text()
    requests = _samples(gateway, names.GATEWAY_REQUESTS)
    acquired = requests[(("operation", "acquire"), ("result", "created"))]
    completed = requests[(("operation", "complete"), ("result", "ok"))]
    granted = sum(_samples(gateway, names.LEASES_GRANTED).values())
    # Then the lease client that granted the numbers ran inside the gateway process
    assert granted == acquired > 0
    # And each outcome the reporter counted came through the gateway's complete
    volunteer_calls = sum(
        count
        for row in report["regions"]
        for outcome, count in row["outcomes"].items()
        if outcome != "expired"
    )
    assert completed >= volunteer_calls > 0
    # And the demo process itself held no lease client (no lease metrics of its own)
    assert not (demo_run / "volunteers.metrics").exists()
    # And a volunteer page link with a token in its fragment was printed
    assert re.search(r"volunteer page .*: http://127\.0\.0\.1:\d+/#token=\S+", out)


def test_report_page_renders_the_real_data(demo_run: Path) -> None:
    page = (demo_run / "report.html").read_text()
    report = json.loads((demo_run / "report.json").read_text())
    # Then it is a self-contained page (nothing fetched from elsewhere) with the run's regions
    assert page.lower().startswith("<!doctype html>")
    assert "<script" not in page and "<link" not in page and "src=" not in page
    for row in report["regions"][:5]:
        assert row["name"] in page


def test_metrics_of_every_service_pass_promtool(demo_run: Path) -> None:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    for name in SERVICE_METRICS:
        exposition = (demo_run / name).read_bytes()
        check = subprocess.run(
            [tool, "check", "metrics"], input=exposition, capture_output=True, check=False
        )
        assert check.returncode == 0 and not check.stdout and not check.stderr, (
            name,
            check.stdout,
            check.stderr,
        )
        assert exposed_names(exposition.decode()) <= set(CATALOGUE)


def test_dashboard_and_rules_use_only_exposed_metrics(demo_run: Path) -> None:
    # Given the /metrics of every service of a real run
    exposed: set[str] = set()
    for name in SERVICE_METRICS:
        exposed |= exposed_names((demo_run / name).read_text())
    # When the dashboard and the alert rules are read
    referenced = referenced_names(
        (DEPLOY / "grafana" / "phonebank.json").read_text()
        + (DEPLOY / "prometheus" / "rules.yml").read_text()
    )
    # Then each metric they use is served by some service
    assert referenced
    assert referenced <= exposed
