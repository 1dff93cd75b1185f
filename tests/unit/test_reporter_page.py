"""The reporter's HTML page and /metrics output, rendered from a crafted stream."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from phonebank.domain.records import Outcome
from phonebank.infra import metrics
from phonebank.reporter.aggregate import Aggregator
from phonebank.reporter.exporter import make_registry, render_metrics
from phonebank.reporter.page import render_page
from phonebank.reporter.report import ReportInputs, build_report
from phonebank.reporter.status import ReporterStatus
from tests.helpers import exposed_names
from tests.unit.test_reporter_aggregate import INGESTED, NOW_MS, crafted_stream, event

HOSTILE = "<script>alert(1)</script>"


def crafted_status() -> ReporterStatus:
    aggregator = Aggregator()
    aggregator.apply_all(crafted_stream())
    status = ReporterStatus(
        "default",
        aggregator,
        ingested=dict(INGESTED),
        volunteers_active_15m=3,
        volunteers_active_24h=7,
    )
    return status


def test_page_shows_regions_by_coverage_chart_totals_and_update_time() -> None:
    # Given the crafted report
    report = crafted_status().report(NOW_MS)
    # When the page is rendered
    page = render_page(report)
    # Then regions appear in coverage order with bars, with a chart, totals and times
    positions = [page.index(f"· {code}</span>") for code in ("RU-SPE", "RU-MOW", "RU-KGD")]
    assert positions == sorted(positions)
    assert "class='bar'><span style='width:50.0%'" in page
    assert page.count("<svg") == 1
    assert page.count("<rect") == len(report["calls_by_hour"])
    assert "31.6%" in page  # 6 of 19 numbers called
    assert report["last_event_at"] in page
    assert "Outcome mix" in page


def test_page_escapes_data_and_fetches_nothing() -> None:
    # Given a region code and a guideline crafted to inject markup
    aggregator = Aggregator()
    aggregator.apply(
        event(
            HOSTILE,
            9_160_000_001,
            Outcome.CONVERSATION,
            guideline="x'\"><img src=x onerror=alert(1)>@1",
        )
    )
    report = build_report(aggregator, ReportInputs("default", NOW_MS, {HOSTILE: 1}))
    # When the page is rendered
    page = render_page(report)
    # Then no markup from the data survives, and nothing is loaded from elsewhere
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    assert re.findall(r"<[^>]*\b(?:src|href)=", page) == []
    assert re.findall(r"https?://", page) == ["http://"]  # the SVG namespace only


def test_metrics_follow_the_catalogue_and_match_the_report() -> None:
    # Given the crafted status
    status = crafted_status()
    # When /metrics is rendered and parsed
    text = render_metrics(make_registry(status)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # Then every family is catalogued, with allowed labels only
    assert exposed_names(text) <= set(metrics.CATALOGUE)
    for family in families.values():
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= metrics.ALLOWED_LABELS
    # And the values are the report's
    attempted = {s.labels["region"]: s.value for s in families[metrics.COVERAGE_ATTEMPTED].samples}
    assert attempted == {"RU-MOW": 4, "RU-SPE": 2, "RU-KGD": 0}
    outcomes = {
        (s.labels["region"], s.labels["outcome"]): s.value
        for s in families["phonebank_outcomes"].samples
        if s.name.endswith("_total")
    }
    assert outcomes[("RU-MOW", "expired")] == 3
    assert families[metrics.VOLUNTEERS_ACTIVE_24H].samples[0].value == 7


def test_metrics_never_carry_a_number_or_volunteer() -> None:
    text = render_metrics(make_registry(crafted_status())).decode()
    assert "916000000" not in text
    assert "vh1" not in text
