"""What an auditor reads in ``history``: the first breach is marked on the item the
quota fold names, a voided shipment keeps its original row (counting for nothing)
beside its void, and the running totals are unchanged by both."""

from __future__ import annotations

import datetime as dt

from projections.history import country_history
from tests.builders import Scenario


def history(s: Scenario) -> object:
    rule = s.state.rule("ai-diffusion-2025")
    return country_history(s.state, "MX", rule, from_date=None, to_date=dt.date(2025, 12, 31))


def test_first_breach_is_the_folds_first_breach() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 40_000)
    s.ship("S2", "2025-03-01", "MX", 10_000)   # 50,000 H100 = 791,600,000 > 790,000,000
    s.ship("S3", "2025-04-01", "MX", 1_000)    # still over: not a second "first"
    h = history(s)
    marked = [e for e in h.entries if e.first_breach]  # type: ignore[attr-defined]
    assert [e.identity for e in marked] == ["acme/S2"]
    breach = s.position("MX", "2025-12-31").first_breach
    assert breach is not None and marked[0].position == breach.position


def test_no_breach_no_mark() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 100)
    assert not any(e.first_breach for e in history(s).entries)  # type: ignore[attr-defined]


def test_a_voided_shipment_keeps_its_original_row() -> None:
    s = Scenario()
    s.ship("S1", "2025-02-01", "MX", 100)
    s.ship("S2", "2025-02-02", "MX", 50)
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    entries = history(s).entries  # type: ignore[attr-defined]
    rows = [(e.kind, e.identity, e.voided, e.committed_delta) for e in entries]
    assert rows == [("shipment.recorded", "acme/S1", True, 0),
                    ("shipment.voided", "acme/S1", False, 0),
                    ("shipment.recorded", "acme/S2", False, 50 * 15_832)]
    assert "voided at position" in entries[0].detail
    assert entries[-1].committed_tpp == 50 * 15_832
