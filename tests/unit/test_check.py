"""The pre-shipment check (``projections.check``): given a ledger, when this shipment
is proposed, then it counts so, draws on this, leaves that, and fits or not. Each
answer is compared with what the quota fold says once the shipment is recorded."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.events import Authorization, ShipmentFields
from projections.check import check_shipment
from tests.builders import CAP, H100, LPP, Scenario

RULE = "ai-diffusion-2025"


def proposed(day: str, dest: str, quantity: int, auth: str = "none",
             consignee: str = "c1") -> ShipmentFields:
    kind, _, ref = auth.partition(":")
    return ShipmentFields(ship_date=dt.date.fromisoformat(day), destination=dest,
                          consignee_id=consignee, product_id="nvidia-h100-sxm",
                          quantity=quantity, tpp_per_unit=H100,
                          authorization=Authorization(kind=kind, ref=ref or None))  # type: ignore[arg-type]


def run(s: Scenario, fields: ShipmentFields, rule: str | None = RULE, ref: str = "NEW"
        ) -> Any:
    book = s.state.rule(rule) if rule else None
    return check_shipment(s.state, "acme", ref, fields, book)


def test_fits_under_the_cap_and_matches_the_fold_once_recorded() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 10_000)
    r = run(s, proposed("2025-03-01", "MX", 1_000))
    assert r.fits and r.problems == [] and r.bucket == "cap" and r.flag == "unlicensed"
    assert [w.kind for w in r.warnings] == ["unlicensed"]
    assert r.cap.committed_before_tpp == 10_000 * H100
    assert r.cap.committed_after_tpp == 11_000 * H100 == r.cap.committed_before_tpp + \
        r.committed_delta_tpp
    assert r.cap.remaining_after_tpp == CAP - 11_000 * H100
    # the state is left as it was found
    assert ("acme", "NEW") not in s.state.shipments
    s.ship("NEW", "2025-03-01", "MX", 1_000)
    assert s.position("MX", "2025-03-01").committed_tpp == r.cap.committed_after_tpp


def test_would_breach_the_cap() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 49_000)  # 775,768,000 of 790,000,000
    r = run(s, proposed("2025-03-01", "MX", 1_000))
    assert not r.fits and [p.kind for p in r.problems] == ["over-cap"]
    assert "over the cap of 790,000,000 by 1,600,000" in r.problems[0].message
    assert r.cap.first_breach_after is not None
    assert r.cap.first_breach_after.shipment_ref == "NEW"


def test_a_backdated_shipment_that_pushes_a_later_position_over_is_caught() -> None:
    s = Scenario()
    s.ship("LATER", "2025-09-01", "MX", 49_000)
    r = run(s, proposed("2025-03-01", "MX", 1_000))
    assert r.as_of == dt.date(2025, 9, 1)
    assert not r.fits and r.cap.status_after == "over-cap"


def test_tier3_without_license_is_prohibited() -> None:
    s = Scenario()
    r = run(s, proposed("2025-03-01", "CN", 1))
    assert not r.fits and r.flag == "prohibited"
    assert "prohibited" in [p.kind for p in r.problems]


def test_license_draw_and_license_excess() -> None:
    s = Scenario()
    s.license("L1", "MX", 1_000 * H100, "2025-01-15", "2025-12-31")
    s.ship("S1", "2025-02-01", "MX", 600, auth="license:L1")
    fits = run(s, proposed("2025-03-01", "MX", 300, auth="license:L1"))
    assert fits.fits and fits.bucket == "license" and fits.committed_delta_tpp == 0
    assert fits.license is not None and fits.license.valid
    assert (fits.license.shipped_before_tpp, fits.license.shipped_after_tpp,
            fits.license.remaining_after_tpp) == (600 * H100, 900 * H100, 100 * H100)
    over = run(s, proposed("2025-03-01", "MX", 500, auth="license:L1"))
    assert not over.fits and over.flag == "license-excess"
    assert over.license is not None and over.license.remaining_after_tpp == -100 * H100
    assert "license-excess" in [p.kind for p in over.problems]


def test_unknown_license_counts_against_the_cap_with_a_warning() -> None:
    s = Scenario()
    r = run(s, proposed("2025-03-01", "MX", 10, auth="license:NOPE"))
    assert r.fits and r.flag == "license-invalid" and r.bucket == "cap"
    assert r.license is not None and not r.license.valid
    assert "not known" in r.license.reason
    assert [w.kind for w in r.warnings] == ["license-invalid"]


def test_lpp_year_and_lpp_excess() -> None:
    s = Scenario()
    s.ship("L0", "2025-02-01", "MX", 1_000, auth="lpp", consignee="dc")
    r = run(s, proposed("2025-03-01", "MX", 500, auth="lpp", consignee="dc"))
    assert r.fits and r.lpp is not None
    assert (r.lpp.used_before_tpp, r.lpp.used_after_tpp) == (1_000 * H100, 1_500 * H100)
    assert r.lpp.remaining_after_tpp == LPP - 1_500 * H100
    over = run(s, proposed("2025-03-01", "MX", 1_000, auth="lpp", consignee="dc"))
    assert not over.fits and over.flag == "lpp-excess"
    assert over.lpp is not None and over.lpp.excess_tpp == 2_000 * H100 - LPP


def test_veu_limit_breach() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="E", kind="national",
         headquarters_country="AE", covered_countries=["AE"], valid_from="2025-01-20",
         limits={"cap_tpp": 1_000 * H100})
    fits = run(s, proposed("2025-03-01", "AE", 900, auth="veu:V1"))
    assert fits.fits and fits.bucket == "veu" and fits.veu is not None and fits.veu.valid
    over = run(s, proposed("2025-03-01", "AE", 1_100, auth="veu:V1"))
    assert not over.fits and [p.kind for p in over.problems] == ["veu-limit"]


def test_no_cap_license_required_without_license_fails() -> None:
    s = Scenario()
    # China under the baseline: no cap, a license required
    r = run(s, proposed("2024-03-01", "CN", 1), rule="baseline-2023")
    assert r.flag == "unlicensed" and r.bucket == "none"
    assert not r.fits and [p.kind for p in r.problems] == ["license-required"]


def test_tier1_fits_and_counts_against_nothing() -> None:
    s = Scenario()
    r = run(s, proposed("2025-03-01", "DE", 100_000))
    assert r.fits and r.bucket == "none" and r.committed_delta_tpp == 0 and not r.warnings
