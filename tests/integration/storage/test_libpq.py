"""projections.libpq against the real PostgreSQL server: the lean connection (libpq
through ctypes) runs every statement of the indexed quota lookup with the same rows,
values and Python types as psycopg; a ``ledger quota --json`` process prints the same
bytes either way and, when the index answers, never imports psycopg; a bad URL or an
unreachable server falls back, and the full path reports it as before."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from ledger.application import Ledger
from ledger.cli import main
from ledger.commands import PublishRuleRevision, parse_command
from ledger.rulebook import bundled_rulebooks
from projections import libpq, position_index
from projections.position_index import Miss, _Bare, _lookup_caught_up

from tests.conftest import drop_postgres_db, new_postgres_db, require_postgres
from tests.integration.storage.storage_helpers import shipment
from tests.integration.test_quota_startup import PROBE

pytestmark = pytest.mark.postgres

COUNTRIES = ["MX", "BR", "AE"]
DAYS = [dt.date(2024, 6, 30), dt.date(2025, 3, 31), dt.date(2025, 6, 30),
        dt.date(2026, 6, 30)]
#: (rule_id, on_the_books) of the questions
CHOICES: list[tuple[str | None, bool]] = [(None, False), ("ai-diffusion-2025", False),
                                          (None, True)]
LIC = {"kind": "license", "ref": "LIC-1"}
VEU = {"kind": "veu", "ref": "VEU-1"}
#: the ledger's batches, each asked about (through the CLI) before the next is recorded,
#: so pairs are built, then refreshed (their past rows kept for --known-at)
BATCHES: list[list[Any]] = [
    [{"type": "allocation.granted", "allocation_id": "LIC-1", "country": "MX",
      "holder": "EXP01", "tpp_amount": 15832 * 2000, "valid_from": "2025-01-01"},
     shipment("A", quantity=300, auth=LIC, day="2025-04-01"),
     shipment("B", dest="BR", quantity=50, day="2025-03-01")],
    [{"type": "veu.granted", "veu_id": "VEU-1", "entity": "DC", "kind": "national",
      "headquarters_country": "US", "covered_countries": ["MX", "AE"],
      "valid_from": "2025-01-01"},
     shipment("C", quantity=30, auth=VEU, day="2025-05-01"),
     shipment("D", dest="AE", quantity=70, auth=VEU, day="2025-02-01"),
     {"type": "allocation.granted", "allocation_id": "G2G-1", "country": "AE",
      "tpp_amount": 10**9, "valid_from": "2025-03-01"}],
    [{"type": "shipment.corrected", "exporter_id": "EXP01", "shipment_ref": "B",
      "reason": "wrong destination", "destination": "MX", "ship_date": "2025-02-01"},
     {"type": "allocation.adjusted", "allocation_id": "LIC-1", "tpp_amount": 15832 * 10,
      "effective_date": "2025-02-01", "reason": "cut"},
     shipment("E", dest="BR", quantity=5, day="2025-01-02")],
    [{"type": "shipment.voided", "exporter_id": "EXP01", "shipment_ref": "C",
      "reason": "cancelled"},
     {"type": "veu.revoked", "veu_id": "VEU-1", "effective_date": "2025-06-01",
      "reason": "revoked"}],
]


def _questions(url: str) -> list[list[str]]:
    out = []
    for country in COUNTRIES:
        for day in DAYS:
            for rule_id, books in CHOICES:
                argv = ["--db", url, "quota", "--country", country, "--as-of", str(day),
                        "--json"]
                out.append(argv + (["--rule", rule_id] if rule_id else [])
                           + (["--on-the-books"] if books else []))
    return out


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[str, list[int]]]:
    """A PostgreSQL ledger with allocations, VEUs, corrections and a void, its index
    built and refreshed batch by batch; (its URL, the position after each batch)."""
    require_postgres()
    url = new_postgres_db()
    app = Ledger(url)
    try:
        app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()],
                   actor="t")
        positions = []
        for batch in BATCHES:
            app.submit([parse_command(c) if isinstance(c, dict) else c for c in batch],
                       actor="t")
            positions.append(app.max_position())
            for argv in _questions(url):
                if "--on-the-books" in argv:
                    continue  # the fold answers those: nothing to build
                assert CliRunner().invoke(main, argv, catch_exceptions=False).exit_code == 0
        yield url, positions
    finally:
        app.close()
        drop_postgres_db(url)


class _Recording:
    """A cursor that keeps every statement it ran, with its rows and their types."""

    def __init__(self, raw: Any):
        self.raw = raw
        self.log: list[tuple[str, tuple[Any, ...], list[Any]]] = []
        self.rows: list[Any] = []

    def execute(self, query: str, params: Sequence[Any] = ()) -> _Recording:
        self.rows = self.raw.execute(query, params).fetchall()
        typed = [tuple((type(v).__name__, v) for v in row) for row in self.rows]
        self.log.append((query, tuple(params), typed))
        return self

    def fetchall(self) -> list[Any]:
        return self.rows


def _lookup(conn: Any, country: str, day: dt.date, rule_id: str | None, books: bool,
            known_at: int | None) -> tuple[Any, list[Any]]:
    """(the lookup's answer or Miss reason, the statements it ran) on ``conn``."""
    with conn.cursor() as raw:
        c = _Recording(raw)
        try:
            answer: Any = _lookup_caught_up(_Bare(c, True), country, day, rule_id, books,
                                            known_at)
        except Miss as miss:
            answer = ("miss", miss.reason)
        return answer, c.log


def test_every_statement_of_the_lookup_reads_the_same_rows_and_types(
        built: tuple[str, list[int]]) -> None:
    url, positions = built
    lean = libpq.LeanConnection(libpq._library(), url, 5)
    seen_sql: set[str] = set()
    seen_types: set[str] = set()
    answers = 0
    with lean, psycopg.connect(url, connect_timeout=5) as pg:
        for known_at in [None, *positions, positions[0] - 1, 0, positions[-1] + 5]:
            for country in COUNTRIES:
                for day in DAYS:
                    for rule_id, books in CHOICES:
                        got = _lookup(lean, country, day, rule_id, books, known_at)
                        want = _lookup(pg, country, day, rule_id, books, known_at)
                        assert got == want, (country, day, rule_id, books, known_at)
                        answers += isinstance(got[0], dict)
                        seen_sql |= {q for q, _, _ in got[1]}
                        seen_types |= {t for _, _, rows in got[1] for r in rows for t, _ in r}
    assert answers > 100  # most questions are answered by the index
    every = " ".join(seen_sql)
    for statement in ("FROM rm_position r", "MIN(position), MAX(position) FROM ledger_chain",
                      "MAX(position) FROM ledger_chain WHERE position <= %s",
                      "FROM rm_rules WHERE rule_id = %s", "FROM rm_quota_rules",
                      "FROM rm_quota_pairs p", "WITH f AS", "SELECT 1 FROM rm_rules",
                      "MAX(notification_id) FROM public.ledger_events"):
        assert statement in every, statement
    assert seen_types == {"int", "str", "NoneType"}


def test_parameters_are_typed_as_psycopg_types_them(built: tuple[str, list[int]]) -> None:
    url, _ = built
    values: list[Any] = [0, 2**15, -(2**31) - 1, 2**63 - 1, 2**63, True]
    sql = ("SELECT " + ", ".join(["pg_typeof(%s)::text, %s::text"] * len(values))
           + ", %s = 'é', %s || '~', %s::text IS NULL")
    params = [*(v for v in values for _ in (0, 1)), "é", "MX", None]
    unknown = "SELECT pg_typeof(%s)"  # a str is of no type: the server infers one
    with libpq.LeanConnection(libpq._library(), url, 5) as lean, lean.cursor() as c:
        got = c.execute(sql, params).fetchall()
        with pytest.raises(libpq.Error, match="could not determine data type"):
            c.execute(unknown, ["MX"])
    with psycopg.connect(url) as pg:
        assert got == pg.execute(sql, params).fetchall()
        with pytest.raises(psycopg.errors.IndeterminateDatatype):
            pg.execute(unknown, ["MX"])
    assert got[0][:2] == ("smallint", "0") and got[0][8:10] == ("numeric", str(2**63))
    assert got[0][-3:] == (True, "MX~", True)


def test_one_read_only_transaction(built: tuple[str, list[int]]) -> None:
    url, _ = built
    with libpq.connect(url, connect_timeout=5) as conn, conn.cursor() as c:
        assert isinstance(conn, libpq.LeanConnection)
        first = c.execute("SELECT txid_current_if_assigned() IS NULL, "
                          "current_setting('transaction_read_only'), "
                          "current_setting('transaction_isolation')").fetchall()
        assert first == [(True, "on", "read committed")]
        with pytest.raises(libpq.Error, match="read-only transaction"):
            c.execute("CREATE TABLE ql_nothing (x INT)")




def _process(tmp_path: Any, argv: Sequence[str], *, lean: bool, **env: str
             ) -> tuple[int, str, str, list[str]]:
    """(exit code, stdout, stderr, modules loaded) of a ``ledger`` process."""
    out = tmp_path / "modules.json"
    env = {**os.environ, **env, libpq.LEAN_ENV: "1" if lean else "0"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *argv], env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr, json.loads(out.read_text())


def test_quota_json_prints_the_same_bytes_and_does_not_import_psycopg(
        built: tuple[str, list[int]], tmp_path: Any) -> None:
    url, positions = built
    asked = [q for q in _questions(url) if "--on-the-books" not in q]
    questions = asked[::3] + _questions(url)[2:3] + [
        [*q, "--known-at", str(k)] for q in asked[1::5] for k in positions[:2]]
    indexed, missed = 0, []  # the questions the index answered, the others
    for argv in questions:
        code, printed, _, modules = _process(tmp_path, argv, lean=True)
        code_pg, printed_pg, _, modules_pg = _process(tmp_path, argv, lean=False)
        assert code == code_pg == 0
        assert printed == printed_pg, argv
        if "ledger.application" not in modules_pg:  # the index answered
            indexed += 1
            assert "ledger.application" not in modules
            assert "psycopg" in modules_pg
            assert [m for m in modules if m.split(".")[0].startswith("psycopg")] == []
        else:
            missed.append(argv)
    # the index answers every question at the head but --on-the-books (the fold answers
    # those), and --known-at positions whose rows it kept
    assert [q for q in missed if "--on-the-books" not in q and "--known-at" not in q] == []
    assert indexed >= 12, len(questions)


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:1/ql_unreachable",  # nothing listens
    "postgresql://postgres@127.0.0.1:5432/ql_no_such_database",
    "postgresql://postgres@127.0.0.1:5432/postgres?bogus_option=1",
])
def test_bad_url_or_unreachable_server_falls_back(url: str, tmp_path: Any) -> None:
    require_postgres()
    with pytest.raises(libpq.Error):
        libpq.LeanConnection(libpq._library(), url, 5)
    with pytest.raises(libpq.Error):  # not psycopg after it: one attempt, one timeout
        libpq.connect(url, connect_timeout=5)
    assert position_index.lookup_database(url, "MX", dt.date(2025, 6, 30)) is None
    argv = ["--db", url, "quota", "--country", "MX", "--as-of", "2025-06-30", "--json"]
    wait = {"LEDGER_DB_CONNECT_TIMEOUT": "1"}  # the full path's, not the bare lookup's
    code, printed, err, _ = _process(tmp_path, argv, lean=True, **wait)
    code_pg, printed_pg, err_pg, _ = _process(tmp_path, argv, lean=False, **wait)
    assert code == code_pg == 1
    assert (printed, err) == (printed_pg, err_pg)
    assert "Traceback" not in printed + err
    assert printed == ""
    assert json.loads(err)["error"]["code"] in ("storage", "database-refused")


def test_without_the_lean_library_psycopg_answers(built: tuple[str, list[int]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = built
    monkeypatch.setenv(libpq.LEAN_ENV, "0")
    with libpq.connect(url, connect_timeout=5) as conn:
        assert isinstance(conn, psycopg.Connection)
    assert position_index.lookup_database(url, "MX", dt.date(2025, 6, 30)) is not None
