"""E2E fixtures for auditing: the ``ledger`` CLI run as a user runs it (a subprocess),
on a SQLite ledger holding the bundled rule books and the audit sample."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "audit-sample.jsonl"


def run_ledger(db: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("LEDGER_DB", None)
    result = subprocess.run([sys.executable, "-m", "ledger", "--db", str(db), *args],
                            capture_output=True, text=True, env=env, timeout=120,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"ledger {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def tool(name: str) -> str:
    """A console script installed beside this Python (the test extras), or skip
    locally / fail under CI."""
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    pytest.skip(f"{name} is not installed")


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    db = tmp_path / "audit.db"
    run_ledger(db, "rules", "load", "--bundled")
    run_ledger(db, "import", str(SAMPLE))
    return db


@pytest.fixture
def cli() -> Any:
    return run_ledger


@pytest.fixture
def bean_check_bin() -> str:
    return tool("bean-check")
