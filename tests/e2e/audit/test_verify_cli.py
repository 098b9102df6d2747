"""The auditor's round as a user runs it: keep the head, an operator edits one byte in
the SQLite file, ``ledger audit verify`` names the position and exits 5."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def test_head_then_byte_edit_then_verify(cli: Any, sample_db: Path) -> None:
    head_line = cli(sample_db, "audit", "head").stdout.splitlines()[-1]
    assert head_line.startswith("--expect-head 27:")
    ok = cli(sample_db, "audit", "verify", *head_line.split())
    assert ok.stdout.startswith("OK: 27 events, 27 links verified")
    assert "extends the expected head 27" in ok.stdout

    with sqlite3.connect(sample_db) as conn:
        state = bytes(conn.execute("SELECT state FROM stored_events WHERE rowid = 10")
                      .fetchone()[0])
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 10",
                     [state.replace(b'"quantity":10000', b'"quantity":10001')])
    broken = cli(sample_db, "audit", "verify", *head_line.split(), check=False)
    assert broken.returncode == 5
    lines = broken.stdout.splitlines()
    assert lines[:2] == [
        "BROKEN: 1 break(s) in 27 events / 27 links",
        ("  position 10: edited: the stored event (bytes, identity or type) or its recorded "
         "time differs from what the chain linked at position 10"),
    ]
    # and what to do: restore and verify, not rebuild from the altered log
    assert len(lines) == 3 and lines[2].startswith("what to do: the event log itself")
    assert "Traceback" not in broken.stderr
