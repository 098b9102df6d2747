"""Read models: the ledger's state as SQL tables, so a query never replays the log.

Tables (prefix ``rm_``) live in the ledger's own database (SQLite file or PostgreSQL):

- ``rm_shipment_versions``: one row per version of a shipment, valid for recorded
  positions ``[recorded_from, recorded_to)`` (``recorded_to`` NULL: still current).
  A correction closes the open version and opens a new one; a void opens a version
  with ``voided = 1``. "As known at K" is ``recorded_from <= K < recorded_to``.
- ``rm_allocations`` and ``rm_allocation_changes`` (adjustments and revocations, each
  with its recorded position);
- ``rm_veus`` and ``rm_veu_changes`` (grant, amendments, revocation);
- ``rm_rules``: every published rule revision with its position;
- ``rm_position``: how far the tables have folded the log. It is updated in the same
  transaction as the rows, with a compare-and-set on the old value, so two processes
  catching up at once never apply an event twice (the loser rolls back and re-reads).

A query loads only the rows one country needs as known at a position (its shipments,
the LPP shipments of its consignees, the licenses and VEUs they name, the rules),
builds a ``LedgerState`` holding just those rows and hands it to
``projections.positions.country_position``: the answer is the full replay's answer by
construction, at a cost that follows the country's rows, not the log's length.

Folding the log into rows works on the stored JSON, not on pydantic events, because
rebuild speed is bounded by decoding. The recorded shipments, most of every ledger,
never reach Python: one ``INSERT ... SELECT`` per batch reads their columns from the
stored JSON in the database (``_recorded_sql``). The other events are read with
pydantic-core's ``from_json``; one stored in another shape than its class's current
one (its stored ``class_version``, 1 when absent, differs) goes through
``decode_event`` so upcasters still apply. Current-version events, nearly all of
them, are read as stored: their bytes were validated when written. Shipment
recordings and corrections are read as stored in every shape: their versions only
added fields (``end_use``, ``die_area_mm2``), absent in older shapes, where the
upcasters give None too.

``rm_shipment_versions.die_area_mm2`` came after the table: a read model created
before it gets the column (NULL in its rows, right for events that could not declare
one) by ``ALTER TABLE`` on first use (``_MIGRATIONS``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import PersistenceError
from eventsourcing.utils import resolve_topic
from pydantic_core import from_json

from ledger.application import Ledger
from ledger.errors import StorageError
from ledger.events import Authorization, ShipmentFields, VeuLimits
from ledger.persistence import CHAIN_TABLE, decode_event, is_postgres
from ledger.rulebook import RuleBook
from projections import position_index

if TYPE_CHECKING:  # numpy is imported only by the columnar replay, not by every query
    from projections.columns import ShipmentColumns
from projections.state import (
    AllocationRow,
    LedgerState,
    ShipmentRow,
    VeuRow,
    VeuVersion,
)

#: the name of this projection's row in rm_position
PROJECTION = "quota"
#: positions (so at most as many events) folded per transaction: large enough that
#: commits do not dominate
BATCH = 50_000
#: shipment rows fetched per chunk into the columnar replay's arrays
COLUMN_CHUNK = 50_000
#: batches of at most this many events read their recorded shipments' rows back for
#: the position index, which marks days from a batch's rows up to that size (above,
#: it marks every day and reads the rows for their countries only)
READ_BACK = position_index.DETAIL_LIMIT
#: ids per IN (...) list (SQLite's default variable limit is 32,766; PostgreSQL's 65,535)
IN_CHUNK = 900

Progress = Callable[[int, int], None]

_SHIP_COLS = ("sid, recorded_from, recorded_to, first_position, corrections, voided, "
              "exporter_id, shipment_ref, ship_date, destination, consignee_id, product_id, "
              "quantity, tpp_per_unit, auth_kind, auth_ref, die_area_mm2")
#: the columns of an allocation row, in the order _add_allocations unpacks them
_ALLOC_SELECT = ("SELECT allocation_id, country, holder, valid_from, valid_to, position, "
                 "reference, amount FROM rm_allocations")

_TABLES = [
    "CREATE TABLE IF NOT EXISTS rm_position (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_shipment_versions ("
    "sid TEXT NOT NULL, recorded_from BIGINT NOT NULL, recorded_to BIGINT, "
    "first_position BIGINT NOT NULL, corrections INTEGER NOT NULL, voided INTEGER NOT NULL, "
    "exporter_id TEXT NOT NULL, shipment_ref TEXT NOT NULL, ship_date TEXT NOT NULL, "
    "destination TEXT NOT NULL, consignee_id TEXT NOT NULL, product_id TEXT NOT NULL, "
    "quantity BIGINT NOT NULL, tpp_per_unit BIGINT NOT NULL, auth_kind TEXT NOT NULL, "
    # keyed by the shipment's first position, not its id: new shipments then append
    # at the end of the key order (a random-id key made a rebuild a third slower);
    # a correction finds its shipment's first position through the events table's
    # own (originator_id, version) key
    "auth_ref TEXT, "
    # the declared die area in mm² as its exact decimal text (NULL: none declared);
    # last, as a read model from before it gets it by ALTER TABLE (see _MIGRATIONS)
    "die_area_mm2 TEXT, PRIMARY KEY (first_position, recorded_from))",
    "CREATE TABLE IF NOT EXISTS rm_allocations ("
    "allocation_id TEXT PRIMARY KEY, country TEXT NOT NULL, holder TEXT, "
    "valid_from TEXT NOT NULL, valid_to TEXT, position BIGINT NOT NULL, reference TEXT, "
    "amount BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_allocation_changes ("
    "allocation_id TEXT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL, "
    "effective_date TEXT NOT NULL, amount BIGINT, PRIMARY KEY (allocation_id, position))",
    "CREATE TABLE IF NOT EXISTS rm_veus ("
    "veu_id TEXT PRIMARY KEY, kind TEXT NOT NULL, headquarters_country TEXT NOT NULL, "
    "valid_from TEXT NOT NULL, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_veu_changes ("
    "veu_id TEXT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL, "
    "effective_date TEXT NOT NULL, data TEXT, PRIMARY KEY (veu_id, position))",
    "CREATE TABLE IF NOT EXISTS rm_rules ("
    "position BIGINT PRIMARY KEY, rule_id TEXT NOT NULL, document TEXT NOT NULL)",
    *position_index.TABLES,
]
#: query indexes: created after a rebuild's bulk load (cheaper than maintaining them)
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS rm_ship_dest ON rm_shipment_versions (destination, voided)",
    "CREATE INDEX IF NOT EXISTS rm_ship_lpp ON rm_shipment_versions (consignee_id, auth_kind)",
    "CREATE INDEX IF NOT EXISTS rm_alloc_country ON rm_allocations (country)",
    *position_index.INDEXES,
]
#: columns added after the table was first released: (table, column, type). A read
#: model created before gets them by ALTER TABLE, NULL in every existing row, which is
#: the right value: the rows come from events written before the column existed (a
#: die area could not be declared then). A column is only ever added last.
_MIGRATIONS = [("rm_shipment_versions", "die_area_mm2", "TEXT")]
_DROP = ["rm_shipment_versions", "rm_allocations", "rm_allocation_changes", "rm_veus",
         "rm_veu_changes", "rm_rules", "rm_position", *position_index.TABLE_NAMES]


def _columns(c: _Cursor, table: str) -> set[str]:
    """The column names of ``table`` as the database has it."""
    if c.pg:
        rows = c.execute("SELECT column_name FROM information_schema.columns WHERE "
                         "table_schema = current_schema() AND table_name = ?",
                         (table,)).fetchall()
        return {r[0] for r in rows}
    return {r[1] for r in c.execute(f"PRAGMA table_info({table})").fetchall()}


def _missing_columns(c: _Cursor) -> list[tuple[str, str, str]]:
    """The _MIGRATIONS whose column the tables lack (a read model from before them)."""
    found: dict[str, set[str]] = {}
    missing = []
    for table, column, kind in _MIGRATIONS:
        if table not in found:
            found[table] = _columns(c, table)
        if column not in found[table]:
            missing.append((table, column, kind))
    return missing


def _migrate(c: _Cursor) -> None:
    """Add the columns a read model created by an earlier version lacks (in the
    schema transaction: a concurrent process sees the table before or after)."""
    for table, column, kind in _missing_columns(c):
        c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


class ProjectionConflict(Exception):
    """Another process moved the projection while this one folded a batch."""


class _Cursor:
    """One cursor API over sqlite3 and psycopg: ``?`` placeholders, tuple rows."""

    def __init__(self, raw: Any, pg: bool):
        self.raw = raw
        self.pg = pg

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        self.raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    def insert_rows(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Bulk insert: COPY on PostgreSQL (several times faster than a pipelined
        executemany there), executemany on SQLite."""
        if not rows:
            return
        if self.pg:
            with self.raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ",".join("?" * (columns.count(",") + 1))
            self.raw.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.raw.fetchall()  # tuples: see _raw_tx
        return rows

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)


class ReadModel:
    """The quota read model of one ledger database."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.pg = is_postgres(ledger.url)
        # a query opens a ReadModel each time: remember on the Ledger that the
        # tables were there, so its next queries skip the catalogue look-up
        self._schema_ready: bool = getattr(ledger, "_read_model_schema_ready", False)
        recorder: Any = ledger.recorder
        #: the events table eventsourcing writes (its name differs per backend)
        self.events_table: str = recorder.events_table_name
        if self.pg:
            self.events_table = f'"{recorder.datastore.schema}"."{self.events_table}"'

    # --- connections ----------------------------------------------------------------

    @contextmanager
    def _tx(self, commit: bool = True) -> Iterator[_Cursor]:
        """A transaction on the ledger's database; driver errors become StorageError."""
        try:
            with self._raw_tx(commit) as c:
                yield c
        except (sqlite3.Error, PersistenceError) as e:
            raise StorageError(f"the read model's database refused: {e}") from e
        except Exception as e:
            if self.pg and type(e).__module__.startswith("psycopg"):
                raise StorageError(f"the read model's database refused: {e}") from e
            raise

    @contextmanager
    def _raw_tx(self, commit: bool) -> Iterator[_Cursor]:
        datastore = self.ledger.recorder.datastore  # type: ignore[attr-defined]
        if self.pg:
            from psycopg.rows import tuple_row

            with datastore.transaction(commit=commit) as curs:
                curs.row_factory = tuple_row
                yield _Cursor(curs, True)
        elif not commit:
            with datastore.transaction(commit=False) as curs:
                # plain tuples, not sqlite3.Row: cheaper, and the same shape as psycopg's
                curs.sqlite_cursor.row_factory = None
                yield _Cursor(curs.sqlite_cursor, False)
        else:
            # BEGIN IMMEDIATE takes the write lock up front (waiting up to the lock
            # timeout): a deferred BEGIN that reads and then writes fails at once with
            # "database is locked" when another writer committed in between.
            with datastore.get_connection(commit=True) as conn:
                raw = conn._sqlite_conn
                cursor = raw.cursor()
                cursor.row_factory = None
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield _Cursor(cursor, False)
                except BaseException:
                    raw.rollback()
                    raise
                else:
                    raw.commit()
                finally:
                    cursor.close()

    def ensure_schema(self, indexes: bool = True) -> None:
        """Create the tables (and, unless a bulk load follows, their query indexes)."""
        if self._schema_ready:
            return
        if indexes and self._exists():
            # No DDL when the tables are there: every query opens a ReadModel, and DDL
            # takes table locks that can deadlock with a concurrent fold on PostgreSQL.
            self._ready()
            return
        for attempt in range(8):
            try:
                with self._tx() as c:
                    for sql in _TABLES:
                        c.execute(sql)
                    _migrate(c)
                    for sql in _INDEXES if indexes else []:
                        c.execute(sql)
                    c.execute("INSERT INTO rm_position (name, position) VALUES (?, 0) "
                              "ON CONFLICT (name) DO NOTHING", (PROJECTION,))
                break
            except Exception as e:
                if attempt == 7:
                    raise StorageError(f"cannot create the read-model tables: {e}") from e
                time.sleep(0.05 + random.random() * 0.2)
        self._ready()

    def _ready(self) -> None:
        self._schema_ready = True
        self.ledger._read_model_schema_ready = True  # type: ignore[attr-defined]

    def _exists(self) -> bool:
        """Whether a previous run created the tables (the last DDL makes the position
        index's last index, so a read model from before that index gets it)."""
        try:
            with self._tx(commit=False) as c:
                if self.pg:
                    sql = "SELECT 1 FROM pg_indexes WHERE indexname = ?"
                else:
                    sql = "SELECT 1 FROM sqlite_master WHERE name = ?"
                sql = sql.replace("?", f"'{position_index.LAST_INDEX}'")
                found = bool(c.execute(sql).fetchall())
                return found and bool(c.execute(
                    "SELECT 1 FROM rm_position WHERE name = ?", (PROJECTION,)).fetchall()
                ) and not _missing_columns(c)
        except Exception:  # noqa: BLE001 - a missing table is the answer "no"
            return False

    def position(self) -> int:
        """How far the read model has folded the log (0: nothing yet)."""
        self.ensure_schema()
        with self._tx(commit=False) as c:
            rows = c.execute("SELECT position FROM rm_position WHERE name = ?",
                             (PROJECTION,)).fetchall()
        return int(rows[0][0]) if rows else 0

    def _head_sql(self) -> str:
        pos = "notification_id" if self.pg else "rowid"
        return f"SELECT MAX({pos}) FROM {self.events_table}"

    def _head(self, c: _Cursor) -> int:
        rows = c.execute(self._head_sql()).fetchall()
        return int(rows[0][0] or 0)

    # --- folding the log --------------------------------------------------------------

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drop the tables and fold the whole log again; returns events folded."""
        if self.pg:
            # A freshly imported event table has no planner statistics; the fold's
            # lookups then ran as sequential scans (the first rebuild after a fresh
            # import took 6x the second). A no-op cost when they are current.
            with self._tx() as c:
                c.execute(f"ANALYZE {self.events_table}")
                c.execute(f"ANALYZE {CHAIN_TABLE}")
        # drop and create in one transaction: a concurrent query sees the old tables
        # or new empty ones (position 0, which it would fold itself), never none
        with self._tx() as c:
            for table in _DROP:
                c.execute(f"DROP TABLE IF EXISTS {table}")
            for sql in _TABLES:
                c.execute(sql)
            c.execute("INSERT INTO rm_position (name, position) VALUES (?, 0)", (PROJECTION,))
        self._schema_ready = True
        folded = self.catch_up(progress=progress)
        with self._tx() as c:
            if self.pg:  # more sort memory: an index at 1M rows took 1.95 s instead of 2.4 s
                c.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for sql in _INDEXES:
                c.execute(sql)
            if self.pg:  # the event and chain tables were analysed before the fold
                for table in _DROP:
                    c.execute(f"ANALYZE {table}")
            else:
                c.execute("ANALYZE")
        return folded

    def catch_up(self, progress: Progress | None = None, batch: int = BATCH,
                 until: int | None = None) -> int:
        """Fold every event recorded after the read model's position (with ``until``:
        up to that position only); returns how many.

        Each batch is one transaction holding its rows and the new position. Raises
        StorageError if the database refuses."""
        self.ensure_schema()
        folded = 0
        conflicts = 0
        # the common case, nothing new: one read, no write transaction
        with self._tx(commit=False) as c:
            position, head = c.execute(
                f"SELECT (SELECT position FROM rm_position WHERE name = ?), "
                f"({self._head_sql()})", (PROJECTION,)).fetchall()[0]
        if until is not None:
            head = min(int(head or 0), until)
        if int(position or 0) >= int(head or 0):
            return 0
        while True:
            try:
                n, done, head = self._fold_batch(batch, until)
            except ProjectionConflict:
                conflicts += 1
                if conflicts > 50:
                    raise StorageError("the read model kept moving under this process; "
                                       "is another rebuild running?") from None
                continue
            folded += n
            if progress is not None:
                progress(done, head)
            if done >= head:
                return folded

    def _fold_batch(self, batch: int, until: int | None = None) -> tuple[int, int, int]:
        with self._tx() as c:
            start = int(c.execute("SELECT position FROM rm_position WHERE name = ?",
                                  (PROJECTION,)).fetchall()[0][0])
            head = self._head(c) if until is None else min(self._head(c), until)
            if start >= head:
                return 0, start, head
            # A batch is a range of positions: at most ``batch`` events (fewer where a
            # position was skipped), so no query has to count them first.
            end = min(start + batch, head)
            # Claim the batch first: the compare-and-set takes the row lock (PostgreSQL)
            # or the write lock (SQLite), so a concurrent folder waits and then fails.
            c.execute("UPDATE rm_position SET position = ? WHERE name = ? AND position = ?",
                      (end, PROJECTION, start))
            if c.rowcount != 1:
                raise ProjectionConflict()
            folder = _Folder(c, self.events_table)
            n = folder.fold_range(start, end)
            if n:
                pos = "notification_id" if self.pg else "rowid"
                first = c.execute(f"SELECT MIN({pos}) FROM {self.events_table} "
                                  f"WHERE {pos} > ?", (start,)).fetchall()[0][0]
                # in the same transaction: what the batch changed, for the position index
                position_index.note_batch(c, folder, n, int(first))
        return n, end, head

    # --- queries ----------------------------------------------------------------------

    def known_position(self, known_at: int | None) -> tuple[int, int]:
        """(K, state position): the cut-off used for rows and the last recorded
        position at or before it (what a full replay's state.position would be)."""
        with self._tx(commit=False) as c:
            return self._known_position(c, known_at)

    def _known_position(self, c: _Cursor, known_at: int | None) -> tuple[int, int]:
        rm = int(c.execute("SELECT position FROM rm_position WHERE name = ?",
                           (PROJECTION,)).fetchall()[0][0])
        cut = rm if known_at is None else min(known_at, rm)
        rows = c.execute(f"SELECT MAX(position) FROM {CHAIN_TABLE} WHERE position <= ?",
                         (cut,)).fetchall()
        return cut, int(rows[0][0] or 0)

    def country_state(self, country: str, known_at: int | None = None,
                      as_of: dt.date | None = None) -> LedgerState:
        """A LedgerState with exactly what ``country_position(country)`` reads, as
        known at ``known_at`` (None: everything folded). With ``as_of``, shipments
        dated after it are left out: the position on ``as_of`` never reads them."""
        self.ensure_schema()
        with self._tx(commit=False) as c:  # one snapshot for every read below
            return self.country_state_in(c, country, known_at, as_of)

    def country_state_in(self, c: _Cursor, country: str, known_at: int | None,
                         as_of: dt.date | None) -> LedgerState:
        """``country_state`` read through ``c`` (one transaction's snapshot)."""
        last_day = "9999-12-31" if as_of is None else as_of.isoformat()
        valid = ("recorded_from <= ? AND (recorded_to IS NULL OR recorded_to > ?) "
                 "AND voided = 0 AND ship_date <= ?")
        cut, state_pos = self._known_position(c, known_at)
        ships = c.execute(
            f"SELECT {_SHIP_COLS} FROM rm_shipment_versions WHERE destination = ? "
            f"AND {valid}", (country, cut, cut, last_day)).fetchall()
        # LPP shipments (any destination) of the consignees this country's LPP
        # shipments name: the yearly LPP limit is per consignee, across countries
        lpp = c.execute(
            f"SELECT {_SHIP_COLS} FROM rm_shipment_versions WHERE auth_kind = 'lpp' "
            f"AND destination <> ? AND {valid} AND consignee_id IN ("
            f"SELECT consignee_id FROM rm_shipment_versions WHERE destination = ? "
            f"AND auth_kind = 'lpp' AND {valid})",
            (country, cut, cut, last_day, country, cut, cut, last_day)).fetchall()
        licenses = sorted({r[15] for r in ships if r[14] == "license"})
        allocs = c.execute(_ALLOC_SELECT + " WHERE country = ? AND position <= ?",
                           (country, cut)).fetchall()
        have = {a[0] for a in allocs}
        missing = [a for a in licenses if a not in have]
        for chunk in _chunks(missing):
            allocs += c.execute(
                _ALLOC_SELECT + " WHERE position <= ? AND "
                f"allocation_id IN ({','.join('?' * len(chunk))})",
                (cut, *chunk)).fetchall()
        changes = self._allocation_changes(c, [a[0] for a in allocs], cut)
        veu_ids = sorted({r[15] for r in ships if r[14] == "veu"})
        veus, veu_changes = self._veus(c, veu_ids, cut)
        rules = self._rules(c, cut)
        return _assemble(state_pos, [*ships, *lpp], allocs, changes, veus, veu_changes, rules)

    def full_state(self, known_at: int | None = None) -> LedgerState:
        """Every row as known at ``known_at``: what ``quota_all`` needs. Costs the size
        of the ledger, like a replay, but without decoding any event."""
        self.ensure_schema()
        with self._tx(commit=False) as c:
            cut, state_pos = self._known_position(c, known_at)
            ships = c.execute(
                f"SELECT {_SHIP_COLS} FROM rm_shipment_versions WHERE recorded_from <= ? "
                "AND (recorded_to IS NULL OR recorded_to > ?) AND voided = 0",
                (cut, cut)).fetchall()
            allocs = c.execute(_ALLOC_SELECT + " WHERE position <= ?", (cut,)).fetchall()
            changes = self._allocation_changes(c, None, cut)
            veus, veu_changes = self._veus(c, None, cut)
            rules = self._rules(c, cut)
        return _assemble(state_pos, ships, allocs, changes, veus, veu_changes, rules)

    def shipment_columns(self, known_at: int | None = None, chunk: int = COLUMN_CHUNK
                         ) -> tuple[LedgerState, ShipmentColumns]:
        """What ``full_state`` gives, with the shipments as typed columns (fetched
        ``chunk`` rows at a time) instead of rows in the state: the state holds the
        allocations, VEUs and rules, and no shipment. For the columnar replay.

        Raises ColumnsUnsupported when a value does not fit the columns."""
        from projections import columns

        self.ensure_schema()
        with self._tx(commit=False) as c:
            cut, state_pos = self._known_position(c, known_at)
            cols = columns.from_bulk(self._bulk_chunks(c, cut, chunk))
            allocs = c.execute(_ALLOC_SELECT + " WHERE position <= ?", (cut,)).fetchall()
            changes = self._allocation_changes(c, None, cut)
            veus, veu_changes = self._veus(c, None, cut)
            rules = self._rules(c, cut)
        return _assemble(state_pos, [], allocs, changes, veus, veu_changes, rules), cols

    def _bulk_chunks(self, c: _Cursor, cut: int, chunk: int) -> Iterator[tuple[Any, ...]]:
        """The live shipment rows as known at ``cut``, as ``columns.bulk_select`` rows:
        one per ``chunk`` first positions (the primary key's leading column, so each
        is a range of the key), each with every value of its rows in a dozen texts."""
        lo, hi = c.execute("SELECT min(first_position), max(first_position) "
                           "FROM rm_shipment_versions").fetchall()[0]
        if lo is None:
            return
        from projections.columns import bulk_select

        sql = (f"SELECT {bulk_select(self.pg)} FROM rm_shipment_versions "
               "WHERE first_position >= ? AND first_position < ? AND recorded_from <= ? "
               "AND (recorded_to IS NULL OR recorded_to > ?) AND voided = 0")
        for start in range(int(lo), int(hi) + 1, chunk):
            yield c.execute(sql, (start, start + chunk, cut, cut)).fetchall()[0]

    def _allocation_changes(self, c: _Cursor, ids: list[str] | None, cut: int
                            ) -> list[tuple[Any, ...]]:
        base = ("SELECT allocation_id, position, kind, effective_date, amount "
                "FROM rm_allocation_changes WHERE position <= ?")
        if ids is None:
            return c.execute(base + " ORDER BY position", (cut,)).fetchall()
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids):
            out += c.execute(base + f" AND allocation_id IN ({','.join('?' * len(chunk))})",
                             (cut, *chunk)).fetchall()
        out.sort(key=lambda r: r[1])
        return out

    def _veus(self, c: _Cursor, ids: list[str] | None, cut: int
              ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        if ids is not None and not ids:
            return [], []
        veus = c.execute("SELECT veu_id, kind, headquarters_country, valid_from, position "
                         "FROM rm_veus WHERE position <= ?", (cut,)).fetchall()
        changes = c.execute("SELECT veu_id, position, kind, effective_date, data "
                            "FROM rm_veu_changes WHERE position <= ? ORDER BY position",
                            (cut,)).fetchall()
        if ids is not None:
            wanted = set(ids)
            veus = [v for v in veus if v[0] in wanted]
            changes = [ch for ch in changes if ch[0] in wanted]
        return veus, changes

    def _rules(self, c: _Cursor, cut: int) -> list[tuple[int, RuleBook]]:
        rows = c.execute("SELECT position, document FROM rm_rules WHERE position <= ? "
                         "ORDER BY position", (cut,)).fetchall()
        return [(int(p), _rulebook(doc)) for p, doc in rows]


def _assemble(position: int, ships: Sequence[Sequence[Any]],
              allocs: Sequence[Sequence[Any]], changes: Sequence[Sequence[Any]],
              veus: Sequence[Sequence[Any]], veu_changes: Sequence[Sequence[Any]],
              rules: list[tuple[int, RuleBook]]) -> LedgerState:
    """A LedgerState from read-model rows (a country's subset or everything)."""
    state = LedgerState(position=position)
    for r in ships:
        _add_shipment(state, r)
    _add_allocations(state, allocs, changes)
    _add_veus(state, veus, veu_changes)
    state.rules = rules
    return state


_RULE_CACHE: dict[str, RuleBook] = {}


def _rulebook(document: str) -> RuleBook:
    """Parse a stored rule document once per process (several queries share them)."""
    book = _RULE_CACHE.get(document)
    if book is None:
        book = _RULE_CACHE[document] = RuleBook.model_validate_json(document)
    return book


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i:i + IN_CHUNK]


# --- rows -> LedgerState ------------------------------------------------------------------


#: shared Authorization models by (kind, ref): a few thousand for a million rows
_AUTHS: dict[tuple[str, str | None], Authorization] = {}


def _add_shipment(state: LedgerState, r: Sequence[Any]) -> None:
    (_sid, recorded_from, _to, first_position, corrections, _voided, exporter_id,
     shipment_ref, ship_date, destination, consignee_id, product_id, quantity, tpp_per_unit,
     auth_kind, auth_ref, die_area) = r
    key = (exporter_id, shipment_ref)
    if key in state.shipments:
        return
    # model_construct: the row holds the values of a recorded event, validated when it
    # was decided; validating them again cost a third of loading a full state. Every
    # field is given, so the model is the same as a validated one.
    auth = _AUTHS.get((auth_kind, auth_ref))
    if auth is None:  # frozen, so one instance per (kind, ref) is shared by its rows
        auth = _AUTHS[(auth_kind, auth_ref)] = Authorization.model_construct(
            kind=auth_kind, ref=auth_ref)
    fields = ShipmentFields.model_construct(
        ship_date=dt.date.fromisoformat(ship_date), destination=destination,
        consignee_id=consignee_id, product_id=product_id, quantity=int(quantity),
        tpp_per_unit=int(tpp_per_unit), authorization=auth,
        die_area_mm2=None if die_area is None else Decimal(die_area),
    )
    row = ShipmentRow(exporter_id, shipment_ref, fields, int(first_position),
                      int(recorded_from), int(corrections), False)
    state.shipments[key] = row
    state.by_country[destination].add(key)
    state.by_consignee[consignee_id].add(key)


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _add_allocations(state: LedgerState, allocs: Sequence[Sequence[Any]],
                     changes: Sequence[Sequence[Any]]) -> None:
    for (alloc_id, country, holder, valid_from, valid_to, position, reference,
         amount) in allocs:
        vf = dt.date.fromisoformat(valid_from)
        state.allocations[alloc_id] = AllocationRow(
            alloc_id, country, holder, vf, _date(valid_to), int(position), reference,
            [(vf, int(position), int(amount))])
        state.allocations_by_country[country].add(alloc_id)
    for alloc_id, position, kind, effective, amount in changes:  # in recorded order
        a = state.allocations.get(alloc_id)
        if a is None:
            continue
        day = dt.date.fromisoformat(effective)
        if kind == "adjust":
            a.amounts.append((day, int(position), int(amount)))
        else:
            a.revoked = (day, int(position))


def _add_veus(state: LedgerState, veus: Sequence[Sequence[Any]],
              changes: Sequence[Sequence[Any]]) -> None:
    for veu_id, kind, hq, valid_from, position in veus:
        state.veus[veu_id] = VeuRow(veu_id, kind, hq, dt.date.fromisoformat(valid_from),
                                    int(position))
    for veu_id, position, kind, effective, data in changes:  # in recorded order
        veu = state.veus.get(veu_id)
        if veu is None:
            continue
        day = dt.date.fromisoformat(effective)
        if kind == "revoke":
            veu.revoked = (day, int(position))
            continue
        d = json.loads(data)
        # the first row is the grant (every field); later rows are amendments that
        # carry only what they change (None: unchanged), layered by version_on
        veu.versions.append(VeuVersion(
            day, int(position), d.get("entity"),
            None if d.get("covered_countries") is None else list(d["covered_countries"]),
            _date(d.get("valid_to")) if d.get("valid_to") is not None else None,
            VeuLimits.model_validate(d["limits"]) if d.get("limits") is not None
            else (VeuLimits() if not veu.versions else None),
        ))


# --- event rows -> table rows ----------------------------------------------------------------


#: event classes whose every stored shape the folder reads without upcasting
_READ_AS_STORED = ("ShipmentRecorded", "ShipmentCorrected")
#: how every stored ShipmentRecorded topic ends (its class name after the module's)
_RECORDED = ":ShipmentRecorded"
#: the columns of a recorded shipment's first version, from its stored JSON, by path:
#: (the value's path, whether it is an integer column)
_RECORDED_PATHS = [("exporter_id", False), ("shipment_ref", False),
                   ("shipment.ship_date", False), ("shipment.destination", False),
                   ("shipment.consignee_id", False), ("shipment.product_id", False),
                   ("shipment.quantity", True), ("shipment.tpp_per_unit", True),
                   ("shipment.authorization.kind", False),
                   ("shipment.authorization.ref", False), ("shipment.die_area_mm2", False)]


def _is_recorded(pg: bool) -> str:
    """SQL: the event row's topic is a ShipmentRecorded (as ``_kind`` tells it)."""
    n = len(_RECORDED)
    return f"right(topic, {n}) = '{_RECORDED}'" if pg else f"substr(topic, -{n}) = '{_RECORDED}'"


def _escaped_nul(pg: bool) -> str:
    """SQL: the stored JSON holds the escape ``\\u0000`` (bytes ``5c7530303030``). Such
    a recorded shipment is folded in Python, not by ``_recorded_sql``: PostgreSQL's
    jsonb refuses the escape (the whole batch would fail) and SQLite's json_extract
    ends a string at it (an authorization ref once took any text). Also true of an
    escaped backslash followed by ``u0000``: that row takes the Python fold too,
    which gives the same row."""
    return ("position(decode('5c7530303030', 'hex') in state) > 0" if pg
            else "instr(state, X'5C7530303030') > 0")


def _recorded_sql(events_table: str, pg: bool) -> str:
    """INSERT ... SELECT of the first versions of the shipments recorded at positions
    (?, ?]. Each column is the stored JSON's value at its path, as the fold read it in
    Python (an absent or null value: NULL; text as text; integers as integers), so
    the rows are the ones a Python fold of the same events builds."""
    if pg:
        # one jsonb parse per row (OFFSET 0 keeps the planner from inlining the
        # subquery and parsing once per column)
        def value(path: str, integer: bool) -> str:
            text = "j #>> '{" + path.replace(".", ",") + "}'"
            return f"({text})::bigint" if integer else text
        source = (f"(SELECT notification_id AS p, replace(originator_id::text, '-', '') "
                  f"AS sid, convert_from(state, 'UTF8')::jsonb AS j FROM {events_table} "
                  f"WHERE notification_id > ? AND notification_id <= ? AND "
                  f"{_is_recorded(True)} AND NOT {_escaped_nul(True)} OFFSET 0) AS e")
    else:
        # SQLite keeps the last parsed JSON documents: the row's state is parsed once
        def value(path: str, integer: bool) -> str:
            return f"json_extract(CAST(state AS TEXT), '$.{path}')"
        source = (f"(SELECT rowid AS p, originator_id AS sid, state FROM {events_table} "
                  f"WHERE rowid > ? AND rowid <= ? AND {_is_recorded(False)} AND NOT "
                  f"{_escaped_nul(False)}) AS e")
    columns = ", ".join(value(path, integer) for path, integer in _RECORDED_PATHS)
    return (f"INSERT INTO rm_shipment_versions ({_SHIP_COLS}) SELECT sid, p, NULL, p, 0, 0, "
            f"{columns} FROM {source} ORDER BY p")


def _at(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a stored event's JSON; None when absent."""
    value: Any = data
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


class _Folder:
    """Turns one batch of stored events into table rows: the recorded shipments (most
    of every ledger) in one INSERT ... SELECT that reads their stored JSON in the
    database, every other event in Python, its rows written with executemany."""

    def __init__(self, c: _Cursor, events_table: str):
        self.c = c
        self.events_table = events_table
        #: the version rows this batch wrote (tuples as read back, lists once amended)
        self.new_versions: list[Any] = []
        #: how many of new_versions, from the front, are in the table already (the
        #: first versions of the shipments recorded in this batch)
        self.inserted = 0
        #: sid -> index in new_versions of its open version (this batch)
        self.open_new: dict[str, int] = {}
        #: sid -> open version read from the table (recorded before this batch)
        self.open_old: dict[str, list[Any]] = {}
        #: the open versions read from the table, as read (what they were before this
        #: batch changed them: the position index marks their country and date)
        self.old_versions: list[tuple[Any, ...]] = []
        self.close_old: list[tuple[int, str]] = []
        self.allocations: list[tuple[Any, ...]] = []
        self.alloc_changes: list[tuple[Any, ...]] = []
        self.veus: list[tuple[Any, ...]] = []
        self.veu_changes: list[tuple[Any, ...]] = []
        self.rules: list[tuple[Any, ...]] = []
        #: the batch's positions (start, end]; with read_back False, the shipments
        #: recorded there are in the table only
        self.range = (0, 0)
        self.read_back = True

    def fold_range(self, start: int, end: int) -> int:
        """Fold the events at positions (start, end], in order; returns how many.

        The range is read in separate statements (each its own snapshot on PostgreSQL
        at READ COMMITTED); they see the same events because ``end`` is at or below a
        head read after every event up to it was committed: the recorder appends under
        a table lock, so no position at or below the head can still appear."""
        c = self.c
        self.range = (start, end)
        c.execute(_recorded_sql(self.events_table, c.pg), (start, end))
        recorded = c.rowcount
        pos = "notification_id" if c.pg else "rowid"
        rows = c.execute(
            f"SELECT {pos}, originator_id, topic, state FROM {self.events_table} "
            f"WHERE {pos} > ? AND {pos} <= ? AND (NOT {_is_recorded(c.pg)} OR "
            f"{_escaped_nul(c.pg)}) ORDER BY {pos}",
            (start, end)).fetchall()
        events = recorded + len(rows)
        if events <= READ_BACK:
            # the position index marks days from each of the batch's rows: read the
            # recorded shipments' rows back for it (and to amend them in memory)
            back = c.execute(f"SELECT {_SHIP_COLS} FROM rm_shipment_versions WHERE "
                             "first_position > ? AND first_position <= ?",
                             (start, end)).fetchall() if recorded else []
            self.new_versions = back
            self.inserted = len(back)
            self.open_new = {r[0]: i for i, r in enumerate(back)}
        else:
            # A larger batch marks every country's days as changed: the position index
            # reads its rows for their countries only. Reading ~50,000 rows back cost
            # as much as inserting them, so the recorded shipments' countries are
            # noted here (the rest of the batch's, as always, by note_batch), and the
            # shipments corrected in the batch are read from the table like those
            # recorded before it.
            self.read_back = False
            c.execute("INSERT INTO rm_quota_countries (country) SELECT DISTINCT destination "
                      "FROM rm_shipment_versions WHERE first_position > ? AND "
                      "first_position <= ? ON CONFLICT (country) DO NOTHING", (start, end))
        self.fold(rows)
        return events

    def fold(self, rows: Sequence[Sequence[Any]]) -> None:
        """Fold the batch's events other than the recorded shipments (already in
        new_versions), in order."""
        # Two passes: decode everything, then fetch in one query per IN_CHUNK the open
        # versions of shipments corrected or voided here but recorded in an earlier
        # batch, then fold in order.
        kinds: dict[str, tuple[Any, int, bool]] = {}
        decoded: list[tuple[int, str, Any, Any]] = []
        fixes = []
        for position, originator_id, topic, state in rows:
            kind = kinds.get(topic)
            if kind is None:
                kind = kinds[topic] = self._kind(topic)
            handler, version, fix = kind
            if handler is False:
                continue
            data = from_json(state)
            # the stored shape is the class's current one (the bytes were validated when
            # written) unless its class_version differs: only then let decode_event and
            # the upcasters read it. A current-version event carries "class_version"
            # too (any class above version 1 writes it), so test the value, not the key.
            if data.pop("class_version", 1) != version and version:
                data = decode_event(topic, bytes(state), originator_id, 1).model_dump(
                    mode="json")
            sid = originator_id if isinstance(originator_id, str) else originator_id.hex
            decoded.append((position, sid, handler, data))
            if fix:
                fixes.append(sid)
        if fixes and self.c.pg:
            # The lookups and updates below go by first position. During a rebuild the
            # table has no statistics yet (ANALYZE runs at the end), and PostgreSQL then
            # chose sequential scans: one per corrected shipment, a 1M rebuild took
            # minutes. The primary key index is always the right plan here.
            self.c.execute("SET LOCAL enable_seqscan = off")
        if fixes:
            self._load_open(sorted({sid for sid in fixes if sid not in self.open_new}))
        for position, sid, handler, data in decoded:
            handler(position, sid, data)
        self._write()

    def _kind(self, topic: str) -> tuple[Any, int, bool]:
        """(handler, current class_version, corrects a shipment?) of a topic. The
        handler is False for events the read model does not keep: those are never
        decoded, their class may not even exist in this version of the code.
        (ShipmentRecorded's handler sees only the rows fold_range's INSERT leaves.)"""
        name = topic.rsplit(":", 1)[1]
        handler = getattr(self, "_" + name, None)
        if handler is None:
            return False, 0, False
        # Every stored shape of a shipment event holds the columns under the same
        # names, a field added later being absent (None) in older shapes, which is what
        # their upcasters give (end_use, die_area_mm2): read them as stored, version 0
        # ("any"), so a ledger of older shipments does not rebuild through pydantic.
        version = 0 if name in _READ_AS_STORED else resolve_topic(topic).class_version
        return handler, version, name in ("ShipmentCorrected", "ShipmentVoided")

    def _load_open(self, sids: list[str]) -> None:
        """Read the open versions of the shipments ``sids`` (recorded before this
        batch, or in it when its rows were not read back)."""
        if not self.read_back:
            self._load_open_here(sids)
            sids = [sid for sid in sids if sid not in self.open_old]
        self._load_open_before(sids)

    def _load_open_here(self, sids: list[str]) -> None:
        """Those of ``sids`` recorded in this batch: in the batch's range of first
        positions (one range of the primary key per IN_CHUNK ids)."""
        start, end = self.range
        for chunk in _chunks(sids):
            got = self.c.execute(
                f"SELECT {_SHIP_COLS} FROM rm_shipment_versions WHERE first_position > ? "
                f"AND first_position <= ? AND recorded_to IS NULL AND sid IN "
                f"({','.join('?' * len(chunk))})", (start, end, *chunk)).fetchall()
            self._opened(got)

    def _load_open_before(self, sids: list[str]) -> None:
        """Read the open versions of the shipments ``sids`` (recorded before this
        batch). Two lookups, each by a primary key: the shipments' first positions
        from the events table, then their open versions. (One joined query let
        PostgreSQL, with no statistics on the table being rebuilt, scan the whole
        table's key for every chunk: ~0.4 s a chunk at 100k shipments.)"""
        c = self.c
        pos = "notification_id" if c.pg else "rowid"
        for chunk in _chunks(sids):
            ids: Sequence[Any] = [uuid.UUID(hex=h) for h in chunk] if c.pg else chunk
            firsts = [r[0] for r in c.execute(
                f"SELECT {pos} FROM {self.events_table} WHERE originator_version = 1 "
                f"AND originator_id IN ({','.join('?' * len(ids))})", ids).fetchall()]
            if not firsts:
                continue
            got = c.execute(
                f"SELECT {_SHIP_COLS} FROM rm_shipment_versions WHERE recorded_to IS NULL "
                f"AND first_position IN ({','.join('?' * len(firsts))})", firsts).fetchall()
            self._opened(got)

    def _opened(self, rows: Sequence[Sequence[Any]]) -> None:
        """Keep open versions read from the table: to amend (open_old) and, as read,
        for the position index (old_versions)."""
        for r in rows:
            self.open_old[r[0]] = list(r)
            self.old_versions.append(tuple(r))

    # shipments: a version row is [sid, recorded_from, recorded_to, first_position,
    # corrections, voided, exporter_id, shipment_ref, ship_date, destination, consignee_id,
    # product_id, quantity, tpp_per_unit, auth_kind, auth_ref, die_area_mm2]

    def _successor(self, position: int, sid: str) -> list[Any]:
        """Close the open version of ``sid`` at ``position``; return a copy to amend."""
        i = self.open_new.get(sid)
        if i is not None:
            prev = self.new_versions[i]
            if i < self.inserted:  # recorded in this batch, in the table: close it there
                prev = self.new_versions[i] = list(prev)
                self.close_old.append((position, prev[3]))
        else:
            prev = self.open_old.pop(sid)
            self.close_old.append((position, prev[3]))
        prev[2] = position
        row = list(prev)
        row[1], row[2] = position, None
        self.open_new[sid] = len(self.new_versions)
        self.new_versions.append(row)
        return row

    def _ShipmentRecorded(self, position: int, sid: str, d: dict[str, Any]) -> None:
        """Only a recorded shipment ``_recorded_sql`` leaves out (``_escaped_nul``):
        the same columns, read in Python from the same paths."""
        row = [sid, position, None, position, 0, 0,
               *(_at(d, path) for path, _integer in _RECORDED_PATHS)]
        self.open_new[sid] = len(self.new_versions)
        self.new_versions.append(row)

    def _ShipmentCorrected(self, position: int, sid: str, d: dict[str, Any]) -> None:
        row = self._successor(position, sid)
        row[4] += 1
        ch = d["changes"]
        for col, name in ((8, "ship_date"), (9, "destination"), (10, "consignee_id"),
                          (11, "product_id"), (12, "quantity"), (13, "tpp_per_unit")):
            if ch.get(name) is not None:
                row[col] = ch[name]
        if ch.get("authorization") is not None:
            row[14] = ch["authorization"]["kind"]
            row[15] = ch["authorization"].get("ref")
        # as ShipmentChanges.apply: a new product drops the old product's die area
        # unless the correction declares one
        if ch.get("die_area_mm2") is not None or ch.get("product_id") is not None:
            row[16] = ch.get("die_area_mm2")

    def _ShipmentVoided(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self._successor(position, sid)[5] = 1

    def _AllocationGranted(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.allocations.append((d["allocation_id"], d["country"], d.get("holder"),
                                 d["valid_from"], d.get("valid_to"), position,
                                 d.get("reference"), d["tpp_amount"]))

    def _AllocationAdjusted(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.alloc_changes.append((d["allocation_id"], position, "adjust",
                                   d["effective_date"], d["tpp_amount"]))

    def _AllocationRevoked(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.alloc_changes.append((d["allocation_id"], position, "revoke",
                                   d["effective_date"], None))

    def _VeuGranted(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.veus.append((d["veu_id"], d["kind"], d["headquarters_country"],
                          d["valid_from"], position))
        data = {k: d.get(k) for k in ("entity", "covered_countries", "valid_to", "limits")}
        self.veu_changes.append((d["veu_id"], position, "version", d["valid_from"],
                                 json.dumps(data)))

    def _VeuAmended(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.veu_changes.append((d["veu_id"], position, "version", d["effective_date"],
                                 json.dumps(d["changes"])))

    def _VeuRevoked(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.veu_changes.append((d["veu_id"], position, "revoke", d["effective_date"], None))

    def _RuleRevisionPublished(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.rules.append((position, d["rule_id"], json.dumps(d["document"])))

    def _write(self) -> None:
        c = self.c
        c.executemany("UPDATE rm_shipment_versions SET recorded_to = ? "
                      "WHERE first_position = ? AND recorded_to IS NULL", self.close_old)
        c.insert_rows("rm_shipment_versions", _SHIP_COLS, self.new_versions[self.inserted:])
        c.insert_rows("rm_allocations", "allocation_id, country, holder, valid_from, "
                      "valid_to, position, reference, amount", self.allocations)
        c.insert_rows("rm_allocation_changes",
                      "allocation_id, position, kind, effective_date, amount",
                      self.alloc_changes)
        c.insert_rows("rm_veus", "veu_id, kind, headquarters_country, valid_from, position",
                      self.veus)
        c.insert_rows("rm_veu_changes", "veu_id, position, kind, effective_date, data",
                      self.veu_changes)
        c.insert_rows("rm_rules", "position, rule_id, document", self.rules)
