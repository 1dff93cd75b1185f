"""The audit's verdict: its JSON keys are stable and documented, numbers never in full."""

from __future__ import annotations

import json

import pytest

from phonebank.ops.audit_report import (
    STATES,
    VIOLATION_KINDS,
    AuditReport,
    Violation,
)
from tests.conftest import REPO

#: the documented top-level keys of the JSON document (docs/audit.md)
TOP_KEYS = {
    "version", "campaign", "ok", "as_of_ms", "seconds", "numbers", "states",
    "events", "leases", "dead_letters", "reporter", "violations",
}  # fmt: skip


def test_the_json_has_the_documented_keys_and_masks_numbers() -> None:
    """Given a report with one violation on a number When it is turned into JSON and
    text Then the keys are the documented ones, every kind is counted and the number
    shows only its prefix and last two digits."""
    report = AuditReport(campaign="default", states={"RU-MOW": dict.fromkeys(STATES, 1)})
    report.add(Violation("lost", "RU-MOW", 9161234567, "queued once, now in no state"))
    document = report.to_json()
    assert set(document) == TOP_KEYS
    assert document["ok"] is False
    assert set(document["violations"]["by_kind"]) == set(VIOLATION_KINDS)
    assert document["violations"]["items"][0]["number"] == "+7916*****67"
    assert document["states"]["total"]["ready"] == 1
    for text in (json.dumps(document), report.to_text(), report.to_text(None)):
        assert "9161234567" not in text
    many = AuditReport(campaign="default")
    for offset in range(25):
        many.add(Violation("lost", "RU-MOW", 9161234500 + offset, "queued once"))
    assert "and 5 more" in many.to_text()
    assert many.to_text(None).count("+7916*****") == 25


def test_an_unknown_violation_kind_is_refused() -> None:
    """Given a report When a violation of an undocumented kind is added Then it is refused
    (the JSON's kinds stay the documented ones)."""
    with pytest.raises(ValueError, match="unknown violation kind"):
        AuditReport(campaign="default").add(Violation("oops", "RU-MOW", None, ""))


def test_docs_describe_every_violation_kind_and_key() -> None:
    """Given docs/audit.md Then every violation kind and top-level key is in it."""
    text = (REPO / "docs" / "audit.md").read_text()
    for name in [*VIOLATION_KINDS, *TOP_KEYS]:
        assert f"`{name}`" in text or f'"{name}"' in text, name
