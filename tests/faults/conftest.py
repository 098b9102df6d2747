"""Fixtures and probes of the fault-injection suite (``tests/faults``).

The suite runs the ledger as its users' processes do, many at once and killed at
seeded random moments, on both stores (``db_url``: a SQLite file and a fresh
PostgreSQL database), and then checks invariants only, never timings: every write
is all or nothing, positions are unique, the hash chain and the read models verify.

``Writers`` starts worker processes (``worker.py``) that wait at a barrier and are
released together. ``holds_write_lock`` tells whether another process is inside a
write transaction right now (SQLite: the database's write lock; PostgreSQL: a lock
on the named tables), so a SIGKILL can be aimed into the middle of one.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the Kafka fixtures (a Tansu broker per session, topics, exporters' keys) for the
# consumer's SIGKILL test
from tests.integration.kafka.conftest import (  # noqa: F401
    exporter_keys,
    kafka_bootstrap,
    key_dir,
    keyring_path,
    new_topic,
)

WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[2]


def ledger_cmd(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "ledger", "--db", db, *args]


class Writers:
    """Worker processes released together from a barrier."""

    def __init__(self, folder: Path):
        self.barrier = folder / "barrier"
        self.barrier.mkdir()
        self.logs = folder
        self.procs: list[tuple[str, subprocess.Popen[str]]] = []

    def start(self, name: str, mode: str, db: str, *args: str) -> None:
        env = {**os.environ, "FAULTS_BARRIER": str(self.barrier), "COLUMNS": "200"}
        env.pop("LEDGER_DB", None)
        proc = subprocess.Popen([sys.executable, str(WORKER), mode, db, *args], env=env,
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        self.procs.append((name, proc))

    def release(self, timeout: float = 180.0) -> None:
        """Wait until every worker is at the barrier, then let them all go."""
        deadline = time.monotonic() + timeout
        while len(list(self.barrier.glob("ready-*"))) < len(self.procs):
            dead = [n for n, p in self.procs if p.poll() is not None]
            assert not dead, f"workers died before the barrier: {dead}: {self.output(dead[0])}"
            assert time.monotonic() < deadline, "workers never reached the barrier"
            time.sleep(0.02)
        (self.barrier / "go").touch()

    def wait(self, names: list[str] | None = None, timeout: float = 300.0
             ) -> dict[str, tuple[int, str]]:
        """{name: (exit code, output)} once the named workers (all) have ended."""
        out: dict[str, tuple[int, str]] = {}
        for name, proc in self.procs:
            if names is not None and name not in names:
                continue
            text, _ = proc.communicate(timeout=timeout)
            out[name] = (proc.returncode, text)
        return out

    def output(self, name: str) -> str:
        proc = dict(self.procs)[name]
        return proc.stdout.read() if proc.stdout else ""

    def kill_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[Writers]:
    w = Writers(tmp_path)
    try:
        yield w
    finally:
        w.kill_all()


def is_pg(db: str) -> bool:
    return db.startswith("postgresql://")


def query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read-only SQL on the ledger's database (``?`` placeholders)."""
    if is_pg(db):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), params).fetchall()]
    conn = sqlite3.connect(db, timeout=30)
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def events_table(db: str) -> str:
    return "ledger_events" if is_pg(db) else "stored_events"


def position_column(db: str) -> str:
    return "notification_id" if is_pg(db) else "rowid"


def holds_write_lock(db: str, tables: tuple[str, ...]) -> bool:
    """Whether another process is inside a write transaction on ``db`` now.

    SQLite has one write lock per database: BEGIN IMMEDIATE without waiting fails
    while a writer holds it (and when it succeeds, it is rolled back at once).
    PostgreSQL: a granted lock of another backend on one of ``tables`` stronger than
    a plain read (eventsourcing's EXCLUSIVE lock of the events table, a read-model
    write's ROW EXCLUSIVE)."""
    if is_pg(db):
        rows = query(db, "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                         "WHERE l.pid <> pg_backend_pid() AND l.granted "
                         "AND l.mode IN ('RowExclusiveLock', 'ExclusiveLock', "
                         "'AccessExclusiveLock') AND c.relname = ANY(?) LIMIT 1",
                     (list(tables),))
        return bool(rows)
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return True
        raise
    finally:
        conn.close()


def kill_inside_write(proc: subprocess.Popen[Any], db: str, tables: tuple[str, ...],
                      pause: float, timeout: float = 120.0) -> bool:
    """SIGKILL ``proc`` ``pause`` seconds after it is first seen inside a write
    transaction. Returns whether it was still running when killed (False: it ended
    before a write transaction was seen)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if holds_write_lock(db, tables):
            time.sleep(pause)
            break
        time.sleep(0.003)
    alive = proc.poll() is None
    proc.kill()
    proc.wait()
    return alive and proc.returncode == -9


def audit_ok(db: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``ledger audit verify`` as a user runs it; asserts it passes."""
    result = subprocess.run(ledger_cmd(db, "audit", "verify", *extra), capture_output=True,
                            text=True, timeout=300, check=False, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def verified(db: str, *, read_model: bool = False) -> None:
    """The chain verifies (and the read models give the log's answers), checked
    in-process: the cheap check between kills; ``audit_ok`` runs the CLI."""
    from ledger.application import Ledger
    from ledger.audit import verify

    app = Ledger(db, create=False)
    try:
        result = verify(app, None)
        assert result.ok, [f"{b.position}: {b.kind}: {b.message}" for b in result.breaks]
        if read_model:
            from projections.views import read_model_differences

            assert read_model_differences(app) == []
    finally:
        app.close()
