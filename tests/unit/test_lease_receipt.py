"""Lease receipts: signed by the server, refused when altered, forged or malformed."""

from __future__ import annotations

import pytest

from phonebank.domain.lease_receipt import ReceiptFacts, issue, verify

SECRET = "unit-test-secret-0123456789abcdef0123456789"
FACTS = ReceiptFacts(
    lease_id="RU-MOW." + "a" * 32,
    national_number=9161234567,
    attempt=2,
    leased_at_ms=1773133200000,
    guideline="calm-conversation@1",
    campaign="default",
    volunteer="b" * 32,
    reservation="c" * 32,
)


def test_a_receipt_gives_back_the_facts_it_was_made_of() -> None:
    assert verify(SECRET, issue(SECRET, FACTS)) == FACTS


def test_an_altered_or_forged_receipt_is_refused() -> None:
    receipt = issue(SECRET, FACTS)
    version, payload, signature = receipt.split(".")
    other = issue(SECRET, ReceiptFacts(**{**FACTS.__dict__, "national_number": 9160000000}))
    forged = f"{version}.{other.split('.')[1]}.{signature}"
    flipped = f"{version}.{payload}.{'0' if signature[0] != '0' else '1'}{signature[1:]}"
    for bad in (forged, flipped, receipt + "0", "", "r1..", "x" * 500, "r2." + receipt[3:]):
        assert verify(SECRET, bad) is None, bad
    assert verify("another-secret-0123456789abcdef0123456789", receipt) is None


@pytest.mark.parametrize("payload", ["not base64!", "YQ", "fA"])
def test_a_malformed_payload_is_refused(payload: str) -> None:
    assert verify(SECRET, f"r1.{payload}.{'0' * 32}") is None
