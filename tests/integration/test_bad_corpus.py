"""The bad-input corpus (``tests/data/bad``, issue 10) through ``ledger import`` on
SQLite and the real PostgreSQL: every file is refused with its bad line's number,
field and value, exit code 1, no traceback, nothing appended (each file's first line
is good: a file is one transaction), the same message on both backends; and
``--skip-bad`` goes on past the bad line, appending the good one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ledger.application import Ledger
from ledger.cli import main
from tests.conftest import drop_postgres_db, new_postgres_db, require_postgres

CORPUS = Path(__file__).parents[1] / "data" / "bad"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())


def _positions(db: str) -> int:
    app = Ledger(db)
    try:
        return app.max_position()
    finally:
        app.close()


def _refusals(db: str) -> dict[str, dict[str, Any]]:
    runner = CliRunner()
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(EXPECTED):
        result = runner.invoke(main, ["--db", db, "import", str(CORPUS / name), "--json"],
                               catch_exceptions=False)
        assert result.exit_code == 1, (name, result.output)
        assert "Traceback" not in result.output, name
        summary = json.loads(result.stdout)
        assert summary["appended"] == 0, name
        (refusal,) = summary["refused"]
        out[name] = refusal
    assert _positions(db) == 0, "something was appended"
    return out


def _check(refusals: dict[str, dict[str, Any]]) -> None:
    for name, refusal in refusals.items():
        expected = EXPECTED[name]
        assert refusal["line"] == expected["line"], (name, refusal)
        assert refusal["field"] == expected["field"], (name, refusal)
        message = refusal["message"]
        if expected["field"] != "(line)" and "required" not in message:
            # names the field and quotes the value
            assert repr(expected["field"].split(".")[0]) in message or "field" in message
            assert any(w in message for w in ("value", "got", "twice", "change")), message


def test_every_bad_file_is_refused_identically_on_both_backends(tmp_path: Path) -> None:
    assert len(EXPECTED) >= 60
    sqlite = _refusals(str(tmp_path / "bad.db"))
    _check(sqlite)
    require_postgres()
    url = new_postgres_db()
    try:
        postgres = _refusals(url)
    finally:
        drop_postgres_db(url)
    assert postgres == sqlite


def test_skip_bad_goes_on_past_a_pathological_line(tmp_path: Path) -> None:
    db = str(tmp_path / "skip.db")
    runner = CliRunner()
    for name in ("line-deeply-nested.jsonl", "recorded-quantity-5000-digits.jsonl"):
        result = runner.invoke(main, ["--db", db, "import", str(CORPUS / name), "--skip-bad",
                                      "--json"], catch_exceptions=False)
        assert result.exit_code == 3, result.output
        summary = json.loads(result.stdout)
        assert [r["line"] for r in summary["refused"]] == [2]
    assert _positions(db) == 1  # the good first line, once
