"""The day rule and the four defects of issue 9, each on the issue's minimal ledger.

Grants, adjustments, revocations and expiries take effect at the start of their
effective day (an expiry at the start of the day after ``valid_to``); the changes of
one day take effect together, before that day's shipments; recorded order breaks ties
only between shipments. An adjustment never revives an allocation that has ended.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.errors import InvalidTransition, RevivesAllocation
from ledger.events import AllocationAdjusted, allocation_aggregate_id
from tests.builders import CAP, Scenario

B200 = 36_000


def _g2g(s: Scenario, amount: int, start: str, end: str | None = None,
         alloc_id: str = "G2G-MX") -> None:
    s.do(type="allocation.granted", allocation_id=alloc_id, country="MX",
         tpp_amount=amount, valid_from=start, valid_to=end)


def _adjust(s: Scenario, alloc_id: str, amount: int, day: str) -> None:
    s.do(type="allocation.adjusted", allocation_id=alloc_id, tpp_amount=amount,
         effective_date=day, reason="amended")


# --- defect 1: an ended country-level allocation comes back ---------------------------


def test_an_adjustment_after_the_end_does_not_revive_a_country_allocation() -> None:
    s = Scenario()
    _g2g(s, 100_000_000, "2025-01-01", "2025-06-30")
    # written before deciding refused it: the fold must still ignore it
    s.append_undecided(AllocationAdjusted, allocation_aggregate_id("G2G-MX"),
                       allocation_id="G2G-MX", tpp_amount=20_000_000,
                       effective_date=dt.date(2025, 8, 1), reason="amended")
    p = s.position("MX", "2026-01-01")
    assert p.cap_tpp == 790_000_000
    assert s.position("MX", "2025-06-30").cap_tpp == 890_000_000
    assert s.position("MX", "2025-07-01").cap_tpp == 790_000_000


def test_a_backdated_revocation_ends_an_allocation_adjusted_after_it() -> None:
    s = Scenario()
    _g2g(s, 100_000_000, "2025-01-01")
    _adjust(s, "G2G-MX", 20_000_000, "2025-08-01")
    s.do(type="allocation.revoked", allocation_id="G2G-MX", effective_date="2025-03-01",
         reason="withdrawn")  # recorded later, backdated before the adjustment
    assert s.position("MX", "2026-01-01").cap_tpp == 790_000_000
    assert s.position("MX", "2025-02-28").cap_tpp == 890_000_000
    assert s.position("MX", "2025-03-01").cap_tpp == 790_000_000


def test_deciding_refuses_an_adjustment_after_the_end() -> None:
    s = Scenario()
    _g2g(s, 100_000_000, "2025-01-01", "2025-06-30")
    with pytest.raises(RevivesAllocation) as e:
        _adjust(s, "G2G-MX", 20_000_000, "2025-08-01")
    assert e.value.field == "effective_date" and e.value.value == "2025-08-01"
    assert "never revives" in str(e.value) and "2025-06-30" in str(e.value)
    with pytest.raises(RevivesAllocation):
        _adjust(s, "G2G-MX", 20_000_000, "2025-07-01")  # the day it expired
    _adjust(s, "G2G-MX", 20_000_000, "2025-06-30")       # its last day: fine


def test_deciding_refuses_an_adjustment_on_or_after_the_revocation() -> None:
    s = Scenario()
    _g2g(s, 100_000_000, "2025-01-01")
    s.do(type="allocation.revoked", allocation_id="G2G-MX", effective_date="2025-03-01",
         reason="withdrawn")
    with pytest.raises(RevivesAllocation) as e:
        _adjust(s, "G2G-MX", 20_000_000, "2025-03-01")
    assert e.value.field == "effective_date" and "revoked (2025-03-01)" in str(e.value)
    with pytest.raises(InvalidTransition, match="is revoked"):
        _adjust(s, "G2G-MX", 20_000_000, "2025-02-01")


# --- defect 2: license shipments dated outside the cap period ---------------------------


def test_a_license_shipment_outside_the_cap_period_counts_for_nothing() -> None:
    s = Scenario()
    s.license("LIC-MX", "MX", 100_000_000, "2024-03-01", "2024-09-30")
    s.ship("S1", "2024-05-01", "MX", 5_000, auth="license:LIC-MX", product="nvidia-b200")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0 and p.flagged == {}
    bare = Scenario()
    bare.ship("S1", "2024-05-01", "MX", 5_000, product="nvidia-b200")
    q = bare.position("MX", "2025-06-30")
    assert (q.committed_tpp, q.flagged) == (p.committed_tpp, p.flagged)


def test_a_license_across_the_period_start_commits_what_it_can_still_ship() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2024-06-01", "2025-06-30")
    s.ship("A", "2024-08-01", "MX", 1_000, auth="license:L1", product="nvidia-b200")
    s.ship("B", "2025-02-01", "MX", 500, auth="license:L1", product="nvidia-b200")
    in_force = s.position("MX", "2025-03-01")
    # 36M shipped before the period, 18M inside it: 46M can still ship
    assert in_force.committed_tpp == 18_000_000 + 46_000_000
    assert s.position("MX", "2025-07-01").committed_tpp == 18_000_000


# --- defect 3: adjustments dated before the start ---------------------------------------


def test_adjustments_before_the_start_apply_in_effective_date_order() -> None:
    s = Scenario()
    s.license("L1", "MX", 50_000_000, "2025-05-08")
    _adjust(s, "L1", 120_000_000, "2025-05-06")
    _adjust(s, "L1", 80_000_000, "2025-03-09")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 120_000_000
    assert s.state.allocations["L1"].amount_on(dt.date(2025, 6, 30)) == 120_000_000


def test_adjustments_before_the_start_of_a_country_allocation() -> None:
    s = Scenario()
    _g2g(s, 50_000_000, "2025-05-08")
    _adjust(s, "G2G-MX", 120_000_000, "2025-05-06")
    _adjust(s, "G2G-MX", 80_000_000, "2025-03-09")
    assert s.position("MX", "2025-06-30").cap_tpp == CAP + 120_000_000
    assert s.position("MX", "2025-05-07").cap_tpp == CAP


# --- defect 4: a first breach that never happened ----------------------------------------


@pytest.mark.parametrize("late_license", [False, True])
def test_an_expiry_takes_effect_before_the_shipments_of_the_next_day(late_license: bool
                                                                     ) -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 8_000, product="nvidia-b200")
    if late_license:  # recorded after both shipments
        s.ship("S2", "2025-07-01", "MX", 2_000, product="nvidia-b200")
    s.license("LIC-MX", "MX", 450_000_000, "2025-01-01", "2025-06-30")
    if not late_license:
        s.ship("S2", "2025-07-01", "MX", 2_000, product="nvidia-b200")
    p = s.position("MX", "2025-07-01")
    assert p.first_breach is None
    assert p.committed_tpp == 360_000_000 and p.status == "within-cap"


# --- the ambiguity, decided: an effective date covers the whole day ----------------------


def test_a_same_day_adjustment_recorded_after_a_shipment_covers_it() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-01")
    s.ship("S1", "2025-06-01", "MX", 3_000, auth="license:L1", product="nvidia-b200")
    _adjust(s, "L1", 200_000_000, "2025-06-01")  # recorded after S1, same day
    p = s.position("MX", "2025-06-30")
    assert p.flagged == {} and p.committed_tpp == 200_000_000


def test_a_same_day_revocation_recorded_after_a_shipment_covers_the_whole_day() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-01")
    s.ship("S1", "2025-06-01", "MX", 3_000, auth="license:L1", product="nvidia-b200")
    s.do(type="allocation.revoked", allocation_id="L1", effective_date="2025-06-01",
         reason="withdrawn")
    p = s.position("MX", "2025-06-30")
    assert p.flagged["license-invalid"].tpp == 108_000_000
    assert p.committed_tpp == 108_000_000


def test_a_days_changes_take_effect_together_for_the_breach() -> None:
    """One country allocation expires and another starts on the same day: no breach in
    between, whatever the recorded order."""
    s = Scenario()
    _g2g(s, 300_000_000, "2025-01-01", "2025-03-31", alloc_id="G-A")
    s.ship("S1", "2025-02-01", "MX", 1_000, product="x", tpp_per_unit=1_000_000)
    _g2g(s, 300_000_000, "2025-04-01", alloc_id="G-B")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 1_000_000_000 and p.cap_tpp == 1_090_000_000
    assert p.first_breach is None


def test_a_start_of_day_breach_names_the_change_that_worsened_it() -> None:
    s = Scenario()
    _g2g(s, 100_000_000, "2025-01-01", "2025-03-31", alloc_id="G-A")
    s.ship("S1", "2025-02-01", "MX", 850, product="x", tpp_per_unit=1_000_000)
    _g2g(s, 10_000_000, "2025-04-01", alloc_id="G-B")  # recorded later, same day
    p = s.position("MX", "2025-06-30")
    assert p.first_breach is not None
    assert (p.first_breach.type, p.first_breach.allocation_id) == ("allocation-ended", "G-A")
    assert (p.first_breach.committed_tpp, p.first_breach.cap_tpp) == (850_000_000,
                                                                      800_000_000)
