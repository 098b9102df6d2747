"""Property tests of the fold and the positions (hypothesis; pure, no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.positions import country_position
from projections.state import LedgerState, fold_all
from projections.views import select_rule
from tests.builders import Scenario

COUNTRIES = ["MX", "BR", "CN", "FR"]
AS_OF = dt.date(2025, 12, 31)
RULES = ["ai-diffusion-2025", None, "baseline-2023"]

shipment = st.fixed_dictionaries({
    "dest": st.sampled_from(COUNTRIES),
    "day": st.integers(0, 364),
    "quantity": st.integers(1, 40_000),
    "auth": st.sampled_from(["none", "lpp", "license:L1", "license:L2", "veu:V1"]),
    "consignee": st.sampled_from(["c1", "c2", "c3"]),
})


def build(shipments: list[dict[str, Any]]) -> Scenario:
    s = Scenario()
    s.license("L1", "MX", 200_000_000, "2025-01-01", "2025-06-30")
    s.license("L2", "CN", 5_000_000, "2025-01-01")
    s.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX", "BR"], valid_from="2025-03-01")
    for i, sh in enumerate(shipments):
        day = dt.date(2025, 1, 1) + dt.timedelta(days=sh["day"])
        s.ship(f"S{i}", day.isoformat(), sh["dest"], sh["quantity"], auth=sh["auth"],
               consignee=sh["consignee"])
    return s


def positions(state: LedgerState, rule: str | None, known_at: int | None = None) -> dict:
    book = select_rule(state, AS_OF, rule)
    return {c: country_position(state, c, AS_OF, book, known_at=known_at).model_dump(
        exclude={"known_at", "computed_at_position"}) for c in COUNTRIES}


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(shipment, max_size=25), st.sampled_from(RULES))
def test_folding_the_same_events_twice_changes_nothing(ships: list, rule: str | None) -> None:
    s = build(ships)
    once = fold_all(s.events)
    twice = fold_all(s.events, state=fold_all(s.events))
    assert positions(once, rule) == positions(twice, rule) == positions(s.state, rule)


@SETTINGS
@given(st.lists(shipment, max_size=25, unique_by=lambda sh: sh["day"]), st.randoms(),
       st.sampled_from(RULES))
def test_append_order_does_not_change_the_answer(ships: list, rnd: Any, rule: str | None
                                                  ) -> None:
    """Shipments recorded in any order (distinct ship dates, so no ties to break by
    recorded order) give the same positions."""
    a = build(ships)
    shuffled = list(enumerate(ships))
    rnd.shuffle(shuffled)
    b = Scenario()
    b.license("L1", "MX", 200_000_000, "2025-01-01", "2025-06-30")
    b.license("L2", "CN", 5_000_000, "2025-01-01")
    b.do(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
         headquarters_country="US", covered_countries=["MX", "BR"], valid_from="2025-03-01")
    for i, sh in shuffled:
        day = dt.date(2025, 1, 1) + dt.timedelta(days=sh["day"])
        b.ship(f"S{i}", day.isoformat(), sh["dest"], sh["quantity"], auth=sh["auth"],
               consignee=sh["consignee"])
    pa, pb = positions(a.state, rule), positions(b.state, rule)
    for c in COUNTRIES:
        if pa[c]["first_breach"] and pb[c]["first_breach"]:
            # the recorded position differs by construction; the shipment must not
            pa[c]["first_breach"].pop("position")
            pb[c]["first_breach"].pop("position")
    assert pa == pb


@SETTINGS
@given(st.lists(shipment, min_size=1, max_size=25), st.sampled_from(RULES))
def test_known_at_the_last_position_equals_no_known_at(ships: list, rule: str | None) -> None:
    s = build(ships)
    last = s.events[-1][0]
    assert positions(fold_all(s.events, known_at=last), rule, known_at=last) == \
        positions(s.state, rule)


@SETTINGS
@given(st.lists(shipment, max_size=25), st.sampled_from(RULES))
def test_cap_minus_committed_is_remaining_for_every_country(ships: list, rule: str | None
                                                            ) -> None:
    s = build(ships)
    book = select_rule(s.state, AS_OF, rule)
    for c in COUNTRIES:
        p = country_position(s.state, c, AS_OF, book)
        if p.cap_tpp is None:
            assert p.remaining_tpp is None and p.status == "no-cap"
        else:
            assert p.cap_tpp - p.committed_tpp == p.remaining_tpp
            assert p.status == ("over-cap" if p.remaining_tpp < 0 else "within-cap")
            assert (p.first_breach is None) or p.first_breach.committed_tpp > \
                p.first_breach.cap_tpp


@SETTINGS
@given(st.lists(shipment, min_size=2, max_size=20), st.integers(1, 30))
def test_known_at_a_past_position_ignores_later_events(ships: list, cut: int) -> None:
    s = build(ships)
    cut = min(cut + 7, s.events[-1][0])  # past the rule books and the setup
    earlier = [(p, e) for p, e in s.events if p <= cut]
    assert positions(fold_all(s.events, known_at=cut), "ai-diffusion-2025") == \
        positions(fold_all(earlier), "ai-diffusion-2025")
