"""The metrics catalogue: conventions hold, docs are current, dashboard and rules use it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
        "PhonebankReporterNotApplying",
        "PhonebankAssignersAbsent",
        "PhonebankReporterAbsent",
        "PhonebankConsumerLagUnmeasured",
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
    """Given series for every alert: firing, quiet, and through the outage of the process
    its series come from (every assigner down, the reporter down, Redis unreadable)
    When promtool evaluates the rules over them
    Then exactly the expected alerts fire (the companions during the outages)."""
    result = _promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_tests() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES_TEST.read_text())
    return [case for group in document["tests"] for case in group["alert_rule_test"]]


def test_every_alert_is_tested_firing_and_quiet_or_in_an_outage() -> None:
    """Given the alert rules and their promtool tests
    Then each alert has a case where it fires, and one where it must stay quiet."""
    alerts = set(re.findall(r"alert: (\w+)", RULES.read_text()))
    fires = {str(case["alertname"]) for case in _alert_tests() if case["exp_alerts"]}
    quiet = {str(case["alertname"]) for case in _alert_tests() if not case["exp_alerts"]}
    assert sorted(alerts - fires) == []
    assert sorted(alerts - quiet - {"PhonebankServiceDown", "PhonebankLeaseExpiryRatioHigh"}) == []


def test_every_alert_names_its_outage_companion() -> None:
    """Given an alert whose series come from a process that may be down
    Then it is an absent()/up companion itself, or its comment names one that exists."""
    text = RULES.read_text()
    alerts = set(re.findall(r"alert: (\w+)", text))
    blocks = text.split("- alert: ")[1:]
    for block in blocks:
        name, body = block.split("\n", 1)
        if "absent(" in body or "up{" in body:
            continue
        named = set(re.findall(r"Companions?: ([\w, ]+)", body))
        companions = {c.strip() for group in named for c in group.split(",")}
        assert companions, f"{name} names no outage companion"
        assert companions <= alerts, name
