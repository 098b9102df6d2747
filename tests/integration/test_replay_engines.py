"""``ledger replay --engine``: the columnar engine hands over to the per-shipment one
for a ledger it does not model (``auto``), or says why it cannot (``columnar``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import main
from tests.builders import shipment_line

#: TPP values the columnar engine cannot sum in int64 columns: a bound is
#: max(quantity) x max(TPP per unit) x shipments, here over 2**62
HUGE = [
    {"type": "shipment.recorded", "exporter_id": "e1", "shipment_ref": "big-qty",
     "ship_date": "2025-03-01", "destination": "MX", "consignee_id": "c1",
     "product_id": "edge-npu", "tpp_per_unit": 1, "quantity": 100_000_000,
     "authorization": {"kind": "none"}},
    {"type": "shipment.recorded", "exporter_id": "e1", "shipment_ref": "big-tpp",
     "ship_date": "2025-03-02", "destination": "MX", "consignee_id": "c1",
     "product_id": "edge-npu", "tpp_per_unit": 1_000_000_000_000, "quantity": 1,
     "authorization": {"kind": "none"}},
]


def run(db: str, *args: str) -> Any:
    result = CliRunner().invoke(main, ["--db", db, *args])
    return result


def ledger_with(tmp_path: Path, lines: list[dict[str, Any]]) -> str:
    db = str(tmp_path / "ledger.db")
    assert run(db, "rules", "load", "--bundled").exit_code == 0
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = run(db, "import", str(path))
    assert result.exit_code == 0, result.output
    return db


def test_auto_hands_over_to_the_rows_engine_for_values_beyond_int64(tmp_path: Path) -> None:
    db = ledger_with(tmp_path, HUGE)
    replay = ["replay", "--rule", "ai-diffusion-2025", "--json"]
    auto = run(db, *replay)
    assert auto.exit_code == 0, auto.output
    rows = run(db, *replay, "--engine", "rows")
    assert auto.stdout == rows.stdout
    data = json.loads(auto.stdout)
    mx = next(c for c in data["countries"] if c["country"] == "MX")
    # 100,000,000 x 1 TPP per unit is below the control thresholds: not counted
    assert mx["rule"]["committed_tpp"] == 1_000_000_000_000
    forced = run(db, *replay, "--engine", "columnar")
    assert forced.exit_code != 0
    assert "--engine columnar" in forced.output and "int64" in forced.output


def test_engine_must_be_one_of_the_three(tmp_path: Path) -> None:
    db = ledger_with(tmp_path, HUGE[:1])
    bad = run(db, "replay", "--rule", "ai-diffusion-2025", "--engine", "fast")
    assert bad.exit_code == 2
    assert "'fast' is not one of 'auto', 'columnar', 'rows'" in bad.output


def test_columnar_and_rows_give_the_same_table_and_csv(tmp_path: Path) -> None:
    db = ledger_with(tmp_path, HUGE[:1])
    for extra in ([], ["--csv"], ["--csv=changes"]):
        outs = [run(db, "replay", "--rule", "ai-diffusion-2025", *extra, "--engine", e)
                for e in ("columnar", "rows")]
        assert outs[0].exit_code == outs[1].exit_code == 0
        assert outs[0].stdout == outs[1].stdout


#: a license and a VEU valid 2025-03-01..2025-06-30, shipped under on the day before,
#: the first day, the last day and the day after
BOUNDARY_DAYS = [("BEFORE", "2025-02-28"), ("FIRST", "2025-03-01"), ("LAST", "2025-06-30"),
                 ("AFTER", "2025-07-01")]
AUTHORIZED = [
    {"type": "allocation.granted", "allocation_id": "L1", "country": "MX", "holder": "acme",
     "tpp_amount": 10_000, "valid_from": "2025-03-01", "valid_to": "2025-06-30"},
    {"type": "veu.granted", "veu_id": "V1", "entity": "Atlas", "kind": "universal",
     "headquarters_country": "US", "covered_countries": ["MX"], "valid_from": "2025-03-01",
     "valid_to": "2025-06-30"},
    *[shipment_line(f"L-{ref}", day, 5_000, auth="license:L1") for ref, day in BOUNDARY_DAYS],
    *[shipment_line(f"V-{ref}", day, 5_000, auth="veu:V1") for ref, day in BOUNDARY_DAYS],
]


@pytest.mark.parametrize(("last_tpp", "status"), [(9_500, "within-cap"), (9_501, "over-cap")])
def test_the_columnar_engine_at_the_cap_and_on_first_and_last_valid_days(
        tmp_path: Path, last_tpp: int, status: str) -> None:
    # 99,995 x 7,900, 4 x 5,000 outside the license and the VEU and the 10,000 the license
    # used, then the last shipment: exactly the tier-2 cap of 790,000,000 with 9,500 TPP,
    # one TPP over with 9,501
    lines = [*AUTHORIZED, shipment_line("BULK", "2025-03-01", 99_995 * 7_900, units=99_995),
             shipment_line("END", "2025-08-01", last_tpp)]
    db = ledger_with(tmp_path, lines)
    replay = ["replay", "--rule", "ai-diffusion-2025", "--to", "2025-12-31", "--json"]
    columnar = run(db, *replay, "--engine", "columnar")
    rows = run(db, *replay, "--engine", "rows")
    assert columnar.exit_code == 0, columnar.output
    assert columnar.stdout == rows.stdout
    data = json.loads(columnar.stdout)
    mx = next(c for c in data["countries"] if c["country"] == "MX")["rule"]
    assert (mx["committed_tpp"], mx["status"]) == (790_000_000 + last_tpp - 9_500, status)
    breach = {c["shipment_ref"]: c["rule"]["breach"] for c in data["changes"]}
    assert breach == {**dict.fromkeys(breach, False), "END": status == "over-cap"}
    flags = {c["shipment_ref"]: c["rule"]["flag"] for c in data["changes"]
             if c["shipment_ref"][:2] in ("L-", "V-")}
    # L-FIRST and L-LAST are treated alike by both lanes, so they are no change
    assert flags == {"L-BEFORE": "license-invalid", "L-AFTER": "license-invalid",
                     "V-BEFORE": "veu-invalid", "V-FIRST": None, "V-LAST": None,
                     "V-AFTER": "veu-invalid"}
    assert mx["flagged"] == {"license-invalid": {"count": 2, "tpp": 10_000},
                             "unlicensed": {"count": 2, "tpp": 789_960_500 + last_tpp},
                             "veu-invalid": {"count": 2, "tpp": 10_000}}
