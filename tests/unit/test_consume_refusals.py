"""``ledger consume`` refuses to start on a ledger with no rule revision, before it
connects to Kafka (nothing it appended could be counted), and says what to run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ledger.cli import main


def test_consume_refuses_a_ledger_without_rules(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    grant = tmp_path / "a.jsonl"
    grant.write_text(json.dumps({"type": "allocation.granted", "allocation_id": "A1",
                                 "country": "MX", "tpp_amount": 1000,
                                 "valid_from": "2025-01-01"}) + "\n")
    assert CliRunner().invoke(main, ["--db", db, "import", str(grant)]).exit_code == 0
    ring = tmp_path / "keyring.json"
    ring.write_text('{"keys": []}')
    # an address nothing listens on: the refusal must come before any connection
    r = CliRunner().invoke(main, ["--db", db, "consume", "--bootstrap", "127.0.0.1:9",
                                  "--topic", "t", "--group", "g", "--keyring", str(ring)])
    assert r.exit_code == 1, r.output
    assert "no rule revision" in r.output and "ledger rules load --bundled" in r.output
