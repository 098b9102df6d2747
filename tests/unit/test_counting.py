"""The counting rules of BRIEF.md, one test per rule: given these events, then this
position (ai-diffusion-2025 unless said otherwise; no I/O)."""

from __future__ import annotations

from tests.builders import CAP, H100, LPP, Scenario


def test_tier1_destination_counts_against_nothing() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "FR", 100_000)
    p = s.position("FR", "2025-06-30")
    assert (p.tier, p.cap_tpp, p.committed_tpp, p.remaining_tpp) == (1, None, 0, None)
    assert p.status == "no-cap"
    assert p.flagged == {}


def test_tier2_without_authorization_counts_against_the_cap_and_is_flagged() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 1_000)
    p = s.position("MX", "2025-06-30")
    assert p.tier == 2 and p.cap_tpp == CAP
    assert p.committed_tpp == 1_000 * H100
    assert p.remaining_tpp == CAP - 1_000 * H100
    assert p.status == "within-cap"
    assert p.flagged["unlicensed"].count == 1
    assert p.flagged["unlicensed"].tpp == 1_000 * H100


def test_tier3_without_license_is_prohibited_against_a_zero_cap() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "CN", 10)
    p = s.position("CN", "2025-06-30")
    assert (p.tier, p.cap_tpp, p.committed_tpp) == (3, 0, 10 * H100)
    assert p.status == "over-cap"
    assert p.flagged["prohibited"].tpp == 10 * H100
    assert p.first_breach is not None and p.first_breach.shipment_ref == "S1"


def test_tier3_with_a_license_is_not_prohibited_but_counts_against_zero_cap() -> None:
    s = Scenario()
    s.license("L-CN", "CN", 1_000_000, "2025-02-01", "2025-12-31")
    s.ship("S1", "2025-03-01", "CN", 10, auth="license:L-CN")
    p = s.position("CN", "2025-06-30")
    assert "prohibited" not in p.flagged
    assert p.committed_tpp == 1_000_000  # the license at its amount (larger than shipped)
    assert p.first_breach is not None and p.first_breach.type == "allocation"
    assert p.first_breach.allocation_id == "L-CN"


def test_lpp_within_the_limit_does_not_count_against_the_cap() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="lpp")  # 15,832,000 TPP < 26,900,000
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0
    assert p.flagged == {}
    assert p.breakdown["lpp_tpp"] == 1_000 * H100


def test_lpp_over_the_limit_counts_the_excess_against_the_cap() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="lpp")   # 15,832,000
    s.ship("S2", "2025-04-01", "MX", 1_000, auth="lpp")   # total 31,664,000
    p = s.position("MX", "2025-06-30")
    excess = 2_000 * H100 - LPP
    assert excess == 4_764_000
    assert p.committed_tpp == excess
    assert p.flagged["lpp-excess"].count == 1 and p.flagged["lpp-excess"].tpp == excess


def test_lpp_limit_is_per_calendar_year_and_per_consignee() -> None:
    s = Scenario()
    s.ship("S1", "2025-12-20", "MX", 1_000, auth="lpp")
    s.ship("S2", "2026-01-05", "MX", 1_000, auth="lpp")   # another year
    s.ship("S3", "2025-12-21", "MX", 1_000, auth="lpp", consignee="c2")  # another consignee
    p = s.position("MX", "2026-06-30")
    assert p.committed_tpp == 0 and p.flagged == {}


def test_lpp_excess_follows_ship_date_not_recorded_order() -> None:
    s = Scenario()
    s.ship("LATE", "2025-05-01", "MX", 1_000, auth="lpp")
    s.ship("EARLY", "2025-02-01", "MX", 1_000, auth="lpp")  # recorded later, shipped earlier
    p = s.position("MX", "2025-06-30", explain=True)
    assert p.contributions is not None
    flagged = {c.identity: c.flag for c in p.contributions}
    assert flagged == {"acme/EARLY": None, "acme/LATE": "lpp-excess"}


def test_license_counts_at_its_amount_while_valid() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-15", "2025-12-31")
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="license:L1")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 100_000_000
    assert p.breakdown["shipped_under_licenses_tpp"] == 1_000 * H100
    assert p.flagged == {}


def test_license_over_its_amount_flags_and_counts_the_excess() -> None:
    s = Scenario()
    s.license("L1", "MX", 10_000_000, "2025-01-15", "2025-12-31")
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="license:L1")  # 15,832,000 > 10,000,000
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 1_000 * H100
    assert p.flagged["license-excess"].tpp == 1_000 * H100 - 10_000_000


def test_expired_license_counts_only_what_shipped() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-15", "2025-04-30")
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="license:L1")
    assert s.position("MX", "2025-04-30").committed_tpp == 100_000_000
    assert s.position("MX", "2025-05-01").committed_tpp == 1_000 * H100


def test_shipment_after_license_expiry_counts_against_the_cap_as_invalid() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-15", "2025-04-30")
    s.ship("S1", "2025-05-10", "MX", 10, auth="license:L1")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 10 * H100
    assert p.flagged["license-invalid"].count == 1


def test_license_of_another_exporter_or_country_is_invalid() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-15", holder="other")
    s.license("L2", "BR", 100_000_000, "2025-01-15")
    s.ship("S1", "2025-03-01", "MX", 10, auth="license:L1")
    s.ship("S2", "2025-03-01", "MX", 10, auth="license:L2")
    s.ship("S3", "2025-03-01", "MX", 10, auth="license:NOPE")
    p = s.position("MX", "2025-06-30")
    assert p.flagged["license-invalid"].count == 3
    assert p.committed_tpp == 100_000_000 + 30 * H100


def test_revoked_license_counts_what_shipped_from_the_revocation() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-15", "2025-12-31")
    s.ship("S1", "2025-03-01", "MX", 100, auth="license:L1")
    s.do(type="allocation.revoked", allocation_id="L1", effective_date="2025-04-01",
         reason="license revoked")
    assert s.position("MX", "2025-03-31").committed_tpp == 100_000_000
    assert s.position("MX", "2025-04-01").committed_tpp == 100 * H100


def test_adjusted_license_counts_the_new_amount_from_its_date() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-01-15", "2025-12-31")
    s.do(type="allocation.adjusted", allocation_id="L1", tpp_amount=50_000_000,
         effective_date="2025-05-01", reason="amended license")
    assert s.position("MX", "2025-04-30").committed_tpp == 100_000_000
    assert s.position("MX", "2025-05-01").committed_tpp == 50_000_000


def test_veu_valid_for_destination_counts_against_the_veu_not_the_cap() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01")
    s.ship("S1", "2025-03-01", "MX", 1_000, auth="veu:V1")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0 and p.flagged == {}
    assert p.breakdown["veu_tpp"] == 1_000 * H100


def test_veu_outside_its_countries_or_dates_counts_against_the_cap() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["BR"], valid_from="2025-01-01",
         valid_to="2025-02-28")
    s.do(type="veu.granted", veu_id="V2", entity="Atlas", kind="national",
         headquarters_country="MX", covered_countries=["MX"], valid_from="2025-01-01",
         valid_to="2025-02-28")
    s.ship("S1", "2025-02-01", "MX", 10, auth="veu:V1")  # wrong country
    s.ship("S2", "2025-03-01", "MX", 10, auth="veu:V2")  # after its end
    s.ship("S3", "2025-02-01", "MX", 10, auth="veu:V2")  # valid
    p = s.position("MX", "2025-06-30")
    assert p.flagged["veu-invalid"].count == 2
    assert p.committed_tpp == 20 * H100


def test_veu_amended_to_cover_a_country_from_its_effective_date() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["BR"], valid_from="2025-01-01")
    s.do(type="veu.amended", veu_id="V1", effective_date="2025-03-01",
         covered_countries=["BR", "MX"])
    s.ship("S1", "2025-02-15", "MX", 10, auth="veu:V1")
    s.ship("S2", "2025-03-15", "MX", 10, auth="veu:V1")
    p = s.position("MX", "2025-06-30")
    assert p.flagged["veu-invalid"].count == 1 and p.committed_tpp == 10 * H100


def test_uncontrolled_product_counts_against_nothing() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 100_000, product="edge-npu", tpp_per_unit=1_000)
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0 and p.flagged == {}
    assert p.breakdown["not_counted_tpp"] == 100_000_000


def test_revision_without_caps_says_no_cap() -> None:
    s = Scenario()
    s.ship("S1", "2025-06-01", "MX", 100_000)
    p = s.position("MX", "2025-06-30", rule=None)  # in force: the non-enforcement
    assert p.rule == "diffusion-nonenforcement-2025"
    assert (p.tier, p.cap_tpp, p.remaining_tpp, p.status) == (2, None, None, "no-cap")


def test_rule_in_force_before_the_diffusion_rule_is_the_baseline() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "CN", 10)
    p = s.position("CN", "2025-03-31", rule=None)
    assert p.rule == "baseline-2023" and p.tier is None and p.status == "no-cap"
    assert p.flagged["unlicensed"].count == 1  # a license is required for China


def test_country_level_allocation_raises_the_cap() -> None:
    s = Scenario()
    s.do(type="allocation.granted", allocation_id="G2G-MX", country="MX", tpp_amount=CAP,
         valid_from="2025-03-01")
    assert s.position("MX", "2025-02-28").cap_tpp == CAP
    p = s.position("MX", "2025-03-01")
    assert p.cap_tpp == 2 * CAP and p.committed_tpp == 0


def test_first_breach_is_the_shipment_after_which_committed_exceeds_the_cap() -> None:
    s = Scenario()
    s.ship("A", "2025-02-01", "MX", 30_000)   # 474,960,000
    s.ship("B", "2025-03-01", "MX", 15_000)   # 712,440,000
    s.ship("C", "2025-04-01", "MX", 10_000)   # 870,760,000 > 790,000,000
    s.ship("D", "2025-05-01", "MX", 1)
    p = s.position("MX", "2025-06-30")
    assert p.status == "over-cap" and p.remaining_tpp == CAP - 55_001 * H100
    assert p.first_breach is not None
    assert (p.first_breach.shipment_ref, str(p.first_breach.date)) == ("C", "2025-04-01")
    assert s.position("MX", "2025-03-31").status == "within-cap"


def test_backdated_shipment_creates_a_breach_in_the_past() -> None:
    s = Scenario()
    s.ship("A", "2025-02-01", "MX", 30_000)
    s.ship("C", "2025-04-01", "MX", 15_000)
    assert s.position("MX", "2025-06-30").status == "within-cap"
    s.ship("LATE", "2025-03-01", "MX", 10_000)  # recorded last, dated before C
    p = s.position("MX", "2025-06-30")
    assert p.first_breach is not None and p.first_breach.shipment_ref == "C"
    s.ship("LATER", "2025-01-20", "MX", 10_000)
    p = s.position("MX", "2025-06-30")
    assert p.first_breach is not None and p.first_breach.shipment_ref == "LATE"


def test_ties_on_the_same_date_break_in_recorded_order() -> None:
    s = Scenario()
    s.ship("A", "2025-02-01", "MX", 42_000)  # 664,944,000
    s.ship("B", "2025-03-01", "MX", 9_000)   # 807,432,000 > 790,000,000
    s.ship("C", "2025-03-01", "MX", 9_000)
    p = s.position("MX", "2025-06-30")
    assert p.first_breach is not None and p.first_breach.shipment_ref == "B"


def test_corrected_shipment_counts_with_its_new_values() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)
    s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", quantity=20,
         destination="BR", reason="wrong country")
    assert s.position("MX", "2025-06-30").committed_tpp == 0
    assert s.position("BR", "2025-06-30").committed_tpp == 20 * H100


def test_voided_shipment_no_longer_counts() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0 and p.flagged == {}


def test_shipments_before_the_cap_period_do_not_count_against_the_cap() -> None:
    s = Scenario()
    s.ship("OLD", "2024-12-31", "MX", 100_000)
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0


def test_shipments_after_the_as_of_date_are_left_out() -> None:
    s = Scenario()
    s.ship("S1", "2025-07-01", "MX", 10)
    assert s.position("MX", "2025-06-30").committed_tpp == 0
    assert s.position("MX", "2025-07-01").committed_tpp == 10 * H100


def test_explain_lists_each_contribution_with_its_clause_and_citation() -> None:
    s = Scenario()
    s.license("L1", "MX", 10_000_000, "2025-01-15", "2025-12-31")
    s.ship("S1", "2025-03-01", "MX", 10)
    p = s.position("MX", "2025-06-30", explain=True)
    assert p.contributions is not None
    by_id = {c.identity: c for c in p.contributions}
    assert by_id["L1"].committed_delta == 10_000_000
    assert by_id["acme/S1"].clause == "tier2-unlicensed"
    assert "90 FR" in by_id["acme/S1"].citation
    assert sum(c.committed_delta for c in p.contributions) == p.committed_tpp


def test_license_recorded_after_a_same_day_shipment_still_covers_it() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10, auth="license:L1")  # recorded before the grant
    s.license("L1", "MX", 1_000_000, "2025-03-01", "2025-12-31")
    p = s.position("MX", "2025-06-30")
    assert p.flagged == {}
    assert p.committed_tpp == 1_000_000


def test_tier3_shipment_before_the_tier2_cap_period_is_still_prohibited() -> None:
    s = Scenario()
    s.ship("OLD", "2024-06-01", "CN", 10)
    p = s.position("CN", "2025-06-30")
    assert p.flagged["prohibited"].count == 1 and p.committed_tpp == 10 * H100


def test_lpp_excess_outside_the_cap_period_counts_like_an_unlicensed_shipment() -> None:
    s = Scenario()
    s.ship("L1", "2024-06-01", "MX", 2_000, auth="lpp")  # over the 2024 limit
    s.ship("U1", "2024-06-02", "MX", 2_000)              # unlicensed, same year
    p = s.position("MX", "2025-06-30")
    assert p.committed_tpp == 0 and p.flagged == {}


def test_a_grant_takes_effect_at_the_start_of_its_day_before_that_days_shipments() -> None:
    """Day rule: a grant recorded after a same-day shipment still takes effect first,
    so the breach is the shipment that took committed over the cap."""
    s = Scenario()
    s.ship("X", "2025-03-01", "MX", 49_836)  # 789,003,552: just within the cap
    s.license("L-PL", "MX", 10_000_000, "2025-03-01", "2025-12-31")  # recorded after X
    p = s.position("MX", "2025-06-30")
    assert p.first_breach is not None
    assert (p.first_breach.type, p.first_breach.shipment_ref) == ("shipment", "X")
    assert p.first_breach.committed_tpp == 799_003_552


def test_veu_amendments_layer_in_effective_order_whatever_the_recorded_order() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01")
    s.do(type="veu.amended", veu_id="V1", effective_date="2025-03-01",
         covered_countries=["BR"])
    s.do(type="veu.amended", veu_id="V1", effective_date="2025-02-01",  # recorded later
         valid_to="2025-12-31")
    s.ship("S1", "2025-02-10", "MX", 10, auth="veu:V1")  # still covered on that day
    s.ship("S2", "2025-03-10", "MX", 10, auth="veu:V1")  # no longer covered
    p = s.position("MX", "2025-06-30")
    assert p.flagged["veu-invalid"].count == 1 and p.committed_tpp == 10 * H100
