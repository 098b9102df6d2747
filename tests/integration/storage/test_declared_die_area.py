"""Declared die areas in the read model, on both backends: the read model's answers
(the indexed lookup and the fold of its rows) equal the full fold of the events for a
ledger whose unknown products carry, gain, keep and lose a die area; and a read model
created before the ``die_area_mm2`` column gets it without a rebuild."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ledger.application import Ledger
from ledger.commands import parse_command
from projections.readmodel import ReadModel, _columns
from projections.views import load_state, quota, readmodel_quota, readmodel_quota_all

H20 = 2_368
COUNTRIES = ["CN", "MX", "IN", "BR"]
RULES = [None, "baseline-2023", "ai-diffusion-2025"]


def declared(ref: str, dest: str, *, tpp: int = H20, die_area: Any = None,
             day: str = "2024-06-01", product: str = "custom-asic") -> Any:
    data: dict[str, Any] = {
        "type": "shipment.recorded", "exporter_id": "EXP01", "shipment_ref": ref,
        "ship_date": day, "destination": dest, "consignee_id": "C1", "product_id": product,
        "quantity": 10, "tpp_per_unit": tpp, "authorization": {"kind": "none"}}
    if die_area is not None:
        data["die_area_mm2"] = die_area
    return parse_command(data)


def correction(ref: str, **changes: Any) -> Any:
    return parse_command({"type": "shipment.corrected", "exporter_id": "EXP01",
                          "shipment_ref": ref, "reason": "datasheet", **changes})


def ledger_with_die_areas(ledger: Ledger) -> int:
    """Shipments with and without a declared die area, then corrections declaring one,
    changing the product (which drops it) and the TPP (which keeps it); returns the
    position between the two."""
    ledger.submit([
        declared("D1", "CN", die_area="814"),          # H20-like: below 3A090
        declared("D2", "CN"),                           # unknown density: controlled
        declared("D3", "MX", die_area="400"),           # PD exactly 5.92: 3A090.a
        declared("D4", "MX", die_area="400.001", day="2025-03-01"),  # PD < 5.92
        declared("D5", "IN", tpp=3_000, die_area="500.5", day="2025-03-01"),
        declared("D6", "BR", day="2025-03-01"),
        declared("D7", "CN", die_area="814", day="2024-07-01"),
    ], actor="t")
    mid = ledger.max_position()
    ledger.submit([
        correction("D2", die_area_mm2="814"),                       # now uncontrolled
        correction("D1", product_id="other-asic", tpp_per_unit=H20),  # loses its die area
        correction("D4", tpp_per_unit=2_400),                      # keeps it
        correction("D6", die_area_mm2=400, destination="MX"),
        correction("D7", product_id="nvidia-h20"),                 # catalog: its density
    ], actor="t")
    return mid


def test_read_model_equals_the_full_fold_with_declared_die_areas(ledger: Ledger) -> None:
    mid = ledger_with_die_areas(ledger)
    full = {k: load_state(ledger, k) for k in (None, mid)}
    for known_at in (None, mid):
        for country in COUNTRIES:
            for rule in RULES:
                for as_of in (dt.date(2024, 12, 31), dt.date(2025, 6, 30)):
                    for explain in (False, True):
                        want = quota(full[known_at], country, as_of, rule_id=rule,
                                     known_at=known_at, explain=explain)
                        got = readmodel_quota(ledger, country, as_of, rule_id=rule,
                                              known_at=known_at, explain=explain)
                        assert got == want, (country, rule, as_of, known_at, explain)
    for rule in RULES:
        assert readmodel_quota_all(ledger, dt.date(2025, 6, 30), rule_id=rule) == [
            quota(full[None], c, dt.date(2025, 6, 30), rule_id=rule)
            for c in full[None].countries_with_activity()]
    # the declared die areas are what the rows hold, and they decide the answer
    rows = ReadModel(ledger).full_state().shipments
    areas = {ref: rows[("EXP01", ref)].fields.die_area_mm2 for _e, ref in rows}
    assert areas == {"D1": None, "D2": Decimal(814), "D3": Decimal(400),
                     "D4": Decimal("400.001"), "D5": Decimal("500.5"), "D6": Decimal(400),
                     "D7": None}
    cn = readmodel_quota(ledger, "CN", dt.date(2024, 12, 31), rule_id="baseline-2023")
    cn_before = readmodel_quota(ledger, "CN", dt.date(2024, 12, 31), rule_id="baseline-2023",
                                known_at=mid)
    # before the corrections only D2 (no die area) is controlled in China, D1 and D7
    # being declared below 3A090; after them D1 has lost its die area (controlled), D2
    # has gained one and D7 is the catalog's H20 (below 3A090 before the notice)
    assert cn_before.flagged["unlicensed"].count == 1
    assert cn.flagged["unlicensed"].count == 1
    assert {c.identity for c in readmodel_quota(
        ledger, "CN", dt.date(2024, 12, 31), rule_id="baseline-2023",
        explain=True).contributions or [] if c.flag == "unlicensed"} == {"EXP01/D1"}


def test_an_old_read_model_gets_the_column(db_url: str) -> None:
    from ledger.commands import PublishRuleRevision
    from ledger.rulebook import bundled_rulebooks

    app = Ledger(db_url)
    app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()], actor="t")
    app.submit([declared("O1", "CN"), declared("O2", "MX", product="nvidia-h100-sxm",
                                                tpp=15_832)], actor="t")
    rm = ReadModel(app)
    rm.rebuild()
    # the read model as an earlier version of the ledger left it: without the column
    with rm._tx() as c:
        c.execute("ALTER TABLE rm_shipment_versions DROP COLUMN die_area_mm2")
        assert "die_area_mm2" not in _columns(c, "rm_shipment_versions")
    app.close()

    app = Ledger(db_url)  # a new process: nothing remembered about the schema
    app.submit([declared("N1", "CN", die_area="814"), correction("O1", die_area_mm2="814")],
               actor="t")
    as_of = dt.date(2024, 12, 31)
    got = readmodel_quota(app, "CN", as_of, rule_id="baseline-2023", explain=True)
    assert got == quota(load_state(app), "CN", as_of, rule_id="baseline-2023", explain=True)
    assert "unlicensed" not in got.flagged  # both declared below 3A090 now
    rm = ReadModel(app)
    with rm._tx(commit=False) as c:
        assert "die_area_mm2" in _columns(c, "rm_shipment_versions")
        rows = c.execute("SELECT shipment_ref, die_area_mm2 FROM rm_shipment_versions "
                         "WHERE recorded_to IS NULL ORDER BY shipment_ref").fetchall()
    assert [tuple(r) for r in rows] == [("N1", "814"), ("O1", "814"), ("O2", None)]
    app.close()
