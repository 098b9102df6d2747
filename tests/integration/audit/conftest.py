"""Fixtures for the audit tests: a demo-like ledger, and raw access to its tables.

``sample_ledger`` is the ``ledger`` fixture (bundled rule books, fresh database on
SQLite and PostgreSQL) plus ``tests/data/audit-sample.jsonl``: licenses, a
country-level allocation, a VEU, unlicensed, licensed, LPP and VEU shipments, a
late-recorded backdated shipment, a correction and a void. ``raw_db`` edits the
stored tables directly, the way a dishonest operator would, outside the ledger.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "audit-sample.jsonl"


def sample_commands() -> list[Any]:
    from ledger.commands import parse_command_line

    return [parse_command_line(line) for line in SAMPLE.read_text().splitlines() if line]


@pytest.fixture(name="sample_commands")
def sample_commands_fixture() -> Any:
    return sample_commands


@pytest.fixture
def second_db(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the same backend as ``db_url`` (restore target)."""
    if not db_url.startswith("postgresql://"):
        yield str(tmp_path / "second.db")
        return
    import psycopg

    base, name = db_url.rsplit("/", 1)
    second = f"{name}_2"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{second}"')
    try:
        yield f"{base}/{second}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{second}" WITH (FORCE)')


@pytest.fixture
def sample_ledger(ledger: Any) -> Any:
    ledger.submit(sample_commands(), actor="cli:auditor-test")
    return ledger


class RawDB:
    """SQL straight on the ledger's tables. ``{pos}`` stands for the position column
    (``rowid`` on SQLite, ``notification_id`` on PostgreSQL); ``?`` for parameters."""

    def __init__(self, url: str):
        self.url = url
        self.pg = url.startswith("postgresql://")
        self.pos = "notification_id" if self.pg else "rowid"
        # eventsourcing names the PostgreSQL table after the application
        self.events = "ledger_events" if self.pg else "stored_events"

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("{pos}", self.pos).replace("stored_events", self.events)
        if self.pg:
            import psycopg

            with psycopg.connect(self.url, autocommit=False) as conn:
                cur = conn.execute(sql.replace("?", "%s"), list(params))
                rows = cur.fetchall() if cur.description else []
                conn.commit()
                return [tuple(r) for r in rows]
        conn = sqlite3.connect(self.url)
        try:
            cur = conn.execute(sql, list(params))
            rows = cur.fetchall()
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def event(self, position: int) -> tuple[Any, ...]:
        """(originator_id, originator_version, topic, state) of one stored event."""
        return self.run("SELECT originator_id, originator_version, topic, state "
                        "FROM stored_events WHERE {pos} = ?", [position])[0]

    def set_event(self, position: int, values: tuple[Any, ...]) -> None:
        self.run("UPDATE stored_events SET originator_id = ?, originator_version = ?, "
                 "topic = ?, state = ? WHERE {pos} = ?", [*values, position])

    def swap(self, p: int, q: int) -> None:
        """Swap the contents of two events (the unique key forces a detour)."""
        a, b = self.event(p), self.event(q)
        self.run("UPDATE stored_events SET originator_version = originator_version + 1000000 "
                 "WHERE {pos} = ?", [p])
        self.set_event(q, a)
        self.set_event(p, b)


@pytest.fixture
def raw_db(db_url: str) -> Iterator[RawDB]:
    yield RawDB(db_url)
