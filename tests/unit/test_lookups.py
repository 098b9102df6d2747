"""Lookups (``projections.lookups``): licenses with what shipped under them, VEUs with
their terms, one shipment's versions. Given these events, then these answers."""

from __future__ import annotations

import datetime as dt

from projections.lookups import (
    license_detail,
    license_rows,
    shipment_counting,
    shipment_versions,
    veu_rows,
)
from tests.builders import H100, Scenario

D = dt.date.fromisoformat


def licensed() -> Scenario:
    s = Scenario()
    s.license("L1", "MX", 1_000 * H100, "2025-01-15", "2025-12-31")
    s.license("L2", "MX", 500 * H100, "2025-01-15", holder="globex")
    s.do(type="allocation.granted", allocation_id="G2G", country="IN",
         tpp_amount=790_000_000, valid_from="2025-01-20")
    s.ship("S1", "2025-02-01", "MX", 600, auth="license:L1")
    s.ship("S2", "2025-03-01", "MX", 600, auth="license:L1")        # 200 past the amount
    s.ship("S3", "2025-03-02", "MX", 50, auth="license:L2")         # held by globex
    s.ship("S4", "2025-03-03", "MX", 70, auth="license:L1")
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S4", reason="cancelled")
    s.do(type="allocation.adjusted", allocation_id="L1", tpp_amount=1_100 * H100,
         effective_date="2025-06-01", reason="amended")
    return s


def test_license_rows_filter_and_totals() -> None:
    s = licensed()
    rows = license_rows(s.state, D("2025-04-01"))
    assert [r.allocation_id for r in rows] == ["G2G", "L1", "L2"]
    l1 = rows[1]
    assert (l1.amount_tpp, l1.shipped_tpp, l1.remaining_tpp, l1.shipments) == (
        1_000 * H100, 1_200 * H100, -200 * H100, 2)
    assert rows[0].kind == "country-allocation" and rows[0].holder is None
    # the shipment under another holder's license does not deplete it
    assert rows[2].shipped_tpp == 0 and rows[2].status == "active"
    assert [r.allocation_id for r in license_rows(s.state, D("2025-04-01"), holder="globex")
            ] == ["L2"]
    assert [r.allocation_id for r in license_rows(s.state, D("2025-04-01"), country="IN")
            ] == ["G2G"]
    # the adjustment applies from its date; expiry
    after = license_rows(s.state, D("2026-01-05"), country="MX")[0]
    assert after.amount_tpp == 1_100 * H100 and after.status == "expired"


def test_license_detail_lists_every_draw_with_reasons() -> None:
    s = licensed()
    d = license_detail(s.state, "L1", D("2025-12-31"))
    assert d is not None
    refs = [(w.shipment_ref, w.valid, w.voided, w.excess_tpp, w.shipped_after_tpp)
            for w in d.draws]
    assert refs == [("S1", True, False, 0, 600 * H100),
                    ("S2", True, False, 200 * H100, 1_200 * H100),
                    ("S4", True, True, 0, 1_200 * H100)]
    assert [a for _, _, a in d.amounts] == [1_000 * H100, 1_100 * H100]
    l2 = license_detail(s.state, "L2", D("2025-12-31"))
    assert l2 is not None and not l2.draws[0].valid
    assert "held by 'globex', not 'acme'" in l2.draws[0].reason
    assert license_detail(s.state, "NOPE", D("2025-12-31")) is None


def test_revoked_license_status() -> None:
    s = licensed()
    s.do(type="allocation.revoked", allocation_id="L2", effective_date="2025-05-01",
         reason="revoked")
    row = license_rows(s.state, D("2025-06-01"), holder="globex")[0]
    assert row.status == "revoked" and row.revoked_on == D("2025-05-01")


def test_veu_rows_terms_as_amended() -> None:
    s = Scenario()
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["AE", "MX"], valid_from="2025-01-20",
         limits={"total_compute_tpp": 10**10})
    s.do(type="veu.amended", veu_id="V1", effective_date="2025-03-01",
         covered_countries=["AE", "MX", "BR"], reason="Brazil added")
    s.ship("V-1", "2025-02-01", "AE", 100, auth="veu:V1")
    s.ship("V-2", "2025-02-05", "BR", 100, auth="veu:V1")            # not yet covered
    early, late = veu_rows(s.state, D("2025-02-10")), veu_rows(s.state, D("2025-04-01"))
    assert early[0].covered_countries == ["AE", "MX"]
    assert late[0].covered_countries == ["AE", "BR", "MX"]
    assert (late[0].shipments, late[0].shipped_tpp) == (1, 100 * H100)
    assert late[0].total_compute_tpp == 10**10
    assert veu_rows(s.state, D("2025-02-10"), country="BR") == []


def test_shipment_versions_old_to_new_and_counting() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 100)
    s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", quantity=120,
         reason="recount")
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    events = [(p, e) for p, e in s.events if getattr(e, "shipment_ref", None) == "S1"]
    versions = shipment_versions(events, {events[0][0]: "2026-01-01T00:00:00+00:00"})
    assert [v.type for v in versions] == ["shipment.recorded", "shipment.corrected",
                                          "shipment.voided"]
    assert versions[0].recorded_at == "2026-01-01T00:00:00+00:00"
    assert versions[1].changes == {"quantity": [100, 120], "tpp": [100 * H100, 120 * H100]}
    assert versions[1].reason == "recount" and versions[2].voided
    rule = s.state.rule("ai-diffusion-2025")
    voided = shipment_counting(s.state, ("acme", "S1"), D("2025-12-31"), rule)
    assert voided is not None and not voided.counts and voided.clause == "voided"


def test_shipment_counting_follows_the_fold() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 100)
    rule = s.state.rule("ai-diffusion-2025")
    c = shipment_counting(s.state, ("acme", "S1"), D("2025-12-31"), rule)
    assert c is not None and c.counts and (c.bucket, c.flag) == ("cap", "unlicensed")
    assert c.committed_delta == 100 * H100 and "tier-2 country cap" in c.citation
    before = shipment_counting(s.state, ("acme", "S1"), D("2025-01-01"), rule)
    assert before is not None and before.clause == "not-yet-shipped"
