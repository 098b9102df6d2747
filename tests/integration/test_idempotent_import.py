"""Importing the same file again is a no-op, on SQLite and PostgreSQL (issue 10,
defect 1): a file that corrects one shipment twice, adjusts one allocation twice and
amends then revokes a VEU (every ``bench.generate`` file does), and lines with a
``command_id``, whose keys are stored with the events in one transaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.generate import write_jsonl
from ledger.application import Ledger

LINES: list[dict[str, Any]] = [
    {"type": "allocation.granted", "allocation_id": "L1", "country": "MX",
     "tpp_amount": 100_000_000, "valid_from": "2025-01-01", "holder": "acme"},
    {"type": "allocation.adjusted", "allocation_id": "L1", "tpp_amount": 120_000_000,
     "effective_date": "2025-02-01", "reason": "amended"},
    {"type": "allocation.adjusted", "allocation_id": "L1", "tpp_amount": 150_000_000,
     "effective_date": "2025-03-01", "reason": "amended again"},
    {"type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "S1",
     "ship_date": "2025-03-01", "destination": "MX", "consignee_id": "c1",
     "product_id": "nvidia-h100-sxm", "quantity": 64, "authorization": {"kind": "none"}},
    {"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "S1",
     "quantity": 72, "reason": "invoice", "command_id": "fix-1"},
    {"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "S1",
     "quantity": 80, "reason": "recount", "command_id": "fix-2"},
]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _count(db_url: str) -> int:
    app = Ledger(db_url)
    try:
        return app.max_position()
    finally:
        app.close()


def test_reimporting_a_file_that_adjusts_and_corrects_twice_appends_nothing(
        run_cli: Any, db_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "f.jsonl", LINES)
    first = run_cli("import", str(path), "--json")
    assert first.exit_code == 0, first.output
    count = _count(db_url)
    again = run_cli("import", str(path), "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output) == {"appended": 0, "positions": None,
                                        "duplicates": len(LINES), "already_applied": True,
                                        "refused": []}
    assert _count(db_url) == count
    # the 72 correction replayed alone, after the 80 one: still 80
    _write(tmp_path / "replay.jsonl", [LINES[4]])
    replay = run_cli("import", str(tmp_path / "replay.jsonl"), "--json")
    assert replay.exit_code == 0 and json.loads(replay.output)["duplicates"] == 1
    assert _count(db_url) == count


def test_reimporting_a_generated_file_is_a_no_op(run_cli: Any, db_url: str,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "gen.jsonl"
    write_jsonl(path, 300, seed=5)
    text = path.read_text()
    assert '"veu.amended"' in text and '"veu.revoked"' in text
    assert run_cli("rules", "load", "--bundled").exit_code == 0
    assert run_cli("import", str(path)).exit_code == 0
    count = _count(db_url)
    again = run_cli("import", str(path), "--json")
    assert again.exit_code == 0, again.output  # today: "VEU ... is revoked"
    assert json.loads(again.output)["appended"] == 0
    assert _count(db_url) == count


def test_command_ids_are_stored_with_the_events(db_url: str, tmp_path: Path) -> None:
    from ledger.commands import parse_command

    app = Ledger(db_url)
    try:
        app.submit([parse_command(x) for x in LINES[3:]], actor="test")
        from ledger.events import shipment_id

        keys = app.applied_keys_of([shipment_id("acme", "S1")])
        assert keys == {shipment_id("acme", "S1"): {"command:fix-1", "command:fix-2"}}
    finally:
        app.close()


def test_ship_correct_replay_is_a_no_op_and_a_command_id_returns_deliberately(
        run_cli: Any, db_url: str) -> None:
    base = ["ship", "correct", "--exporter", "acme", "--ref", "S1"]
    assert run_cli("ship", "record", "--exporter", "acme", "--ref", "S1", "--date",
                   "2025-03-01", "--to", "MX", "--consignee", "c1", "--product",
                   "nvidia-h100-sxm", "--quantity", "64").exit_code == 0
    assert run_cli(*base, "--quantity", "72", "--reason", "invoice").exit_code == 0
    assert run_cli(*base, "--quantity", "80", "--reason", "recount").exit_code == 0
    count = _count(db_url)
    replay = run_cli(*base, "--quantity", "72", "--reason", "invoice")
    assert replay.exit_code == 0 and "already applied" in replay.output
    assert _count(db_url) == count
    back = run_cli(*base, "--quantity", "72", "--reason", "invoice", "--command-id", "back-1")
    assert back.exit_code == 0 and _count(db_url) == count + 1, back.output
    again = run_cli(*base, "--quantity", "72", "--reason", "invoice", "--command-id", "back-1")
    assert "back-1 was already applied" in again.output and _count(db_url) == count + 1
