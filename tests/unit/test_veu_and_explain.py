"""VEU limits (universal shares, national caps) and the --explain lineage."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.unit.replay_builders import StateBuilder

from ledger.cli.quota import EXPLAIN_AGGREGATE_OVER, explain_items
from ledger.errors import NotFound
from ledger.rulebook import bundled_rulebook
from projections.positions import country_position
from projections.veu import veu_status

D = dt.date
DIFFUSION = bundled_rulebook("ai-diffusion-2025")


def test_universal_shares_base_is_all_shipments_without_total_compute() -> None:
    b = StateBuilder()
    b.veu("u", "universal", "US", ["US", "AE", "MY", "DE"], D(2025, 1, 1))
    b.ship("e", "us", D(2025, 2, 1), "US", 40_000_000, kind="veu", auth_ref="u")
    b.ship("e", "de", D(2025, 2, 1), "DE", 40_000_000, kind="veu", auth_ref="u")
    b.ship("e", "ae", D(2025, 2, 1), "AE", 20_000_000, kind="veu", auth_ref="u")
    b.ship("e", "br", D(2025, 2, 1), "BR", 5_000_000, kind="veu", auth_ref="u")  # not covered
    s = veu_status(b.state, "u", D(2025, 12, 31), DIFFUSION)
    assert s.base_tpp == 100_000_000 and s.base_source.startswith("shipments")  # type: ignore[union-attr]
    lim = {x.limit: x for x in s.limits}
    assert lim["max-share-single-non-tier1:AE"].share == "0.2000"
    assert lim["max-share-single-non-tier1:AE"].breach
    assert not lim["max-share-outside-tier1"].breach  # 20% <= 25%
    assert lim["min-share-us"].breach  # 40% < 50% for a US-headquartered entity
    assert (s.not_valid_shipments, s.not_valid_tpp) == (1, 5_000_000)


def test_exactly_at_the_limit_is_not_a_breach() -> None:
    b = StateBuilder()
    b.veu("u", "universal", "GB", ["AE"], D(2025, 1, 1), total_compute_tpp=100_000_000)
    b.ship("e", "ae", D(2025, 2, 1), "AE", 7_000_000, kind="veu", auth_ref="u")
    s = veu_status(b.state, "u", D(2025, 12, 31), DIFFUSION)
    assert s.breaches == []
    assert [x.limit for x in s.limits] == ["max-share-single-non-tier1:AE",
                                          "max-share-outside-tier1"]  # not US-HQ


def test_national_caps_by_period_from_the_rule_book() -> None:
    b = StateBuilder()
    b.veu("n", "national", "AE", ["AE"], D(2025, 1, 1))
    cap_2025 = 100_000 * 15_832
    b.ship("e", "a", D(2025, 3, 1), "AE", cap_2025, kind="veu", auth_ref="n")
    b.ship("e", "b", D(2025, 9, 1), "AE", 1, kind="veu", auth_ref="n")
    b.ship("e", "c", D(2026, 2, 1), "AE", 10, kind="veu", auth_ref="n")
    s = veu_status(b.state, "n", D(2026, 6, 30), DIFFUSION)
    first, second, _third = s.limits
    assert (first.through, first.cap_tpp, first.used_tpp, first.breach) == (
        D(2025, 12, 31), cap_2025, cap_2025 + 1, True)
    assert first.first_breach is not None and first.first_breach.shipment_ref == "b"
    assert (second.used_tpp, second.breach) == (cap_2025 + 11, False)
    assert s.breaches == ["cumulative-cap-through:2025-12-31"]


def test_national_cap_on_the_grant_wins() -> None:
    b = StateBuilder()
    b.veu("n", "national", "AE", ["AE"], D(2025, 1, 1), cap_tpp=10)
    b.ship("e", "a", D(2025, 3, 1), "AE", 11, kind="veu", auth_ref="n")
    s = veu_status(b.state, "n", D(2025, 12, 31), None)
    assert [(x.cap_tpp, x.breach) for x in s.limits] == [(10, True)]


def test_no_limits_under_a_revision_without_them_and_unknown_veu() -> None:
    b = StateBuilder()
    b.veu("u", "universal", "US", ["AE"], D(2025, 1, 1))
    s = veu_status(b.state, "u", D(2025, 12, 31),
                   bundled_rulebook("diffusion-nonenforcement-2025"))
    assert s.limits == [] and s.note and "sets no universal VEU limits" in s.note
    with pytest.raises(NotFound, match="'x'"):
        veu_status(b.state, "x", D(2025, 12, 31), DIFFUSION)


def test_explain_aggregates_over_fifty_items_unless_full() -> None:
    b = StateBuilder()
    b.license("lic", "MX", 10_000_000, D(2025, 1, 1), None)
    for i in range(60):
        b.ship("exp-a" if i % 2 else "exp-b", f"s{i}", D(2025, 2, 1) + dt.timedelta(days=i),
               "MX", 1_000_000, consignee="k-1" if i < 30 else "k-2")
    p = country_position(b.state, "MX", D(2025, 12, 31), DIFFUSION, explain=True)
    assert p.contributions is not None and len(p.contributions) == 61 > EXPLAIN_AGGREGATE_OVER
    full = explain_items(p.contributions, full=True)
    assert len(full) == 61
    agg = explain_items(p.contributions, full=False)
    assert [r["kind"] for r in agg].count("license") == 1
    groups = [r for r in agg if r["kind"] == "shipments"]
    assert len(groups) == 4  # 2 exporters x 2 consignees
    assert sum(g["count"] for g in groups) == 60
    assert sum(r["committed_delta"] for r in agg) == p.committed_tpp == 70_000_000
    assert all(g["citation"] and g["clause"] == "tier2-unlicensed" for g in groups)
