"""`ledger audit verify --read-model`: the derived tables behind `ledger quota` are
outside the hash chain, so the check recomputes the answers from the chained log."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import psycopg

from ledger.persistence import is_postgres


def test_an_edited_read_model_row_is_caught(run_cli: Any, db_url: str, tmp_path: Any) -> None:
    run_cli("rules", "load", "--bundled")
    line = {"type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "S1",
            "ship_date": "2025-03-01", "destination": "PL", "consignee_id": "c1",
            "product_id": "nvidia-h100-sxm", "quantity": 1000,
            "authorization": {"kind": "none"}}
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(line) + "\n")
    assert run_cli("import", str(path)).exit_code == 0
    assert run_cli("quota", "--country", "PL", "--as-of", "2025-06-30").exit_code == 0
    clean = run_cli("audit", "verify", "--read-model")
    assert clean.exit_code == 0 and "read model gives the log's answer" in clean.output

    sql = "UPDATE rm_shipment_versions SET quantity = 1"
    if is_postgres(db_url):
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql)
    else:
        with sqlite3.connect(db_url) as conn:
            conn.execute(sql)
    tampered = run_cli("audit", "verify", "--read-model", "--json")
    assert tampered.exit_code == 5
    differences = json.loads(tampered.output)["read_model_differences"]
    assert differences and all(d.startswith("PL as of 2025-03-01") for d in differences)
    diffusion = [d for d in differences if "under ai-diffusion-2025" in d]
    assert diffusion and "the log says 15,832,000 TPP" in diffusion[0]
