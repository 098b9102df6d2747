"""The chain is written with the events, and the trail leaves and comes back intact.

- a failing write leaves neither an event nor a chain row (one transaction), on both
  backends, whichever half fails;
- export as JSON Lines, restore into an empty ledger: same positions, same recorded
  times, same bytes, same head hash, and the restored ledger verifies;
- a CSV export carries every field as a column.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.application import Ledger
from ledger.audit import RestoreError, parse_export_line, restore, verify
from ledger.commands import parse_command
from ledger.errors import StorageError


def counts(raw_db: Any) -> tuple[int, int]:
    events = raw_db.run("SELECT COUNT(*) FROM stored_events")[0][0]
    links = raw_db.run("SELECT COUNT(*) FROM ledger_chain")[0][0]
    return int(events), int(links)


def test_failing_chain_insert_leaves_no_event(sample_ledger: Any, raw_db: Any) -> None:
    """Plant a chain row where the next link must go: the append fails as a whole."""
    before = counts(raw_db)
    head = sample_ledger.head()
    for extra in range(1, 8):  # PostgreSQL may skip ids after a failed insert
        raw_db.run("INSERT INTO ledger_chain VALUES (?, ?, ?)",
                   [head[0] + extra, "2099-01-01T00:00:00.000000+00:00", "ee" * 32])
    from ledger.commands import parse_command

    cmd = parse_command({"type": "shipment.recorded", "exporter_id": "acme",
                         "shipment_ref": "TX-1", "ship_date": "2025-08-01",
                         "destination": "MX", "consignee_id": "mx-dc-1",
                         "product_id": "nvidia-h100-sxm", "quantity": 10,
                         "authorization": {"kind": "none"}})
    with pytest.raises((StorageError, IntegrityError)):
        sample_ledger.submit([cmd])
    assert counts(raw_db) == (before[0], before[1] + 7)  # no event, only the planted rows
    raw_db.run("DELETE FROM ledger_chain WHERE position > ?", [head[0]])
    sample_ledger.submit([cmd])
    assert counts(raw_db) == (before[0] + 1, before[1] + 1)
    assert verify(sample_ledger).ok


def test_failing_event_insert_leaves_no_chain_row(sample_ledger: Any, raw_db: Any) -> None:
    """A conflicting (aggregate, version) fails the event insert: no link is written."""
    before, head = counts(raw_db), sample_ledger.head()
    first = next(sample_ledger.read_stored(1, 1))
    clash = StoredEvent(originator_id=first.originator_id, originator_version=1,
                        topic=first.topic, state=first.state)
    fresh = StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=first.topic,
                        state=first.state)
    with pytest.raises(IntegrityError):
        sample_ledger.recorder.insert_events([fresh, clash])
    assert counts(raw_db) == before
    assert sample_ledger.head() == head
    assert verify(sample_ledger).ok


def test_export_restore_round_trip(sample_ledger: Any, run_cli: Any, second_db: str,
                                   sample_commands: Any, tmp_path: Path) -> None:
    out = tmp_path / "trail.jsonl"
    result = run_cli("audit", "export", "--format", "jsonl", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 27
    row = json.loads(lines[-1])
    assert {"position", "recorded_at", "effective_date", "type", "actor", "fields",
            "chain_hash", "prev_hash", "stored"} <= set(row)
    assert row["actor"] == "cli:auditor-test"

    target = Ledger(second_db)
    try:
        restored = restore(target, [parse_export_line(line, i)
                                    for i, line in enumerate(lines, 1)])
        assert restored == 27
        assert target.head() == sample_ledger.head()
        assert [n.id for n in target.read_stored()] == [n.id for n in sample_ledger.read_stored()]
        assert [bytes(n.state) for n in target.read_stored()] == \
            [bytes(n.state) for n in sample_ledger.read_stored()]
        assert verify(target).ok
        # the restored ledger answers the same and takes new appends on top
        target.submit(sample_commands()[-1:])  # identical: a no-op duplicate
        assert target.head() == sample_ledger.head()
        with pytest.raises(RestoreError, match="continues link"):
            restore(target, [parse_export_line(lines[0], 1)])
        # new facts append after the restored positions (PostgreSQL's id sequence too)
        positions = target.submit([parse_command({
            "type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "AFTER-1",
            "ship_date": "2025-09-01", "destination": "MX", "consignee_id": "mx-dc-1",
            "product_id": "nvidia-h100-sxm", "quantity": 5,
            "authorization": {"kind": "none"}})]).positions
        assert positions == [28]
        assert verify(target).ok
    finally:
        target.close()


def test_restore_refuses_an_altered_export(sample_ledger: Any, run_cli: Any, tmp_path: Path
                                           ) -> None:
    out = tmp_path / "trail.jsonl"
    run_cli("audit", "export", "--out", str(out))
    lines = out.read_text().splitlines()
    data = json.loads(lines[12])
    data["stored"]["state"] = data["stored"]["state"].replace('"quantity":', '"quantity":9')
    lines[12] = json.dumps(data)
    target = Ledger(str(tmp_path / "restored.db"))
    try:
        with pytest.raises(RestoreError, match="position 13: the exported event does not "
                                               "match its chain hash"):
            restore(target, [parse_export_line(line, i) for i, line in enumerate(lines, 1)])
        assert target.max_position() == 0  # checked before anything was written
    finally:
        target.close()


def test_cli_import_of_an_export(sample_ledger: Any, run_cli: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ledger.cli import main

    out = tmp_path / "trail.jsonl"
    run_cli("audit", "export", "--out", str(out))
    copy = str(tmp_path / "copy.db")
    result = CliRunner().invoke(main, ["--db", copy, "audit", "import", str(out)])
    assert result.exit_code == 0, result.output
    position, _, digest = sample_ledger.head()
    assert f"27 events restored; chain verified OK; head {position}:{digest}" in result.output


def test_csv_export_has_every_field(sample_ledger: Any, run_cli: Any) -> None:
    result = run_cli("audit", "export", "--format", "csv", "--from", "6", "--to", "12")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [int(r["position"]) for r in rows] == list(range(6, 13))
    lic = rows[0]
    assert lic["type"] == "allocation.granted"
    assert lic["fields.allocation_id"] == "LIC-MX-ACME-1"
    assert lic["fields.tpp_amount"] == "200000000"
    assert lic["actor"] == "cli:auditor-test"
    ship = next(r for r in rows if r["type"] == "shipment.recorded")
    assert ship["fields.shipment.quantity"] == "10000"
    assert ship["effective_date"] == ship["fields.shipment.ship_date"]
    assert all(len(r["chain_hash"]) == 64 for r in rows)

