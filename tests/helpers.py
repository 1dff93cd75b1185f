"""Test-only helpers over production modules: what only the tests need, kept out of
``services/`` (generated numbers one by one, metric names of an exposition or a dashboard,
label checks, each master of a Redis Cluster, waiting for the reporter to count, a
retry policy with one rule changed)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from phonebank.domain.numbering import NumberingPlan
from phonebank.domain.records import Outcome
from phonebank.domain.retry_policy import OutcomeRule, RetryPolicy
from phonebank.infra.metrics import ALLOWED_LABELS, CATALOGUE, is_code
from phonebank.ingest.generate import iter_generated_batches
from phonebank.reporter.status import ReporterStatus

#: a phonebank metric name anywhere in a text (a dashboard query, a rule)
METRIC_NAME = re.compile(r"\bphonebank_[a-z0-9_]+")
#: the series a histogram adds to its name
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def iter_generated(
    plan: NumberingPlan,
    count: int,
    regions: Sequence[str] | None = None,
    seed: int = 0,
    stratify: str = "capacity",
) -> Iterator[tuple[str, int]]:
    """``(region, national number)`` pairs of ``iter_generated_batches``, one by one."""
    for region, numbers in iter_generated_batches(plan, count, regions, seed, stratify):
        for national in numbers.tolist():
            yield region, national


def referenced_names(text: str) -> set[str]:
    """Metric names a dashboard or rules file uses, histogram series folded to the metric."""
    histograms = {name for name, spec in CATALOGUE.items() if spec.kind == "histogram"}
    names = set()
    for name in METRIC_NAME.findall(text):
        base = next(
            (h for h in histograms for suffix in HISTOGRAM_SUFFIXES if name == h + suffix), name
        )
        names.add(base)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Metric names in a /metrics text (``# TYPE`` lines), as catalogued (``_total`` kept)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE phonebank_"):
            _, _, name, kind = line.split(" ", 3)
            names.add(
                name + "_total" if kind == "counter" and not name.endswith("_total") else name
            )
    return names


def check_labels(labels: dict[str, str]) -> None:
    """Refuse a label name outside ``ALLOWED_LABELS`` or a value that is not a code (a
    10-digit value, a phone number, or a long hash, a volunteer, fails here)."""
    for name, value in labels.items():
        if name not in ALLOWED_LABELS:
            raise ValueError(f"label {name!r} is not one of {sorted(ALLOWED_LABELS)}")
        if not is_code(value):
            raise ValueError(f"label {name} has a value that is not a short code")


def wait_applied(status: ReporterStatus, events: int, timeout: float) -> bool:
    """Block until the reporter counted at least ``events`` events; False on timeout."""
    with status.changed:
        return status.changed.wait_for(lambda: status.aggregator.applied >= events, timeout)


def with_rule(policy: RetryPolicy, outcome: Outcome, rule: OutcomeRule) -> RetryPolicy:
    """A copy of ``policy`` with one rule changed (validated like any policy)."""
    return RetryPolicy({**policy.rules, outcome: rule})
