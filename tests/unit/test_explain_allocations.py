"""What --explain says about allocations, and a position with no rule in force (pure):
each change of standing of a license or a country-level allocation is one contribution
with its exact amounts, clause, citation, detail and instrument."""

from __future__ import annotations

import datetime as dt
from typing import Any

from projections.positions import Position, country_position, no_rule_treatment
from tests.builders import Scenario

CITATION = "90 FR 4544-4584 (FR Doc 2025-00636), tier-2 country cap"


def _contribution(kind: str, identity: str, day: str, position: int, tpp: int,
                  committed: int, cap: int, detail: str,
                  exporter: str | None) -> dict[str, Any]:
    license = kind == "license"
    return {"kind": kind, "identity": identity, "date": day, "position": position,
            "exporter_id": exporter, "consignee_id": None, "tpp": tpp,
            "committed_delta": committed, "cap_delta": cap,
            "bucket": "license" if license else "cap", "flag": None,
            "clause": "tier2-license" if license else "tier2-unlicensed",
            "citation": CITATION, "detail": detail, "instrument": "ai-diffusion-2025"}


def test_each_change_of_an_allocation_is_one_exact_contribution() -> None:
    s = Scenario()
    s.license("LIC-1", "MX", 100_000_000, "2025-02-01", "2025-06-30")  # position 6
    s.do(type="allocation.adjusted", allocation_id="LIC-1", tpp_amount=150_000_000,
         effective_date="2025-03-01", reason="more")  # 7
    s.do(type="allocation.granted", allocation_id="G2G-MX", country="MX",
         tpp_amount=50_000_000, valid_from="2025-04-01")  # 8
    s.do(type="allocation.revoked", allocation_id="G2G-MX", effective_date="2025-05-01",
         reason="withdrawn")  # 9
    p = s.position("MX", "2025-08-01", explain=True)
    assert p.contributions is not None
    assert [c.model_dump(mode="json") for c in p.contributions] == [
        _contribution("license", "LIC-1", "2025-02-01", 6, 100_000_000, 100_000_000, 0,
                      "license held by acme granted", "acme"),
        _contribution("license", "LIC-1", "2025-03-01", 7, 150_000_000, 50_000_000, 0,
                      "license held by acme adjusted", "acme"),
        _contribution("country-allocation", "G2G-MX", "2025-04-01", 8, 50_000_000, 0,
                      50_000_000, "country-level allocation granted", None),
        _contribution("country-allocation", "G2G-MX", "2025-05-01", 9, 0, 0, -50_000_000,
                      "country-level allocation ended (expired or revoked)", None),
        _contribution("license", "LIC-1", "2025-07-01", 6, 0, -150_000_000, 0,
                      "license held by acme ended (expired or revoked)", "acme"),
    ]
    assert (p.cap_tpp, p.committed_tpp) == (790_000_000, 0)


def test_with_no_rule_in_force_a_position_has_no_cap() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)
    expected = dict(country="MX", as_of=dt.date(2020, 1, 1), rule=None, tier=None,
                    cap_tpp=None, committed_tpp=0, remaining_tpp=None, status="no-cap",
                    cap_period=None, first_breach=None, flagged={}, breakdown={},
                    shipments_counted=0, contributions=None)
    head = len(s.events)
    p = country_position(s.state, "MX", dt.date(2020, 1, 1), None)
    assert p == Position(known_at=None, computed_at_position=head, **expected)
    past = country_position(s.state, "MX", dt.date(2020, 1, 1), None, known_at=3)
    assert past == Position(known_at=3, computed_at_position=3, **expected)
    beyond = country_position(s.state, "MX", dt.date(2020, 1, 1), None, known_at=head + 5)
    assert beyond.computed_at_position == head


def test_a_shipment_with_no_rule_in_force_counts_for_nothing() -> None:
    t = no_rule_treatment(dt.date(2020, 1, 2))
    assert (t.bucket.value, t.flag, t.clause, t.detail) == (
        "none", None, "no-rule", "no rule revision in force on 2020-01-02")


def test_h100_equivalents_divide_by_the_h100_s_tpp() -> None:
    p = country_position(Scenario(rules=False).state, "MX", dt.date(2025, 1, 1), None)
    assert p.h100(15_832 * 3) == 3.0
    assert p.h100(None) is None
