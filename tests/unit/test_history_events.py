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
