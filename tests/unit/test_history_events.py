"""The auditor's history lists corrections and voids as events at their own positions,
including a correction that moves a shipment out of the country (pure)."""

from __future__ import annotations

import datetime as dt

from projections.history import country_history
from projections.views import select_rule
from tests.builders import Scenario


def history(s: Scenario, country: str) -> list[tuple[str, int, str]]:
    day = dt.date(2025, 12, 31)
    h = country_history(s.state, country, select_rule(s.state, day, "ai-diffusion-2025"),
                        from_date=None, to_date=day)
    return [(e.kind, e.position, e.identity) for e in h.entries]


def test_a_correction_moving_a_shipment_out_is_listed_in_both_countries() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)
    recorded = s.events[-1][0]
    s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1",
         destination="BR", reason="wrong country")
    corrected = s.events[-1][0]
    assert history(s, "MX") == [("shipment.corrected", corrected, "acme/S1")]
    assert history(s, "BR") == [("shipment.recorded", recorded, "acme/S1"),
                                ("shipment.corrected", corrected, "acme/S1")]


def test_a_void_is_listed_at_its_own_position_and_the_original_row_stays() -> None:
    s = Scenario()
    s.ship("S1", "2025-03-01", "MX", 10)
    recorded = s.events[-1][0]
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    assert history(s, "MX") == [("shipment.recorded", recorded, "acme/S1"),
                                ("shipment.voided", s.events[-1][0], "acme/S1")]


def test_late_is_judged_on_the_whole_ledger_not_the_listed_window() -> None:
    from projections.history import late_events

    s = Scenario()
    s.ship("APR", "2025-04-10", "MX", 10)
    apr = s.events[-1][0]
    s.ship("FEB", "2025-02-10", "MX", 10)  # backdated: recorded after APR
    feb = s.events[-1][0]
    s.ship("MAY", "2025-05-10", "MX", 10)
    assert late_events(s.state, "MX") == {feb: apr}
    rule = select_rule(s.state, dt.date(2025, 3, 1), "ai-diffusion-2025")
    for to_date in (dt.date(2025, 3, 1), dt.date(2025, 12, 31)):
        h = country_history(s.state, "MX", rule, from_date=None, to_date=to_date)
        flags = {e.identity: (e.late, e.late_after) for e in h.entries}
        assert flags["acme/FEB"] == (True, apr)
