"""The replay engine, pure: lanes, equality with ``country_position``, and the
property that replaying a revision against itself changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.model import reference as ref
from tests.model.strategies import ledgers as model_ledgers
from tests.model.test_model import Decided, _answer, _check
from tests.unit.replay_builders import StateBuilder

from ledger.errors import UnknownRule, ValidationError
from ledger.rulebook import bundled_rulebook
from projections.replay import replay

D = dt.date
COUNTRIES = ["MX", "AE", "SA", "IN", "CN", "DE", "US", "MY", "BR"]
KINDS = ["none", "none", "lpp", "license", "veu"]


@st.composite
def ledgers(draw: st.DrawFn) -> StateBuilder:
    """A random ledger: licenses, a universal VEU, shipments (some voided) from
    2024-10 to 2026-03, big enough to cross caps and LPP limits."""
    b = StateBuilder()
    b.license("lic-1", "MX", draw(st.integers(1, 400)) * 1_000_000, D(2025, 1, 1),
              draw(st.sampled_from([None, D(2025, 6, 30)])))
    b.license("lic-2", "SA", 50_000_000, D(2025, 3, 1), None, holder="exp-b")
    b.veu("veu-1", "universal", "US", ["US", "AE", "MY", "DE"], D(2025, 1, 1))
    n = draw(st.integers(0, 40))
    for i in range(n):
        day = D(2024, 10, 1) + dt.timedelta(days=draw(st.integers(0, 540)))
        kind = draw(st.sampled_from(KINDS))
        ref = {"license": draw(st.sampled_from(["lic-1", "lic-2", "lic-x"])),
               "veu": "veu-1"}.get(kind)
        b.ship(draw(st.sampled_from(["exp-a", "exp-b"])), f"s-{i}", day,
               draw(st.sampled_from(COUNTRIES)),
               draw(st.sampled_from([1_000, 4_992, 15_832, 36_000])),
               units=draw(st.integers(1, 12_000)), kind=kind, auth_ref=ref,
               consignee=draw(st.sampled_from(["k-1", "k-2", "k-3"])))
        if draw(st.integers(0, 9)) == 0:
            b.void(b.state.shipments[next(reversed(b.state.shipments))].exporter_id,
                   f"s-{i}")
    return b


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(ledgers(), st.sampled_from(["ai-diffusion-2025", "baseline-2023",
                                   "diffusion-nonenforcement-2025", "in-force",
                                   "on-the-books"]))
def test_replaying_a_revision_against_itself_changes_nothing(b: StateBuilder,
                                                             rule: str) -> None:
    against = rule
    lane_rule = "ai-diffusion-2025" if rule in ("in-force", "on-the-books") else rule
    result = replay(b.state, lane_rule, lane_rule)
    assert result.changes == []
    assert result.totals.shipments_changed == 0 and result.totals.tpp_changed == 0
    assert result.totals.countries_status_changed == []
    assert all(c.rule == c.against and c.committed_difference_tpp == 0
               for c in result.countries)
    if against in ("in-force", "on-the-books"):
        # a timeline against itself: still nothing changes
        same = replay(b.state, against, against)
        assert same.changes == [] and same.totals.countries_status_changed == []
    # deterministic: the same replay gives the same bytes
    assert (replay(b.state, lane_rule, "in-force").model_dump_json()
            == replay(b.state, lane_rule, "in-force").model_dump_json())


@SETTINGS
@given(model_ledgers(), st.sampled_from([D(2025, 6, 30), D(2025, 12, 31), D(2026, 3, 1)]))
def test_replay_positions_equal_the_reference_fold(lines: list[dict[str, Any]],
                                                  to: dt.date) -> None:
    """The replay's lane for a named revision gives every country the position of the
    reference fold (``tests/model/reference.py``, written from the README, sharing no
    code with ``projections``), not merely what ``country_position`` gives."""
    d = Decided(lines)
    result = replay(d.state, "ai-diffusion-2025", "baseline-2023", window_to=to)
    for c in result.countries:
        want = ref.position(d.lines, d.first, c.country, to, ref.CAPPED)
        _check(d, f"replay lane of {c.country} to {to}", _answer(c.rule), want)


@SETTINGS
@given(ledgers())
def test_in_force_lane_with_one_revision_equals_that_revision(b: StateBuilder) -> None:
    """When one revision governs every date, the in-force lane is that revision."""
    from projections.state import LedgerState

    only = StateBuilder(books=[bundled_rulebook("ai-diffusion-2025").model_copy(update={
        "enforcement": bundled_rulebook("ai-diffusion-2025").enforcement.model_copy(
            update={"begins": D(2020, 1, 1), "suspended": None})})])
    state: LedgerState = only.state
    for key, row in b.state.shipments.items():
        state.shipments[key] = row
    state.by_country, state.by_consignee = b.state.by_country, b.state.by_consignee
    state.allocations, state.allocations_by_country = (b.state.allocations,
                                                       b.state.allocations_by_country)
    state.veus = b.state.veus
    state.position = max(state.position, b.state.position)
    result = replay(state, "ai-diffusion-2025", "in-force")
    assert result.changes == []
    assert all(c.rule == c.against for c in result.countries)


def test_lpp_excess_in_one_year_not_across_two() -> None:
    b = StateBuilder()
    b.ship("e", "a", D(2024, 12, 1), "AE", 20_000_000, consignee="k-2", kind="lpp")
    b.ship("e", "b", D(2025, 1, 5), "AE", 20_000_000, consignee="k-2", kind="lpp")
    b.ship("e", "c", D(2025, 3, 1), "AE", 15_000_000, consignee="k-1", kind="lpp")
    b.ship("e", "d", D(2025, 11, 1), "AE", 15_000_000, consignee="k-1", kind="lpp")
    result = replay(b.state, "ai-diffusion-2025", "diffusion-nonenforcement-2025")
    flags = {ch.shipment_ref: (ch.rule.flag, ch.rule.flag_tpp) for ch in result.changes}
    assert flags == {"a": (None, 0), "b": (None, 0), "c": (None, 0),
                     "d": ("lpp-excess", 3_100_000)}
    assert result.countries[0].rule.committed_tpp == 3_100_000


def test_window_narrows_changes_not_positions() -> None:
    b = StateBuilder()
    b.ship("e", "early", D(2025, 2, 1), "MX", 500_000_000)
    b.ship("e", "late", D(2025, 8, 1), "MX", 300_000_000)
    result = replay(b.state, "ai-diffusion-2025", window_from=D(2025, 6, 1))
    assert [ch.shipment_ref for ch in result.changes] == ["late"]
    assert result.countries[0].rule.committed_tpp == 800_000_000
    assert result.countries[0].rule.first_breach.shipment_ref == "late"  # type: ignore[union-attr]
    assert result.totals.shipments_in_window == 1


def test_empty_ledger_and_errors() -> None:
    b = StateBuilder()
    result = replay(b.state, "ai-diffusion-2025")
    assert result.countries == [] and result.window_to is None
    with pytest.raises(UnknownRule, match="'nope'"):
        replay(b.state, "nope")
    with pytest.raises(ValidationError, match="--from 2025-02-01 is after --to 2025-01-01"):
        replay(b.state, "ai-diffusion-2025", window_from=D(2025, 2, 1),
               window_to=D(2025, 1, 1))


def test_progress_reaches_the_total() -> None:
    b = StateBuilder()
    for i in range(5):
        b.ship("e", f"s{i}", D(2025, 3, 1 + i), ["MX", "AE"][i % 2], 15_832)
    seen: list[tuple[int, int]] = []
    replay(b.state, "ai-diffusion-2025", progress=lambda t, d: seen.append((t, d)))
    assert seen[-1] == (10, 10)
