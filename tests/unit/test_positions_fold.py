"""The quota fold (``projections.positions``), where mutation testing found it unchecked
(tests/MUTATION.md): the breach an allocation's change causes, named by its kind;
``treat`` with the license or VEU a shipment names; ``fold_country`` explaining a
timeline whose early days have no revision in force. Pure: no I/O."""

from __future__ import annotations

import datetime as dt

from ledger.counting import Bucket, Flag, Treatment
from ledger.rulebook import Period, RuleBook
from projections.positions import (
    BreachRef,
    FlagTotal,
    NO_RULE_CITATION,
    ShipmentOutcome,
    country_inputs,
    country_position,
    fold_country,
    no_rule_treatment,
    treat,
)
from tests.builders import H100, Scenario

D = dt.date.fromisoformat


def test_a_license_adjusted_over_the_cap_is_the_breach() -> None:
    s = Scenario()
    s.ship("X", "2025-01-10", "MX", 49_000)  # 775,768,000
    s.license("L1", "MX", 10_000_000, "2025-02-01", "2025-12-31")  # 785,768,000
    s.do(type="allocation.adjusted", allocation_id="L1", tpp_amount=20_000_000,
         effective_date="2025-03-01", reason="more")
    adjusted = len(s.events)
    p = s.position("MX", "2025-06-30")
    assert p.first_breach == BreachRef(
        type="allocation-adjusted", date=D("2025-03-01"), position=adjusted,
        allocation_id="L1", committed_tpp=49_000 * H100 + 20_000_000, cap_tpp=790_000_000)
    assert s.position("MX", "2025-02-28").first_breach is None


def test_a_country_allocation_ending_under_committed_is_the_breach() -> None:
    s = Scenario()
    s.do(type="allocation.granted", allocation_id="G2G", country="MX",
         tpp_amount=100_000_000, valid_from="2025-01-01")
    s.ship("X", "2025-01-10", "MX", 55_000)  # 870,760,000: within 890,000,000
    s.do(type="allocation.revoked", allocation_id="G2G", effective_date="2025-04-01",
         reason="withdrawn")
    revoked = len(s.events)
    p = s.position("MX", "2025-06-30")
    assert p.first_breach == BreachRef(
        type="allocation-ended", date=D("2025-04-01"), position=revoked,
        allocation_id="G2G", committed_tpp=55_000 * H100, cap_tpp=790_000_000)


def test_treat_uses_the_license_or_veu_the_shipment_names() -> None:
    s = Scenario()
    s.license("L1", "MX", 10_000_000, "2025-02-01", "2025-12-31")
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01")
    s.ship("SL", "2025-03-01", "MX", 10, auth="license:L1")
    s.ship("SV", "2025-03-01", "MX", 10, auth="veu:V1")
    rule = _rule(s, "ai-diffusion-2025")
    assert treat(s.state, s.state.shipments[("acme", "SL")], rule) == Treatment(
        Bucket.LICENSE, None, "tier2-license", "under license L1: depletes the allocation")
    assert treat(s.state, s.state.shipments[("acme", "SV")], rule) == Treatment(
        Bucket.VEU, None, "tier2-veu", "under VEU V1: counts against the VEU's limits")


def _rule(s: Scenario, rule_id: str) -> RuleBook:
    from projections.views import select_rule

    book = select_rule(s.state, D("2025-06-30"), rule_id)
    assert book is not None
    return book


def test_explaining_days_with_no_revision_in_force() -> None:
    """A timeline whose revision starts on 2025-03-01: the grant and the shipment
    before it cite no revision; the shipment after it is the Diffusion rule's."""
    s = Scenario()
    s.license("L1", "MX", 10_000_000, "2025-02-01", "2025-12-31")
    s.ship("EARLY", "2025-02-10", "MX", 10)
    s.ship("LATE", "2025-03-10", "MX", 10)
    rule = _rule(s, "ai-diffusion-2025")
    treatments, excess = country_inputs(s.state, "MX", D("2025-06-30"), rule)
    treatments[("acme", "EARLY")] = no_rule_treatment(D("2025-02-10"))

    def rule_at(day: dt.date) -> RuleBook | None:
        return rule if day >= D("2025-03-01") else None

    p = fold_country(s.state, "MX", D("2025-06-30"), rule_at=rule_at, cap_rule=rule,
                     treatments=treatments, lpp_excess_by_key=excess, explain=True)
    assert p.contributions is not None
    got = [(c.identity, c.bucket, c.flag, c.clause, c.citation, c.instrument,
            c.committed_delta) for c in p.contributions]
    assert got == [
        ("L1", "license", None, "tier2-license", NO_RULE_CITATION, None, 10_000_000),
        ("acme/EARLY", "none", None, "no-rule", NO_RULE_CITATION, None, 0),
        ("acme/LATE", "cap", Flag.UNLICENSED.value, "tier2-unlicensed",
         rule.clause("tier2-unlicensed").citation, "ai-diffusion-2025", 10 * H100),
    ]


def test_of_a_days_changes_that_worsen_the_breach_names_the_latest_recorded() -> None:
    """Two licenses granted for the same day, each worsening the position, together
    over the cap: the changes are simultaneous, the breach names the later recorded."""
    s = Scenario()
    s.ship("X", "2025-01-10", "MX", 49_000)  # 775,768,000
    s.license("L1", "MX", 10_000_000, "2025-03-01", "2025-12-31")
    s.license("L2", "MX", 10_000_000, "2025-03-01", "2025-12-31")
    p = s.position("MX", "2025-06-30")
    assert p.first_breach == BreachRef(
        type="allocation", date=D("2025-03-01"), position=len(s.events),
        allocation_id="L2", committed_tpp=795_768_000, cap_tpp=790_000_000)


def test_a_change_that_leaves_committed_as_it_was_is_not_the_breach() -> None:
    """L0 is used up (shipped past its amount): cutting its amount the same day L1 is
    granted changes nothing, so L1's grant, recorded earlier, is the breach."""
    s = Scenario()
    s.license("L0", "MX", 1_000_000, "2025-01-01", "2025-12-31")
    s.ship("U", "2025-01-05", "MX", 100, auth="license:L0")  # 1,583,200: L0 used up
    s.ship("X", "2025-01-10", "MX", 49_000)  # 777,351,200 in all
    s.license("L1", "MX", 20_000_000, "2025-03-01", "2025-12-31")
    granted = len(s.events)
    s.do(type="allocation.adjusted", allocation_id="L0", tpp_amount=500_000,
         effective_date="2025-03-01", reason="cut")
    p = s.position("MX", "2025-06-30")
    assert p.first_breach == BreachRef(
        type="allocation", date=D("2025-03-01"), position=granted, allocation_id="L1",
        committed_tpp=797_351_200, cap_tpp=790_000_000)


def test_one_tpp_over_the_cap_by_a_grant_is_the_breach() -> None:
    """Exactly on the cap is within it; a grant of 1 TPP more is the breach."""
    s = Scenario()
    s.ship("X", "2025-01-10", "MX", 49_000)  # 775,768,000
    s.license("L1", "MX", 14_232_000, "2025-02-01", "2025-12-31")  # 790,000,000
    s.license("L2", "MX", 1, "2025-03-01", "2025-12-31")
    on_cap = s.position("MX", "2025-02-28")
    assert (on_cap.status, on_cap.remaining_tpp, on_cap.first_breach) == (
        "within-cap", 0, None)
    p = s.position("MX", "2025-03-01")
    assert (p.status, p.remaining_tpp) == ("over-cap", -1)
    assert p.first_breach == BreachRef(
        type="allocation", date=D("2025-03-01"), position=len(s.events),
        allocation_id="L2", committed_tpp=790_000_001, cap_tpp=790_000_000)


def test_a_voided_lpp_shipment_is_left_out_of_the_consignees_year() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 1_000, auth="lpp")
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    s.ship("S2", "2025-03-01", "MX", 1_000, auth="lpp")   # 15,832,000
    s.ship("S3", "2025-04-01", "MX", 1_000, auth="lpp")   # 31,664,000 in the year
    p = s.position("MX", "2025-06-30")
    excess = 2_000 * H100 - 26_900_000
    assert (p.committed_tpp, p.flagged) == (excess, {"lpp-excess": FlagTotal(count=1,
                                                                            tpp=excess)})
    assert p.breakdown["lpp_tpp"] == 2_000 * H100


def test_a_consignees_other_shipments_do_not_hide_its_lpp_ones() -> None:
    """The consignee's unlicensed shipment, recorded first, and one to a tier-1
    country (LPP, but counted against nothing) are passed over, not the end of it."""
    s = Scenario()
    s.ship("N", "2025-01-15", "MX", 10)                  # not LPP
    s.ship("T1", "2025-01-20", "FR", 10, auth="lpp")     # LPP, but tier 1: no bucket
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="lpp")  # 15,832,000
    s.ship("S2", "2025-04-01", "MX", 1_000, auth="lpp")  # 31,664,000 in the year
    p = s.position("MX", "2025-06-30")
    excess = 2_000 * H100 - 26_900_000
    assert p.flagged == {"lpp-excess": FlagTotal(count=1, tpp=excess),
                         "unlicensed": FlagTotal(count=1, tpp=10 * H100)}
    assert p.committed_tpp == excess + 10 * H100


PERIOD = Period(start=D("2025-01-01"), end=D("2027-12-31"))


def test_the_cap_period_and_the_status_outside_it() -> None:
    s = Scenario()
    s.ship("X", "2025-03-01", "MX", 10)
    inside = s.position("MX", "2025-06-30")
    assert (inside.status, inside.cap_tpp, inside.remaining_tpp, inside.cap_period) == (
        "within-cap", 790_000_000, 790_000_000 - 10 * H100, PERIOD)
    after = s.position("MX", "2028-01-01")
    assert (after.status, after.cap_tpp, after.remaining_tpp, after.cap_period) == (
        "outside-cap-period", None, None, PERIOD)
    tier3 = s.position("CN", "2025-06-30")
    assert (tier3.status, tier3.cap_tpp, tier3.cap_period) == ("within-cap", 0, None)


def test_one_fold_answers_each_regime_with_its_own_tier_and_period() -> None:
    """A revision capping tier 3 like tier 2: Cambodia's regimes before and after it
    leaves D:5 share one cap, so one fold, but not the tier nor the cap period."""
    from projections.position_index import regimes
    from projections.positions import position_days

    s = Scenario()
    s.ship("X", "2025-03-01", "KH", 10)
    book = _rule(s, "ai-diffusion-2025")
    book = book.model_copy(update={"caps": book.caps.model_copy(
        update={"tier3_tpp": 790_000_000})})
    days = list(position_days(s.state, "KH", book, regimes(book, "KH")))
    got = {(regime, p.tier, p.status, p.cap_period) for regime, day, p in days
           if day == D("2025-03-01")}
    assert got == {(dt.date.min, 3, "within-cap", None),
                   (D("2026-02-03"), 2, "within-cap", PERIOD),
                   (D("2028-01-01"), 2, "outside-cap-period", PERIOD)}


def test_a_fold_without_a_cap_rule_and_a_label_explains_nothing_unasked() -> None:
    """The replay's folds: its lane's label as the rule, no contributions unless asked;
    without a cap rule no cap and no tier."""
    s = Scenario()
    s.ship("X", "2025-03-01", "MX", 10)
    rule = _rule(s, "ai-diffusion-2025")
    treatments, excess = country_inputs(s.state, "MX", D("2025-06-30"), rule)
    labelled = fold_country(s.state, "MX", D("2025-06-30"), rule_at=lambda _d: rule,
                            cap_rule=rule, treatments=treatments, lpp_excess_by_key=excess,
                            rule_label="in-force")
    assert (labelled.rule, labelled.contributions, labelled.committed_tpp) == (
        "in-force", None, 10 * H100)
    uncapped = fold_country(s.state, "MX", D("2025-06-30"), rule_at=lambda _d: rule,
                            cap_rule=None, treatments=treatments, lpp_excess_by_key=excess)
    assert (uncapped.rule, uncapped.tier, uncapped.cap_tpp, uncapped.status,
            uncapped.committed_tpp) == (None, None, None, "no-cap", 10 * H100)


def test_each_shipments_outcome_and_the_totals_of_the_fold() -> None:
    """What the replay compares per shipment (``outcomes``), and the position's counts:
    a shipment before the cap period counts for nothing and flags nothing."""
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)                                  # 158,320
    s.ship("S2", "2025-03-02", "MX", 10, product="custom-asic", tpp_per_unit=1_000)
    s.ship("S3", "2024-06-01", "MX", 5)                                   # before the period
    s.ship("S4", "2025-04-01", "MX", 20)                                  # 316,640
    rule = _rule(s, "ai-diffusion-2025")
    treatments, excess = country_inputs(s.state, "MX", D("2025-06-30"), rule)
    found: list[ShipmentOutcome] = []
    p = fold_country(s.state, "MX", D("2025-06-30"), rule_at=lambda _d: rule,
                     cap_rule=rule, treatments=treatments, lpp_excess_by_key=excess,
                     outcomes=found)
    got = [(o.row.shipment_ref, o.rule, o.treatment.bucket, o.flag, o.flag_tpp,
            o.committed_delta, o.committed_after, o.breach) for o in found]
    assert got == [
        ("S3", rule, Bucket.NONE, None, 0, 0, 0, False),
        ("S1", rule, Bucket.CAP, Flag.UNLICENSED, 158_320, 158_320, 158_320, False),
        ("S2", rule, Bucket.NONE, None, 0, 0, 158_320, False),
        ("S4", rule, Bucket.CAP, Flag.UNLICENSED, 316_640, 316_640, 474_960, False),
    ]
    assert found[0].treatment.detail == (
        "shipped 2024-06-01, outside the cap period 2025-01-01..2027-12-31")
    assert (p.shipments_counted, p.committed_tpp) == (2, 474_960)
    assert p.flagged == {"unlicensed": FlagTotal(count=2, tpp=474_960)}
    assert p.breakdown == {"country_allocations_tpp": 0, "licenses_committed_tpp": 0,
                           "not_counted_tpp": 10_000, "outside_licenses_tpp": 474_960,
                           "rule_cap_tpp": 790_000_000}


def test_the_breakdown_sums_every_shipment_of_each_bucket() -> None:
    s = Scenario()
    s.license("L", "MX", 100_000_000, "2025-01-01", "2025-12-31")
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01")
    for i, day in enumerate(["2025-02-01", "2025-03-01", "2025-04-01"]):
        s.ship(f"P{i}", day, "MX", 1_000, auth="lpp")  # 15,832,000 each
    for i in range(2):
        s.ship(f"N{i}", "2025-02-01", "MX", 10, product="custom-asic", tpp_per_unit=1_000)
        s.ship(f"V{i}", "2025-02-01", "MX", 10 + i, auth="veu:V1")
        s.ship(f"L{i}", "2025-02-01", "MX", 20 + i, auth="license:L")
    p = s.position("MX", "2025-06-30")
    lpp_excess = 3_000 * H100 - 26_900_000  # 4,764,000 of P1 and all of P2
    assert p.breakdown == {
        "country_allocations_tpp": 0, "licenses_committed_tpp": 100_000_000,
        "lpp_excess_tpp": lpp_excess, "lpp_tpp": 3_000 * H100,
        "not_counted_tpp": 20_000, "rule_cap_tpp": 790_000_000,
        "shipped_under_licenses_tpp": 41 * H100, "veu_tpp": 21 * H100}
    assert p.flagged == {"lpp-excess": FlagTotal(count=2, tpp=lpp_excess)}
    assert (p.committed_tpp, p.shipments_counted) == (100_000_000 + lpp_excess, 7)


def test_known_at_before_the_states_position_is_the_position_computed_at() -> None:
    s = Scenario()
    s.ship("X", "2025-03-01", "MX", 10)
    rule = _rule(s, "ai-diffusion-2025")
    head = len(s.events)
    p = country_position(s.state, "MX", D("2025-06-30"), rule, known_at=3)
    assert (p.known_at, p.computed_at_position) == (3, 3)
    assert country_position(s.state, "MX", D("2025-06-30"), rule,
                            known_at=head + 2).computed_at_position == head
