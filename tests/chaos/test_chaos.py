"""Chaos: the invariants of DESIGN.md hold through one fault at a time, as the audit
proves from Kafka and Redis afterwards.

Every scenario: Given a fresh namespace with the same numbers ingested, three
assigners, the reporter, the gateway and volunteers calling through it (some walking
away from their leases), When the fault strikes (before the volunteers start, or once
they have completed some calls) and the campaign goes on and then settles, Then
``phonebank audit`` finds no number lost, no double lease, no grant after do-not-call
or outside the window, no outcome event lost and a reporter equal to the events.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from phonebank.local.stack_settings import StackSettings
from phonebank.settings import Settings
from tests.chaos.campaign import SCENARIO_NUMBERS, Campaign, scenario_settings, wait_for
from tests.chaos.faults import FAULTS, Fault
from tests.chaos.settle import in_flight, settled
from tests.chaos.table import ROWS, Row

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

#: completed calls before the fault strikes, and after it, before the volunteers stop
CALLS_BEFORE_FAULT = 200
CALLS_AFTER_FAULT = 300
#: seconds the calls of one phase may take at most
CALLING_TIMEOUT_SECONDS = 180.0
#: seconds the campaign may take to settle (leases expire in 10 s, the relay and the
#: reporter catch up)
SETTLE_TIMEOUT_SECONDS = 180.0


def calls_reach(campaign: Campaign, count: int) -> None:
    """Wait until the volunteers have completed ``count`` calls in all."""
    wait_for(
        f"{count} completed calls",
        lambda: campaign.tally.completed >= count,
        CALLING_TIMEOUT_SECONDS,
    )


#: the audit's violation kinds (docs/audit.md) counted in each column of the table;
#: a kind in no column is counted under "other violations"
COLUMN_KINDS = {
    "numbers_lost": ("lost", "two_states", "wrong_region", "unknown_number"),
    "double_leases": ("double_lease", "overlapping_leases", "leased_after_finish"),
    "grants_after_dnc": ("leased_after_dnc",),
    "grants_outside_window": ("outside_window",),
    "outcome_events_lost": ("missing_event", "dead_letter"),
    "reporter_mismatch": ("reporter_mismatch",),
}


def row_of(scenario: str, audit: dict[str, Any], campaign: Campaign, seconds: float) -> Row:
    """The table row of one audit report (see docs/audit.md for its JSON)."""
    refused = campaign.tally.refused_completes
    documented = 0
    if campaign.refused_before_loss is not None:
        documented = campaign.unrelayed_at_loss + refused - campaign.refused_before_loss
        refused = campaign.refused_before_loss
    by_kind: dict[str, int] = dict(audit["violations"]["by_kind"])
    columns = {
        column: sum(by_kind.pop(kind, 0) for kind in kinds)
        for column, kinds in COLUMN_KINDS.items()
    }
    return Row(
        scenario,
        numbers=audit["numbers"]["accepted"],
        events=audit["events"]["kafka"],
        **columns,
        other_violations=sum(by_kind.values()),
        answers_refused=refused,
        lost_for_good_documented=documented,
        seconds=seconds,
    )


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_invariants_hold_through(
    fault: Fault, chaos_base: Settings, chaos_stack: StackSettings, numbers_file: Path
) -> None:
    started = time.monotonic()
    settings = scenario_settings(chaos_base, f"chaos{uuid.uuid4().hex[:8]}")
    folder = chaos_stack.stack_dir / "runs" / settings.key_prefix
    folder.mkdir(parents=True)
    with Campaign(settings, folder, numbers_file) as campaign:
        campaign.ingest()
        campaign.start()
        if fault.during_first_fill:
            fault.apply(campaign, chaos_stack)
        campaign.start_volunteers()
        calls_reach(campaign, CALLS_BEFORE_FAULT)
        if not fault.during_first_fill:
            fault.apply(campaign, chaos_stack)
        if not campaign.vanish.is_set():
            calls_reach(campaign, campaign.tally.completed + CALLS_AFTER_FAULT)
        campaign.stop_volunteers()
        wait_for(
            f"the campaign to settle (in flight: {in_flight(settings)})",
            lambda: settled(settings),
            SETTLE_TIMEOUT_SECONDS,
        )
        audit = campaign.audit()
    row = row_of(fault.name, audit, campaign, time.monotonic() - started)
    ROWS.append(row)
    # the audit saw the campaign: every number of the file, an event per completed call
    assert row.numbers == SCENARIO_NUMBERS, audit["numbers"]
    assert row.events + row.lost_for_good_documented >= campaign.tally.completed, audit["events"]
    assert row.numbers_lost == 0, audit
    assert row.double_leases == 0, audit
    assert row.grants_after_dnc == 0, audit
    assert row.grants_outside_window == 0, audit
    assert row.outcome_events_lost == 0, audit
    assert row.reporter_mismatch == 0, audit
    assert row.other_violations == 0, audit
    assert row.answers_refused == 0, campaign.tally
