"""The streamed import (``ledger import``): chunk by chunk in one transaction.

Runs on SQLite and PostgreSQL. The file is read, decided and appended a chunk at a
time (tiny chunks here, so every file spans many), and must behave exactly like one
batch: the same stored events as ``submit`` of the whole file, every bad line listed
however late it comes, and nothing appended when any line is bad or when the store
fails in the middle of the append.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.application import ImportRejected, Ledger
from ledger.cli.imports import import_file, read_chunks
from ledger.commands import parse_command
from ledger.errors import StorageError
from ledger.persistence import CHAIN_TABLE, is_postgres

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CHUNK = 50


def _bench_lines(n: int = 300) -> list[dict[str, Any]]:
    from bench.generate import generate

    return list(generate(n, seed=11))


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                            for x in lines))
    return path


def _stored(app: Ledger) -> list[tuple[str, int, str, bytes]]:
    return [(str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
            for n in app.read_stored()]


def _stream(app: Ledger, path: Path, *, skip_bad: bool = False) -> Any:
    return app.import_stream(read_chunks(path, CHUNK), actor="test", skip_bad=skip_bad,
                             now=NOW)


def _ship(ref: str, qty: int = 4) -> dict[str, Any]:
    return {"type": "shipment.recorded", "exporter_id": "EXP01", "shipment_ref": ref,
            "ship_date": "2025-03-01", "destination": "MX", "consignee_id": "c1",
            "product_id": "nvidia-h100-sxm", "quantity": qty,
            "authorization": {"kind": "none"}}


def test_streamed_import_stores_what_one_batch_stores(db_url: str, tmp_path: Path) -> None:
    lines = _bench_lines()
    path = _write(tmp_path / "bench.jsonl", lines)
    assert len(lines) > 6 * CHUNK  # corrections and voids reach back across chunks
    streamed = Ledger(db_url)
    result = _stream(streamed, path)
    assert result.commands == len(lines) and not result.errors
    assert (result.first_position, result.last_position) == (1, result.appended)

    other = tmp_path / "batch.db"
    batch = Ledger(str(other))
    batch.submit([parse_command(x) for x in lines], actor="test", now=NOW)
    assert _stored(streamed) == _stored(batch)
    streamed.close()
    batch.close()


def test_a_bad_line_late_in_a_multi_chunk_file_appends_nothing(ledger: Ledger,
                                                                tmp_path: Path) -> None:
    head = ledger.head()
    lines: list[Any] = [_ship(f"S{i}") for i in range(7 * CHUNK)]
    # a conflicting duplicate of a shipment of the first chunk, decided in chunk 4,
    # a correction that only the earlier chunks make valid, and a malformed last line
    lines.insert(4 * CHUNK, _ship("S3", qty=5))
    lines.insert(5 * CHUNK, {"type": "shipment.corrected", "exporter_id": "EXP01",
                             "shipment_ref": "S1", "quantity": 9, "reason": "recount"})
    lines.append('{"type": "shipment.recorded", "exporter_id": ')
    path = _write(tmp_path / "late.jsonl", lines)

    with pytest.raises(ImportRejected) as e:
        _stream(ledger, path)
    errors = {number: error for number, error in e.value.result.errors}
    assert sorted(errors) == [4 * CHUNK + 1, len(lines)]
    assert "EXP01/S3" in str(errors[4 * CHUNK + 1])
    assert "quantity: 4 then 5" in str(errors[4 * CHUNK + 1])
    assert "malformed JSON" in str(errors[len(lines)])
    assert str(e.value) == f"2 of {len(lines)} commands refused; nothing appended"
    assert ledger.head() == head  # nothing of the file, not even its first chunks

    # --skip-bad appends the good lines of every chunk and lists the same bad ones
    result = _stream(ledger, path, skip_bad=True)
    assert [number for number, _ in result.errors] == sorted(errors)
    assert result.appended == len(lines) - 2
    # and importing the good lines again is a no-op, chunk by chunk as well
    again = _stream(ledger, path, skip_bad=True)
    assert again.appended == 0 and again.duplicates == len(lines) - 2


def test_a_store_failure_during_the_append_appends_nothing(ledger: Ledger, db_url: str,
                                                           tmp_path: Path) -> None:
    head = ledger.head()
    assert head is not None
    fail_at = head[0] + 5 * CHUNK + 7  # in the sixth chunk of the file
    _fail_chain_insert_at(ledger, db_url, fail_at)
    path = _write(tmp_path / "ok.jsonl", [_ship(f"S{i}") for i in range(8 * CHUNK)])
    with pytest.raises(StorageError):
        _stream(ledger, path)
    assert ledger.head() == head
    assert ledger.max_position() == head[0]
    # the ledger is usable afterwards: the same file goes in once the fault is gone
    _drop_fault(ledger, db_url)
    result = _stream(ledger, path)
    assert result.appended == 8 * CHUNK


def test_an_empty_file_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.errors import ValidationError

    path = _write(tmp_path / "empty.jsonl", ["", "   "])
    with pytest.raises(ValidationError, match="no events in the file"):
        import_file(ledger, path)


def _fail_chain_insert_at(app: Ledger, db_url: str, position: int) -> None:
    """A real fault of the store: a trigger that aborts the chain row of one position."""
    if is_postgres(db_url):
        statements = [
            "CREATE FUNCTION ql_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.position = {position} THEN RAISE EXCEPTION 'injected fault'; END IF; "
            "RETURN NEW; END $$",
            f"CREATE TRIGGER ql_fault BEFORE INSERT ON {CHAIN_TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION ql_fault()",
        ]
    else:
        statements = [
            f"CREATE TRIGGER ql_fault BEFORE INSERT ON {CHAIN_TABLE} "
            f"WHEN NEW.position = {position} BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        ]
    _execute(app, db_url, statements)


def _drop_fault(app: Ledger, db_url: str) -> None:
    _execute(app, db_url, [f"DROP TRIGGER ql_fault{' ON ' + CHAIN_TABLE if is_postgres(db_url) else ''}"])


def _execute(app: Ledger, db_url: str, statements: list[str]) -> None:
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    if is_postgres(db_url):
        with datastore.get_connection() as conn:
            for s in statements:
                conn.execute(s)
        return
    with datastore.transaction(commit=True) as c:
        for s in statements:
            c.execute(s)
