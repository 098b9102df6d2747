"""Shared fixtures: one abstract storage suite, run once per backend.

``db_url`` is parametrized over SQLite (a file in a temporary folder) and PostgreSQL
(a fresh database on the server named by ``LEDGER_TEST_POSTGRES``, default
postgresql://postgres@127.0.0.1:5432, dropped afterwards). A test that takes
``db_url`` therefore runs against both real stores. When PostgreSQL is unreachable the
PostgreSQL cases are skipped locally but fail under CI (CI=true), where ``.ci/run``
guarantees a server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

PG_BASE = os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
# the ledger gives up on a PostgreSQL connection after 5 s by default; on a CI box or a
# shared test machine under load a healthy server can take longer to accept one, so
# the suite (and the ledger processes it starts, which inherit this) waits longer.
# Tests of the failure itself set their own, shorter value.
os.environ.setdefault("LEDGER_DB_CONNECT_TIMEOUT", "30")

# Under mutation testing (mutmut sets MUTANT_UNDER_TEST; tests/MUTATION.md) property tests
# draw the same examples for every mutant, so a mutant is killed or not, never by luck.
settings.register_profile("mutation", derandomize=True, database=None, deadline=None,
                          suppress_health_check=list(HealthCheck))
if "MUTANT_UNDER_TEST" in os.environ:
    settings.load_profile("mutation")

#: the PostgreSQL tests mutation testing runs (in-process, when LEDGER_TEST_POSTGRES is set):
#: the audit package's, which alone reach the PostgreSQL code of ledger/audit.py, and the
#: position index's PostgreSQL-only code: the bare-connection lookup (at the head, on the
#: books) and the row lock a refresh takes
MUTATION_POSTGRES_TESTS = (
    "tests/integration/audit/",
    "tests/integration/storage/test_position_index.py::"
    "test_a_quota_process_answers_from_the_index_on_a_connection_of_its_own",
    "tests/integration/storage/test_position_index.py::"
    "test_the_revision_on_the_books_is_answered_by_the_index",
    "tests/integration/storage/test_position_index.py::"
    "test_a_refresh_on_postgres_waits_for_whoever_holds_the_read_models_position",
)


def _slower_than(seconds: float) -> set[str]:
    """The tests mutmut's stats (mutants/mutmut-stats.json) timed above ``seconds``."""
    import json
    from pathlib import Path

    stats = Path(__file__).resolve().parents[1] / "mutmut-stats.json"
    if not stats.exists():
        return set()
    durations = json.loads(stats.read_text())["duration_by_test"]
    return {test for test, took in durations.items() if took > seconds}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut, keep a PostgreSQL test only if it is one of
    MUTATION_POSTGRES_TESTS and LEDGER_TEST_POSTGRES names a server; the others cost time and reach no PostgreSQL-only
    code of the mutated modules. With MUTATION_FIRST_PASS_MAX_S set (a first pass,
    tests/MUTATION.md), also leave out the tests slower than that many seconds: a mutant
    they alone would kill survives the pass and is checked again with every test."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    with_server = bool(os.environ.get("LEDGER_TEST_POSTGRES"))
    limit = os.environ.get("MUTATION_FIRST_PASS_MAX_S")
    slow = _slower_than(float(limit)) if limit else set()
    keep, drop = [], []
    for item in items:
        pg = item.get_closest_marker("postgres") is not None
        if pg and not (with_server and item.nodeid.startswith(MUTATION_POSTGRES_TESTS)):
            drop.append(item)
        elif item.nodeid in slow:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(f"{PG_BASE}/postgres", autocommit=True, connect_timeout=3)


_pg_ok: bool | None = None


def postgres_available() -> bool:
    global _pg_ok
    if _pg_ok is None:
        try:
            with _pg_admin():
                _pg_ok = True
        except Exception:  # noqa: BLE001 - any failure means "not here"
            _pg_ok = False
    return _pg_ok


def require_postgres() -> None:
    if postgres_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {PG_BASE} (CI must provide it)")
    pytest.skip(f"PostgreSQL not reachable at {PG_BASE}")


def new_postgres_db() -> str:
    """Create a fresh database and return its URL."""
    name = f"ql_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_BASE}/{name}"


def drop_postgres_db(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty ledger database URL on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    require_postgres()
    url = new_postgres_db()
    try:
        yield url
    finally:
        drop_postgres_db(url)


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return str(tmp_path / "ledger.db")


@pytest.fixture
def ledger(db_url: str) -> Iterator[Any]:
    """A Ledger on a fresh database with the bundled rule books loaded."""
    from ledger.application import Ledger
    from ledger.commands import PublishRuleRevision
    from ledger.rulebook import bundled_rulebooks

    app = Ledger(db_url)
    app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()], actor="test")
    yield app
    app.close()


@pytest.fixture
def run_cli(db_url: str) -> Any:
    """Run the CLI in-process against ``db_url``; returns click's Result."""
    from click.testing import CliRunner

    from ledger.cli import main

    def run(*args: str, input: str | None = None) -> Any:
        runner = CliRunner()
        return runner.invoke(main, ["--db", db_url, *args], input=input,
                             catch_exceptions=False)

    return run
