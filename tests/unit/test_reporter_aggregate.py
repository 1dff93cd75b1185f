"""The reporter's aggregation, from crafted outcome streams with known answers."""

from __future__ import annotations

from itertools import count
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from phonebank.domain.records import REACHED, Outcome, OutcomeEvent
from phonebank.reporter import checkpoint
from phonebank.reporter.aggregate import NOT_CALLS, Aggregator
from phonebank.reporter.report import ReportInputs, build_report

#: an hour boundary (epoch ms) the crafted streams start at
T0_MS = 472_223 * 3_600_000
#: milliseconds between two crafted events
STEP_MS = 60_000

_ids = count()


def event(
    region: str,
    number: int,
    outcome: Outcome,
    *,
    at_ms: int | None = None,
    event_id: str | None = None,
    guideline: str = "calm@1",
    volunteer: str = "vh1",
) -> OutcomeEvent:
    """One outcome event; ids are unique unless given."""
    serial = next(_ids)
    completed = T0_MS + serial * STEP_MS if at_ms is None else at_ms
    return OutcomeEvent(
        event_id=event_id or f"ev-{serial}",
        campaign="default",
        region=region,
        number=number,
        outcome=outcome,
        attempt=1,
        lease_id=f"lease-{serial}",
        volunteer=volunteer,
        guideline=guideline,
        leased_at_ms=completed - STEP_MS,
        completed_at_ms=completed,
    )


A, B, C, D, E, F, G, H = (9_160_000_000 + i for i in range(8))


def crafted_stream() -> list[OutcomeEvent]:
    """Moscow: A called 3x then talked, B refused, C do-not-call, D wrong number, E only
    skipped, F expired 3x (parked); one duplicate. St Petersburg: G busy twice, H callback."""
    first = event("RU-MOW", A, Outcome.NO_ANSWER, at_ms=T0_MS, event_id="dup")
    return [
        first,
        event("RU-MOW", A, Outcome.NO_ANSWER, at_ms=T0_MS + STEP_MS),
        event("RU-MOW", A, Outcome.CONVERSATION, at_ms=T0_MS + 2 * STEP_MS),
        first,  # the relay published it twice
        event("RU-MOW", B, Outcome.REFUSED, at_ms=T0_MS + 3 * STEP_MS, guideline="calm@2"),
        event("RU-MOW", C, Outcome.DO_NOT_CALL, at_ms=T0_MS + 4 * STEP_MS, guideline="calm@2"),
        event("RU-MOW", D, Outcome.WRONG_NUMBER, at_ms=T0_MS + 5 * STEP_MS),
        event("RU-MOW", E, Outcome.SKIPPED, at_ms=T0_MS + 6 * STEP_MS),
        *(event("RU-MOW", F, Outcome.EXPIRED, at_ms=T0_MS + (7 + i) * STEP_MS) for i in range(3)),
        event("RU-SPE", G, Outcome.BUSY, at_ms=T0_MS + 10 * STEP_MS),
        event("RU-SPE", G, Outcome.BUSY, at_ms=T0_MS + 11 * STEP_MS),
        event("RU-SPE", H, Outcome.CALLBACK, at_ms=T0_MS + 12 * STEP_MS),
    ]


INGESTED = {"RU-MOW": 10, "RU-SPE": 4, "RU-KGD": 5}
#: two hours after the first event
NOW_MS = T0_MS + 2 * 3_600_000


def crafted_report() -> dict[str, Any]:
    aggregator = Aggregator(max_expiries=3)
    aggregator.apply_all(crafted_stream())
    return build_report(aggregator, ReportInputs("default", NOW_MS, INGESTED))


def test_region_counts_match_the_crafted_answers() -> None:
    # Given the crafted stream, When it is aggregated
    report = crafted_report()
    rows = {row["code"]: row for row in report["regions"]}
    # Then each region has the known distinct counts
    moscow = rows["RU-MOW"]
    assert (moscow["attempted"], moscow["reached"], moscow["conversations"]) == (4, 2, 1)
    assert (moscow["do_not_call"], moscow["retired"], moscow["parked"]) == (1, 1, 1)
    assert moscow["calls"] == 6
    assert moscow["outcomes"] == {
        "conversation": 1,
        "do_not_call": 1,
        "expired": 3,
        "no_answer": 2,
        "refused": 1,
        "skipped": 1,
        "wrong_number": 1,
    }
    assert (moscow["coverage_ratio"], moscow["reach_ratio"]) == (0.4, 0.5)
    spb = rows["RU-SPE"]
    assert (spb["attempted"], spb["reached"], spb["calls"], spb["coverage_ratio"]) == (2, 1, 3, 0.5)
    # And a region with numbers but no call yet is listed at zero coverage
    assert rows["RU-KGD"]["attempted"] == 0
    assert rows["RU-KGD"]["coverage_ratio"] == 0.0


def test_regions_are_sorted_by_coverage_and_named() -> None:
    report = crafted_report()
    regions = report["regions"]
    assert [row["code"] for row in regions] == ["RU-SPE", "RU-MOW", "RU-KGD"]
    assert regions[1]["name"] != "RU-MOW"


def test_duplicate_event_ids_are_counted_once() -> None:
    aggregator = Aggregator()
    applied = aggregator.apply_all(crafted_stream())
    assert (applied, aggregator.duplicates) == (13, 1)


def test_totals_rates_and_projection() -> None:
    # Given 6 distinct numbers first called within a 2-hour-old campaign, 19 ingested
    totals = crafted_report()["totals"]
    # Then the rate is measured over those 2 hours: 9 calls → 4.5 per hour,
    # 6 first calls → 72 per day, 13 numbers left → 0.2 days
    assert totals["calls"] == 9
    assert totals["calls_per_hour"] == 4.5
    assert totals["first_calls_per_day"] == 72.0
    assert totals["projected_days"] == 0.2
    assert totals["coverage_ratio"] == round(6 / 19, 4)


def test_no_rate_means_no_projection() -> None:
    report = build_report(Aggregator(), ReportInputs("default", NOW_MS, {"RU-MOW": 3}))
    assert report["totals"]["projected_days"] is None
    assert report["regions"][0]["projected_days"] is None


def test_attempts_distribution_and_guideline_rates() -> None:
    report = crafted_report()
    distribution = report["attempts_per_number"]
    # A: 3 calls; G: 2 calls; B, C, D, H: 1 call
    assert (distribution["1"], distribution["2"], distribution["3"]) == (4, 1, 1)
    assert sum(distribution.values()) == 6
    by_version = {g["guideline"]: g for g in report["guidelines"]}
    assert by_version["calm@2"]["calls"] == 2
    assert by_version["calm@2"]["rates"] == {"do_not_call": 0.5, "refused": 0.5}
    assert by_version["calm@1"]["calls"] == 7


def test_calls_by_hour_series_ends_at_now() -> None:
    series = crafted_report()["calls_by_hour"]
    assert series[-1]["hour_start"] == "2023-11-15T01:00:00Z"
    assert sum(point["calls"] for point in series) == 9


def round_trip(aggregator: Aggregator) -> Aggregator:
    """The aggregator as a checkpoint stores it (every segment) and loads it back."""
    aggregator.prune()
    aggregator.numbers.mark_all_dirty()
    saved = checkpoint.Checkpoint("t", aggregator, {0: 1})
    encoded = checkpoint.encode(saved, aggregator.numbers.take_dirty(), generation=1)
    document = checkpoint.read_document(encoded.document)
    loaded = checkpoint.decode(document, encoded.segments, "t")
    assert loaded is not None and loaded.offsets == {0: 1}
    return loaded.aggregator


def test_checkpoint_state_round_trip_resumes_exactly() -> None:
    # Given half a stream aggregated and saved as JSON
    stream = crafted_stream()
    before = Aggregator()
    before.apply_all(stream[:5])
    restored = round_trip(before)
    # When the rest, and a replay of an already-counted event, are applied after restore
    restored.apply_all(stream[5:])
    restored.apply(stream[1])
    # Then the result equals one uninterrupted run
    once = Aggregator()
    once.apply_all(stream)
    inputs = ReportInputs("default", NOW_MS, INGESTED)
    assert build_report(restored, inputs)["regions"] == build_report(once, inputs)["regions"]


OUTCOMES = st.sampled_from(list(Outcome))
EVENTS = st.lists(
    st.tuples(st.sampled_from(["RU-MOW", "RU-SPE"]), st.integers(0, 6), OUTCOMES), max_size=60
)


@settings(max_examples=60, deadline=None)
@given(EVENTS, st.integers(0, 60))
def test_counts_equal_a_naive_recount_across_a_restart(
    triples: list[tuple[str, int, Outcome]], cut: int
) -> None:
    # Given any stream, aggregated with a checkpoint/restore at any point
    stream = [event(r, A + n, o) for r, n, o in triples]
    first = Aggregator(max_expiries=2)
    first.apply_all(stream[:cut])
    second = round_trip(first)
    second.apply_all(stream[cut:])
    # Then each region's distinct counts equal a naive recount with sets
    for region in ("RU-MOW", "RU-SPE"):
        mine = [e for e in stream if e.region == region]
        calls = [e for e in mine if e.outcome not in NOT_CALLS]
        expiries = [e.number for e in mine if e.outcome is Outcome.EXPIRED]
        tally = second.regions.get(region)
        got = (
            (tally.attempted, tally.reached, tally.do_not_call, tally.parked)
            if tally
            else (0, 0, 0, 0)
        )
        assert got == (
            len({e.number for e in calls}),
            len({e.number for e in calls if e.outcome in REACHED}),
            len({e.number for e in calls if e.outcome is Outcome.DO_NOT_CALL}),
            len({n for n in expiries if expiries.count(n) >= 2}),
        )
