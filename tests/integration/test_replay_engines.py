"""``ledger replay --engine``: the columnar engine hands over to the per-shipment one
for a ledger it does not model (``auto``), or says why it cannot (``columnar``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ledger.cli import main

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
