"""The details of the audit trail an auditor relies on: a partial export continues the
chain of what precedes it, each format's exact encoding, the link cited at a position,
restore's refusals, and the errors for an unreadable export line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.audit import (
    GENESIS_HASH,
    RestoreError,
    chain_hash_at,
    export_rows,
    parse_export_line,
    read_chain_rows,
    restore,
    write_csv,
    write_jsonl,
)
from ledger.commands import parse_command


def test_a_partial_export_continues_the_link_before_it(sample_ledger: Any) -> None:
    links = read_chain_rows(sample_ledger)
    rows = list(export_rows(sample_ledger, 5, 7))
    assert [r["position"] for r in rows] == [5, 6, 7]
    assert [r["prev_hash"] for r in rows] == [links[3].hash, links[4].hash, links[5].hash]
    assert [r["chain_hash"] for r in rows] == [links[4].hash, links[5].hash, links[6].hash]
    assert [r["recorded_at"] for r in rows] == [c.recorded_at for c in links[4:7]]
    first = list(export_rows(sample_ledger, 1, 1))
    assert [r["prev_hash"] for r in first] == [GENESIS_HASH]
    assert [r["position"] for r in export_rows(sample_ledger)] == list(range(1, 28))
    second = list(export_rows(sample_ledger, 2, 2))
    assert [r["prev_hash"] for r in second] == [links[0].hash]
    assert len(list(export_rows(sample_ledger, 26))) == 2
    for row in rows:
        assert "effective_date" not in row["fields"] and "actor" not in row["fields"]


def test_chain_hash_at_a_position(sample_ledger: Any) -> None:
    links = read_chain_rows(sample_ledger)
    assert chain_hash_at(sample_ledger, 4) == links[3].hash
    assert chain_hash_at(sample_ledger, 27) == links[-1].hash
    assert chain_hash_at(sample_ledger, 28) is None
    assert [c.position for c in read_chain_rows(sample_ledger, 3, 5)] == [3, 4, 5]


def test_jsonl_and_csv_encodings(sample_ledger: Any) -> None:
    sample_ledger.submit([parse_command({
        "type": "shipment.voided", "exporter_id": "acme", "shipment_ref": "S-100",
        "reason": "annulé par le client"})], actor="cli:auditor-test")
    rows = list(export_rows(sample_ledger, 27))
    out = io.StringIO()
    assert write_jsonl(rows, out) == 2
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and len(lines) == 3
    assert "annulé" in lines[1]  # not \u-escaped
    assert lines[1] == json.dumps(rows[1], sort_keys=True, ensure_ascii=False)
    assert list(json.loads(lines[1])) == sorted(rows[1])

    out = io.StringIO()
    rows = list(export_rows(sample_ledger, 1, 28))
    assert write_csv(rows, out) == 28
    text = out.getvalue()
    assert "\r" not in text
    table = list(csv.DictReader(io.StringIO(text)))
    rule = table[0]
    assert rule["type"] == "rule.published"
    document = json.loads(rule["fields.document"])  # a rule book is one JSON cell
    assert document["id"] and rule["fields.document"] == json.dumps(
        document, sort_keys=True, ensure_ascii=False)
    assert rule["fields.shipment_ref"] == ""  # a column other events have
    nones = [(i, k) for i, r in enumerate(rows) for k, v in r["fields"].items() if v is None]
    assert nones  # optional fields left out, e.g. an allocation without valid_to
    assert all(table[i][f"fields.{k}"] == "" for i, k in nones)
    void = table[-1]
    assert void["fields.reason"] == "annulé par le client"
    nested = next(r for r in table if r["type"] == "shipment.recorded")
    assert nested["fields.shipment.authorization.kind"] in ("none", "license", "lpp", "veu")


def test_restore_refuses_a_ledger_with_events_but_no_chain(sample_ledger: Any, raw_db: Any,
                                                           tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in export_rows(sample_ledger, 1, 2)]
    rows = [parse_export_line(line, i) for i, line in enumerate(lines, 1)]
    target = Ledger(str(tmp_path / "target.db"))
    try:
        assert restore(target, []) == 0
        assert restore(target, rows) == 2
    finally:
        target.close()
    raw_db.run("DELETE FROM ledger_chain")
    with pytest.raises(RestoreError, match=r"^the target ledger has events but no chain: "
                                           r"refusing to restore$"):
        restore(sample_ledger, rows)


def test_unreadable_export_lines_name_the_line_and_field(sample_ledger: Any) -> None:
    good = next(export_rows(sample_ledger, 3, 3))
    row = parse_export_line(json.dumps(good), 1)
    assert (row.stored.position, row.link.position, row.prev_hash) == (3, 3, good["prev_hash"])
    assert row.stored.state == good["stored"]["state"].encode("utf-8")
    with pytest.raises(RestoreError, match=r"^line 4: not an audit export line"):
        parse_export_line("{nope", 4)
    with pytest.raises(RestoreError, match=r"^line 5: not an audit export line"):
        parse_export_line(json.dumps({**good, "position": "three"}), 5)
    missing = {k: v for k, v in good.items() if k != "chain_hash"}
    with pytest.raises(RestoreError, match=r"^line 6: field 'chain_hash' is missing; restore "
                                           r"takes 'ledger audit export --format jsonl' output$"):
        parse_export_line(json.dumps(missing), 6)


def test_an_export_stops_at_an_event_without_its_chain_row(sample_ledger: Any,
                                                           raw_db: Any) -> None:
    from ledger.audit import AuditError

    raw_db.run("DELETE FROM ledger_chain WHERE position = ?", [9])
    assert len(list(export_rows(sample_ledger, 1, 8))) == 8
    with pytest.raises(AuditError, match=r"^event at position 9 has no chain row; run "
                                         r"'ledger audit verify'$"):
        list(export_rows(sample_ledger, 1, 9))
