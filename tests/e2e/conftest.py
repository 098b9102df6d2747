"""E2E fixtures shared by the CLI tests: ``ledger`` run as a user runs it (a separate
process, its own stdout and stderr), on a small SQLite ledger holding the bundled
rule books and the audit sample (licenses, a G2G allocation, a national VEU, late
reports, a correction and a void)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "audit-sample.jsonl"


def ledger_process(*args: str, db: Path | None = None, columns: int = 200,
                   input: str | None = None, env: dict[str, str] | None = None
                   ) -> subprocess.CompletedProcess[str]:
    """``ledger [--db DB] ARGS`` in a subprocess, stdout not a terminal, $COLUMNS set."""
    environment = {**os.environ, "COLUMNS": str(columns), **(env or {})}
    environment.pop("LEDGER_DB", None)
    prefix = ["--db", str(db)] if db is not None else []
    return subprocess.run([sys.executable, "-m", "ledger", *prefix, *args],
                          capture_output=True, text=True, env=environment, timeout=300,
                          input=input, check=False)


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audit sample on a SQLite file, shared by a module's tests (read only)."""
    db = tmp_path_factory.mktemp("small") / "small.db"
    for args in (("rules", "load", "--bundled"), ("import", str(SAMPLE))):
        done = ledger_process(*args, db=db)
        assert done.returncode == 0, done.stderr
    return db


@pytest.fixture
def run(small_ledger: Path) -> Any:
    def call(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return ledger_process(*args, db=kw.pop("db", small_ledger), **kw)

    return call
