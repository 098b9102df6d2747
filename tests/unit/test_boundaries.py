"""Boundaries the counting rules must get exactly right (pure, no I/O).

Each rule with a threshold or a date range is tested at the value itself and one
step past it, because a ``>`` turned into ``>=`` (or a ``<=`` into ``<``) changes only
those: a shipment landing exactly on the cap, and the first and last valid day of
every dated authorization (license, VEU, LPP calendar year, cap period, rule
enforcement).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ledger.counting import license_check, veu_check
from ledger.rulebook import Enforcement, bundled_rulebook, bundled_rulebooks, in_force
from projections.replay import replay
from projections.veu import veu_status
from tests.builders import CAP, H100, LPP, Scenario

D = dt.date
#: a chip outside the catalog, so its TPP per unit is exactly what the test says
CHIP = "custom-asic"
#: 99,999 x 7,900: 7,900 TPP short of the tier-2 cap of 790,000,000
BULK_UNITS, BULK_TPP = 99_999, 7_900


def _near_cap(last_tpp_per_unit: int) -> Scenario:
    """MX: one shipment 7,900 TPP short of the cap, then one unit of ``last_tpp_per_unit``."""
    s = Scenario()
    s.ship("BULK", "2025-03-01", "MX", BULK_UNITS, product=CHIP, tpp_per_unit=BULK_TPP)
    s.ship("LAST", "2025-03-02", "MX", 1, product=CHIP, tpp_per_unit=last_tpp_per_unit)
    return s


# --- the cap -------------------------------------------------------------------------


def test_a_shipment_landing_exactly_on_the_cap_is_within_it() -> None:
    assert BULK_UNITS * BULK_TPP + BULK_TPP == CAP
    s = _near_cap(BULK_TPP)
    p = s.position("MX", "2025-06-30", explain=True)
    assert (p.cap_tpp, p.committed_tpp, p.remaining_tpp) == (CAP, CAP, 0)
    assert p.status == "within-cap"
    assert p.first_breach is None
    assert p.contributions is not None
    assert [(c.identity, c.committed_delta) for c in p.contributions] == [
        ("acme/BULK", CAP - BULK_TPP), ("acme/LAST", BULK_TPP)]


def test_one_tpp_over_the_cap_is_a_breach_by_that_shipment() -> None:
    s = _near_cap(BULK_TPP + 1)
    p = s.position("MX", "2025-06-30")
    assert (p.committed_tpp, p.remaining_tpp, p.status) == (CAP + 1, -1, "over-cap")
    assert p.first_breach is not None
    assert (p.first_breach.type, p.first_breach.shipment_ref) == ("shipment", "LAST")
    assert (p.first_breach.committed_tpp, p.first_breach.cap_tpp) == (CAP + 1, CAP)
    assert str(p.first_breach.date) == "2025-03-02"


@pytest.mark.parametrize(("last_tpp", "breach"), [(BULK_TPP, False), (BULK_TPP + 1, True)])
def test_the_replay_marks_the_first_breach_only_past_the_cap(last_tpp: int, breach: bool
                                                            ) -> None:
    s = _near_cap(last_tpp)
    result = replay(s.state, "ai-diffusion-2025", "baseline-2023", window_to=D(2025, 6, 30))
    lanes = {c.shipment_ref: c.rule for c in result.changes}
    assert lanes["BULK"].breach is False
    assert lanes["LAST"].breach is breach
    assert lanes["LAST"].treatment.endswith(", first breach") is breach
    (mx,) = [c for c in result.countries if c.country == "MX"]
    assert mx.rule.status == ("over-cap" if breach else "within-cap")


def test_a_country_allocation_ending_puts_committed_exactly_at_the_cap_not_over() -> None:
    s = Scenario()
    s.do(type="allocation.granted", allocation_id="G2G", country="MX", tpp_amount=BULK_TPP,
         valid_from="2025-02-01", valid_to="2025-04-30")
    s.ship("BULK", "2025-03-01", "MX", BULK_UNITS + 1, product=CHIP, tpp_per_unit=BULK_TPP)
    assert s.position("MX", "2025-04-30").remaining_tpp == BULK_TPP  # allocation's last day
    p = s.position("MX", "2025-05-01")
    assert (p.cap_tpp, p.committed_tpp, p.status, p.first_breach) == (
        CAP, CAP, "within-cap", None)


# --- licenses ---------------------------------------------------------------------------


def _license(day: D, *, revoked_on: D | None = None) -> bool:
    return license_check("L1", exists=True, country="MX", holder="acme",
                         valid_from=D(2025, 3, 1), valid_to=D(2025, 6, 30),
                         revoked_on=revoked_on, exporter_id="acme", destination="MX",
                         ship_date=day).valid


def test_a_license_is_valid_from_its_first_to_its_last_day() -> None:
    assert [_license(d) for d in (D(2025, 2, 28), D(2025, 3, 1), D(2025, 6, 30),
                                  D(2025, 7, 1))] == [False, True, True, False]
    # revoked from a day: valid the day before, not on it
    assert _license(D(2025, 4, 30), revoked_on=D(2025, 5, 1)) is True
    assert _license(D(2025, 5, 1), revoked_on=D(2025, 5, 1)) is False


def test_shipments_on_a_licenses_first_and_last_day_deplete_it() -> None:
    s = Scenario()
    s.license("L1", "MX", 100_000_000, "2025-03-01", "2025-06-30")
    for ref, day in [("BEFORE", "2025-02-28"), ("FIRST", "2025-03-01"),
                     ("LAST", "2025-06-30"), ("AFTER", "2025-07-01")]:
        s.ship(ref, day, "MX", 10, auth="license:L1")
    p = s.position("MX", "2025-12-31", explain=True)
    assert p.contributions is not None
    flags = {c.identity: (c.bucket, c.flag) for c in p.contributions if c.kind == "shipment"}
    assert flags == {"acme/BEFORE": ("cap", "license-invalid"),
                     "acme/FIRST": ("license", None), "acme/LAST": ("license", None),
                     "acme/AFTER": ("cap", "license-invalid")}
    assert p.breakdown["shipped_under_licenses_tpp"] == 20 * H100


# --- VEUs -------------------------------------------------------------------------------


def _veu(day: D, *, revoked_on: D | None = None) -> bool:
    return veu_check("V1", exists=True, covered_countries=["MX"], valid_from=D(2025, 3, 1),
                     valid_to=D(2025, 6, 30), revoked_on=revoked_on, destination="MX",
                     ship_date=day).valid


def test_a_veu_is_valid_from_its_first_to_its_last_day() -> None:
    assert [_veu(d) for d in (D(2025, 2, 28), D(2025, 3, 1), D(2025, 6, 30),
                              D(2025, 7, 1))] == [False, True, True, False]
    assert _veu(D(2025, 4, 30), revoked_on=D(2025, 5, 1)) is True
    assert _veu(D(2025, 5, 1), revoked_on=D(2025, 5, 1)) is False


def test_shipments_on_a_veus_first_and_last_day_count_against_the_veu() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-03-01",
         valid_to="2025-06-30")
    for ref, day in [("BEFORE", "2025-02-28"), ("FIRST", "2025-03-01"),
                     ("LAST", "2025-06-30"), ("AFTER", "2025-07-01")]:
        s.ship(ref, day, "MX", 10, auth="veu:V1")
    p = s.position("MX", "2025-12-31")
    assert p.breakdown["veu_tpp"] == 20 * H100
    assert p.flagged["veu-invalid"].count == 2 and p.committed_tpp == 20 * H100


def test_a_veu_revoked_from_a_day_covers_the_day_before_only() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-03-01")
    s.do(type="veu.revoked", veu_id="V1", effective_date="2025-05-01", reason="withdrawn")
    s.ship("EVE", "2025-04-30", "MX", 10, auth="veu:V1")
    s.ship("ON", "2025-05-01", "MX", 10, auth="veu:V1")
    p = s.position("MX", "2025-12-31")
    assert p.breakdown["veu_tpp"] == 10 * H100
    assert p.flagged["veu-invalid"].count == 1 and p.committed_tpp == 10 * H100


def test_veu_status_is_valid_on_its_first_and_last_day_and_until_the_revocation() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-03-01",
         valid_to="2025-06-30")
    s.do(type="veu.granted", veu_id="V2", entity="Borealis", kind="universal",
         headquarters_country="US", covered_countries=["MX"], valid_from="2025-03-01")
    s.do(type="veu.revoked", veu_id="V2", effective_date="2025-05-01", reason="withdrawn")

    def valid(veu_id: str, day: D) -> bool:
        return veu_status(s.state, veu_id, day, None).valid_on_as_of

    assert [valid("V1", d) for d in (D(2025, 2, 28), D(2025, 3, 1), D(2025, 6, 30),
                                     D(2025, 7, 1))] == [False, True, True, False]
    assert [valid("V2", d) for d in (D(2025, 4, 30), D(2025, 5, 1))] == [True, False]


# --- the LPP calendar year ----------------------------------------------------------------


def test_the_lpp_year_runs_from_january_first_to_december_thirty_first() -> None:
    s = Scenario()
    s.ship("Y24", "2024-12-31", "MX", 1_000, auth="lpp")    # the previous year
    s.ship("JAN1", "2025-01-01", "MX", 1_000, auth="lpp")
    s.ship("DEC31", "2025-12-31", "MX", 1_000, auth="lpp")  # the year's total passes the limit
    s.ship("Y26", "2026-01-01", "MX", 1_000, auth="lpp")    # a new year starts from zero
    p = s.position("MX", "2026-06-30", explain=True)
    assert p.contributions is not None
    flags = {c.identity: c.flag for c in p.contributions}
    assert flags == {"acme/Y24": None, "acme/JAN1": None, "acme/DEC31": "lpp-excess",
                     "acme/Y26": None}
    assert p.committed_tpp == 2_000 * H100 - LPP


def test_the_lpp_limit_itself_is_not_an_excess() -> None:
    s = Scenario()
    # 26,900,000 = 2 x 13,450,000: exactly the limit, then one TPP more
    s.ship("HALF1", "2025-03-01", "MX", 2, product=CHIP, tpp_per_unit=LPP // 4, auth="lpp")
    s.ship("HALF2", "2025-03-02", "MX", 2, product=CHIP, tpp_per_unit=LPP // 4, auth="lpp")
    assert s.position("MX", "2025-03-31").flagged == {}
    s.ship("ONE", "2025-03-03", "MX", 1, product=CHIP, tpp_per_unit=4_801, auth="lpp")
    p = s.position("MX", "2025-03-31")
    assert p.flagged["lpp-excess"].tpp == 4_801 and p.committed_tpp == 4_801


# --- the cap period -------------------------------------------------------------------------


def test_the_cap_period_counts_its_first_and_last_day_only() -> None:
    period = bundled_rulebook("ai-diffusion-2025").cap_period()
    assert period is not None and (period.start, period.end) == (D(2025, 1, 1), D(2027, 12, 31))
    s = Scenario()
    s.ctx = dataclasses.replace(s.ctx, now=dt.datetime(2028, 2, 1, tzinfo=dt.UTC))
    for ref, day in [("BEFORE", "2024-12-31"), ("FIRST", "2025-01-01"),
                     ("LAST", "2027-12-31"), ("AFTER", "2028-01-01")]:
        s.ship(ref, day, "MX", 10)
    p = s.position("MX", "2028-01-31", explain=True)
    assert p.contributions is not None
    counted = {c.identity: c.committed_delta for c in p.contributions}
    assert counted == {"acme/BEFORE": 0, "acme/FIRST": 10 * H100, "acme/LAST": 10 * H100,
                       "acme/AFTER": 0}
    assert p.flagged["unlicensed"].count == 2


# --- rule enforcement -----------------------------------------------------------------------


@pytest.mark.parametrize(("rule_id", "before"), [
    ("baseline-2023", None),
    ("h20-license-2025", "baseline-2023"),
    ("diffusion-nonenforcement-2025", "h20-license-2025"),
    ("h200-china-2026", "diffusion-nonenforcement-2025"),
])
def test_each_revision_governs_from_its_first_enforced_day(rule_id: str, before: str | None
                                                          ) -> None:
    books = bundled_rulebooks()
    begins = bundled_rulebook(rule_id).enforcement.begins
    assert begins is not None
    on = in_force(books, begins)
    eve = in_force(books, begins - dt.timedelta(days=1))
    assert on is not None and on.id == rule_id
    assert (eve.id if eve is not None else None) == before


def test_enforcement_covers_begins_and_ends_the_day_suspended_or_rescinded() -> None:
    e = Enforcement(begins=D(2025, 3, 1), suspended=D(2025, 6, 1))
    assert [e.enforced_on(d) for d in (D(2025, 2, 28), D(2025, 3, 1), D(2025, 5, 31),
                                       D(2025, 6, 1))] == [False, True, True, False]
    r = Enforcement(begins=D(2025, 3, 1), rescinded=D(2025, 6, 1))
    assert [r.enforced_on(d) for d in (D(2025, 5, 31), D(2025, 6, 1))] == [True, False]


def test_the_quota_in_force_changes_revision_on_the_enforcement_day() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)
    # the 2025-05-13 non-enforcement revision governs from its first day, with no caps
    assert s.position("MX", "2025-05-12", rule=None).rule == "h20-license-2025"
    assert s.position("MX", "2025-05-13", rule=None).rule == "diffusion-nonenforcement-2025"


def test_an_invalid_authorization_says_why_in_the_explanation() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["BR"], valid_from="2025-01-01")
    s.ship("V", "2025-03-01", "MX", 10, auth="veu:V1")
    s.ship("L", "2025-03-01", "MX", 10, auth="license:NOPE")
    s.ship("N", "2025-03-01", "MX", 10)
    p = s.position("MX", "2025-06-30", explain=True)
    assert p.contributions is not None
    detail = {c.identity: c.detail for c in p.contributions}
    assert detail == {
        "acme/V": "VEU not valid (VEU 'V1' does not cover MX): counts against the country cap",
        "acme/L": "license not valid (allocation 'NOPE' is not known to the ledger): counts "
                  "against the country cap",
        "acme/N": "no authorization: counts against the country cap"}
