"""The metrics catalogue: conventions hold, docs are current, dashboard and rules use it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from phonebank.infra import metrics
from phonebank.local import docs
from tests.helpers import check_labels, referenced_names

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "phonebank.json"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = REPO / "deploy" / "prometheus" / "rules_test.yml"
SCRAPE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DOC = REPO / "docs" / "metrics.md"
UNIT_SUFFIXES = (
    "_total",
    "_seconds",
    "_records",
    "_numbers",
    "_ratio",
    "_events",
    "_open",
    "_paused",
    "_active",
    "_15m",
    "_24h",
)


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    return exprs


def test_every_constant_is_catalogued_and_follows_the_conventions() -> None:
    constants = {
        value
        for name, value in vars(metrics).items()
        if name.isupper()
        and name != "PREFIX"
        and isinstance(value, str)
        and value.startswith(metrics.PREFIX)
    }
    assert constants == set(metrics.CATALOGUE)
    for spec in metrics.CATALOGUE.values():
        assert spec.name.startswith(metrics.PREFIX)
        assert set(spec.labels) <= metrics.ALLOWED_LABELS, spec.name
        assert (spec.kind == "counter") == spec.name.endswith("_total"), spec.name
        assert spec.name.endswith(UNIT_SUFFIXES), spec.name


def test_dashboard_uses_only_catalogued_metrics() -> None:
    # Given every PromQL expression of the dashboard
    used = referenced_names("\n".join(dashboard_expressions()))
    # Then each metric it names is in the catalogue, and the panels the issue asks for exist
    assert used, "the dashboard queries no phonebank metric"
    assert sorted(used - set(metrics.CATALOGUE)) == []
    for required in (
        metrics.COVERAGE_RATIO,
        metrics.OUTCOMES,
        metrics.QUEUE_READY,
        metrics.LEASE_EXPIRIES,
        metrics.CONSUMER_LAG,
        metrics.LEASE_OPERATION_SECONDS,
        metrics.INGEST_NUMBERS,
    ):
        assert required in used


def test_rules_use_only_catalogued_metrics() -> None:
    used = referenced_names(RULES.read_text())
    assert used
    assert sorted(used - set(metrics.CATALOGUE)) == []
    alerts = set(re.findall(r"alert: (\w+)", RULES.read_text()))
    assert {
        "PhonebankServiceDown",
        "PhonebankConsumerLagGrowing",
        "PhonebankOpenRegionQueueEmpty",
        "PhonebankLeaseExpiryRatioHigh",
        "PhonebankOutcomesRelayStalled",
    } <= alerts


def test_docs_table_is_generated_from_the_catalogue() -> None:
    # Given docs/metrics.md, When its catalogue is generated again, Then nothing changes
    text = DOC.read_text()
    assert docs.rewrite_catalogue(text) == text, "docs/metrics.md catalogue is stale: make docs"
    assert metrics.markdown_catalogue() in text


@pytest.mark.parametrize(
    "labels",
    [
        {"number": "x"},
        {"region": "9161234567"},
        {"result": "+7 916 123-45-67"},
        {"outcome": "a" * 80},
    ],
)
def test_check_labels_refuses_personal_data_and_unknown_labels(labels: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="label"):
        check_labels(labels)


def test_check_labels_accepts_codes() -> None:
    check_labels({"region": "RU-MOW", "outcome": "no_answer", "reason": "too_short"})


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False)


def test_promtool_accepts_the_rules_and_the_scrape_config() -> None:
    rules = _promtool("check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _promtool("check", "config", "--syntax-only", str(SCRAPE_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_alerts_fire_on_crafted_series() -> None:
    # Given series for a down service, an open region with an empty queue, a stalled relay,
    # 30 % lease expiries and a growing lag (and a closed region that must stay quiet)
    # When promtool evaluates the rules over them, Then exactly the expected alerts fire
    result = _promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
