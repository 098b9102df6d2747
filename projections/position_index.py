"""Quota positions from an index, not a fold: one indexed lookup per answer.

For every rule revision (keyed by its recorded position) and country, the read model
keeps the country's position at the end of every day on which its fold changes (an
allocation changes standing or a shipment is dated), computed by the fold's own steps
(``projections.positions.position_days``), so fixes to the fold flow through. The
position on an as-of date is the stored one of the last such day on or before it,
computed with the country's cap, tier and cap-period standing of that as-of date: a
revision's dated groups can move a country between tiers and a capped country is
``outside-cap-period`` before and after the period, so each (revision, country) has
one or more *regimes*, the as-of dates from which those are what they are, and days
are stored per regime:

    rm_quota_days       (rule_position, country, regime, day) -> the position as JSON
    rm_quota_pairs      (rule_position, country) -> valid_before, active
    rm_quota_countries  every country a shipment or allocation names
    rm_quota_rules      which revision is in force (on the books) from which day
    rm_quota_past       day rows a refresh replaced, valid for known-at [from, to)
    rm_quota_refreshes  (rule_position, country, known_from) -> the first day recomputed
    rm_quota_marks      (rule_position, country, position) -> the day a batch lowered
                        valid_before to (from that position on, days from it may differ)

Maintenance, in the read model's own transactions:

- ``note_batch`` runs in each catch-up batch's transaction, beside its new position,
  and lowers ``valid_before`` of every (rule, country) whose stored days the batch
  may change: a shipment version recorded, corrected or voided (its country and date
  before and after; backdated ones too), an LPP shipment (every country where its
  consignee ships under LPP, from its date: the yearly limit is per consignee), an
  allocation or VEU (its country, and every shipment naming it), a new rule revision
  (the in-force timeline). Days before ``valid_before`` stay exact. Each pair it
  lowers gets a mark: the batch's first position and the day.
- A query whose as-of date is on or after ``valid_before`` first recomputes the
  country's stale pairs from ``valid_before`` on (``PositionIndex.refresh``), in one
  write transaction that holds ``rm_position``: no batch is folded in between. The
  rows it replaces move to rm_quota_past, each valid from the refresh that computed
  it to the first mark that may have changed it; a pair's past is bounded
  (``HISTORY_FACTOR``, ``MAX_REFRESHES``: beyond, its history restarts).
- A rebuild drops the tables with the rest of the read model; ``ledger projections
  rebuild`` and a large ``ledger import`` then build every pair (``refresh_all``),
  otherwise each is built on first use (one fold of the country).

Known at a position K before the read model's position, the answer is the row valid
at K (``_known_day_row``): exact when no mark between the pair's last refresh by K
and K changed a day on or before the as-of date; otherwise the full fold answers.
Not indexed either, answered by the full fold: ``--explain``, drafts, and dates on
which no revision applies.

This module imports only the standard library at the top, so a ``ledger quota``
process can answer through ``lookup`` without loading pydantic or eventsourcing.
Its SQL statements are module constants, each beside the function that runs it: one
place to read a statement whole, and none of the letter-case mutants mutmut would make
of SQL text inside a function (the databases cannot tell them apart; tests/MUTATION.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ledger.rulebook import RuleBook
    from projections.positions import Position
    from projections.readmodel import ReadModel

TABLES = [
    "CREATE TABLE IF NOT EXISTS rm_quota_days ("
    "rule_position BIGINT NOT NULL, country TEXT NOT NULL, regime TEXT NOT NULL, "
    "day TEXT NOT NULL, position TEXT NOT NULL, "
    "PRIMARY KEY (rule_position, country, regime, day))",
    "CREATE TABLE IF NOT EXISTS rm_quota_pairs ("
    "rule_position BIGINT NOT NULL, country TEXT NOT NULL, valid_before TEXT NOT NULL, "
    "active INTEGER NOT NULL, PRIMARY KEY (rule_position, country))",
    "CREATE TABLE IF NOT EXISTS rm_quota_countries (country TEXT PRIMARY KEY)",
    # the past: day rows a refresh replaced, each valid for known-at [known_from, known_to)
    "CREATE TABLE IF NOT EXISTS rm_quota_past ("
    "rule_position BIGINT NOT NULL, country TEXT NOT NULL, regime TEXT NOT NULL, "
    "day TEXT NOT NULL, known_from BIGINT NOT NULL, known_to BIGINT NOT NULL, "
    "position TEXT NOT NULL, PRIMARY KEY (rule_position, country, regime, day, known_from))",
    # one row per refresh of a pair: it computed the days from since_day on, as known at
    # known_from (the read model's position then)
    "CREATE TABLE IF NOT EXISTS rm_quota_refreshes ("
    "rule_position BIGINT NOT NULL, country TEXT NOT NULL, known_from BIGINT NOT NULL, "
    "since_day TEXT NOT NULL, PRIMARY KEY (rule_position, country, known_from))",
    # a batch that lowered a pair's valid_before: from ``position`` on, its days from
    # ``day`` on may differ from the stored ones
    "CREATE TABLE IF NOT EXISTS rm_quota_marks ("
    "rule_position BIGINT NOT NULL, country TEXT NOT NULL, position BIGINT NOT NULL, "
    "day TEXT NOT NULL, PRIMARY KEY (rule_position, country, position))",
    "CREATE TABLE IF NOT EXISTS rm_quota_rules ("
    "choice TEXT NOT NULL, from_day TEXT NOT NULL, rule_position BIGINT, "
    "PRIMARY KEY (choice, from_day))",
]
#: shipments by the license or VEU they name: what an allocation or VEU event marks
INDEXES = ["CREATE INDEX IF NOT EXISTS rm_ship_auth ON rm_shipment_versions (auth_ref)",
           # the past rows of a known-at lookup: by day, then validity
           "CREATE INDEX IF NOT EXISTS rm_quota_past_known ON rm_quota_past "
           "(rule_position, country, regime, day, known_to)"]
#: the last object the read model's DDL creates (its presence: the schema is complete)
LAST_INDEX = "rm_quota_past_known"
TABLE_NAMES = ["rm_quota_days", "rm_quota_pairs", "rm_quota_countries", "rm_quota_rules",
               "rm_quota_past", "rm_quota_refreshes", "rm_quota_marks"]

#: ``valid_before`` of a pair whose every stored day is exact (sorts after any date)
FRESH = "~"
#: ``valid_before`` of a pair to rebuild from its first day
EVERYTHING = ""
#: a batch of more events than this marks every pair stale instead of asking which
DETAIL_LIMIT = 5_000
#: ids per IN (...) list
IN_CHUNK = 900
#: the read model's row in rm_position (projections.readmodel.PROJECTION)
PROJECTION = "quota"
#: the hash chain's table (ledger.persistence.CHAIN_TABLE; a test keeps them equal)
CHAIN_TABLE = "ledger_chain"

IN_FORCE = "in-force"
ON_THE_BOOKS = "on-the-books"


class Cursor(Protocol):
    """What the lookups need of a cursor: ``?`` placeholders, tuple rows."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


def _iso(day: dt.date) -> str:
    return day.isoformat()


# --- the lookup (standard library only) ---------------------------------------------------


class Miss(Exception):
    """The index cannot answer as it stands; ``reason`` says why."""

    def __init__(self, reason: str, countries: Sequence[str] = (),
                 rule_position: int | None = None):
        super().__init__(reason)
        self.reason = reason
        #: with STALE: the countries whose pairs to rebuild, under this revision
        self.countries = list(countries)
        self.rule_position = rule_position


#: reasons of a Miss: rebuild the country's pairs, compute the timeline, or catch up
#: the read model, then retry
STALE, NO_TIMELINE, BEHIND = "stale", "no-timeline", "behind"
#: reasons of a Miss the full fold answers (or refuses with the right error)
UNINDEXED = "unindexed"


#: the read model's position and the last recorded position at or before it; format
#: with a third column, the log's head, or nothing
_POSITIONS_SQL = (f"SELECT r.position, (SELECT MAX(position) FROM {CHAIN_TABLE} WHERE "
                  "position <= r.position){} FROM rm_position r WHERE r.name = ?")


def _positions(c: Cursor, known_at: int | None, head_sql: str | None) -> tuple[int, int]:
    """(the read model's position, the last recorded position at or before it: a
    replay's state.position), in one statement. Raises Miss if, given ``head_sql``
    (the log's head), the read model has not folded everything recorded, unless
    ``known_at`` is before the read model's position (see ``_known_positions``)."""
    head = f", ({head_sql})" if head_sql else ""
    rows = c.execute(_POSITIONS_SQL.format(head), (PROJECTION,)).fetchall()
    if not rows:
        raise Miss(BEHIND)
    rm, computed = int(rows[0][0]), int(rows[0][1] or 0)
    if is_past(known_at, rm):
        return rm, computed
    if head_sql and int(rows[0][2] or 0) != rm:
        raise Miss(BEHIND)
    return rm, computed


def is_past(known_at: int | None, rm: int) -> bool:
    """Whether ``known_at`` asks about a position the read model has folded past: the
    index answers it from the rows valid then (``_known_day_row``), whatever was
    recorded since."""
    return known_at is not None and known_at < rm


#: the last recorded position at or before a position
_LAST_RECORDED_SQL = f"SELECT MAX(position) FROM {CHAIN_TABLE} WHERE position <= ?"


def _known_positions(c: Cursor, known_at: int) -> int:
    """A replay's state.position as known at ``known_at``: the last recorded position
    at or before it. Raises Miss (the full path says why) before the first event."""
    rows = c.execute(_LAST_RECORDED_SQL, (known_at,)).fetchall()
    if not rows or rows[0][0] is None:
        raise Miss(UNINDEXED)
    return int(rows[0][0])


#: the first recorded position of a revision by its id, up to a position
_RULE_BY_ID_SQL = "SELECT MIN(position) FROM rm_rules WHERE rule_id = ? AND position <= ?"
#: the revision a choice picks on a day (the timeline's row from the latest change day)
_RULE_ON_DAY_SQL = ("SELECT rule_position FROM rm_quota_rules WHERE choice = ? AND "
                    "from_day <= ? ORDER BY from_day DESC LIMIT 1")


def choose_rule(c: Cursor, as_of: dt.date, rule_id: str | None, on_the_books: bool,
                cut: int) -> int:
    """The recorded position of the revision ``select_rule`` would pick. Raises Miss
    when there is none (the full path says why) or the timeline is not computed."""
    if rule_id is not None:
        rows = c.execute(_RULE_BY_ID_SQL, (rule_id, cut)).fetchall()
        if rows[0][0] is None:
            raise Miss(UNINDEXED)
        return int(rows[0][0])
    choice = ON_THE_BOOKS if on_the_books else IN_FORCE
    rows = c.execute(_RULE_ON_DAY_SQL, (choice, _iso(as_of))).fetchall()
    if not rows:
        raise Miss(NO_TIMELINE)
    if rows[0][0] is None:
        raise Miss(UNINDEXED)
    return int(rows[0][0])


#: the first stored day of every regime (``dt.date.min``: before anything happens)
FIRST_DAY = dt.date.min.isoformat()
#: the stored day of pair ``p`` for an as-of date: the regime is the latest starting
#: on or before it (each regime has a FIRST_DAY row), the day the latest on or before
#: it in that regime; parameters: FIRST_DAY, as_of, as_of
_DAY_SQL = (
    "SELECT d.position FROM rm_quota_days d WHERE d.rule_position = p.rule_position "
    "AND d.country = p.country AND d.regime = (SELECT MAX(g.regime) FROM rm_quota_days g "
    "WHERE g.rule_position = p.rule_position AND g.country = p.country AND g.day = ? "
    "AND g.regime <= ?) AND d.day <= ? ORDER BY d.day DESC LIMIT 1")


#: a pair's valid_before and its stored day (parameters: those of _DAY_SQL, then the
#: pair's rule position and country)
_PAIR_DAY_SQL = (f"SELECT p.valid_before, ({_DAY_SQL}) FROM rm_quota_pairs p WHERE "
                 "p.rule_position = ? AND p.country = ?")


def _day_row(c: Cursor, rule_position: int, country: str, as_of: dt.date
             ) -> dict[str, Any]:
    """The stored position of the last day on or before ``as_of`` in the regime of
    ``as_of``, if the pair is valid then (one statement: one snapshot)."""
    day = _iso(as_of)
    rows = c.execute(_PAIR_DAY_SQL, (FIRST_DAY, day, day, rule_position, country)
                     ).fetchall()
    if not rows or _iso(as_of) >= rows[0][0]:
        raise Miss(STALE, [country], rule_position)
    if rows[0][1] is None:  # every built pair has a first day (dt.date.min): the fold
        raise Miss(UNINDEXED)
    data: dict[str, Any] = json.loads(rows[0][1])
    return data


#: the position of pair (r, c) on as-of date D as known at K < the read model's
#: position, in one statement (one snapshot on PostgreSQL too); parameters, in order:
#: r, c, K | r, c, K | r, c, FIRST_DAY, D | r, c, K, D | r, c, D, K, K | r, c, D.
#: ``last``: the pair's latest refresh at or before K (None: built later, or its history
#: restarted later); ``gap``: a batch recorded after that refresh and by K changed a day
#: on or before D (the rows valid at K are not all stored); ``since``: the first day a
#: refresh after K rewrote (the live rows before it are the ones valid at K; from it on,
#: the past rows valid at K are). Live rows are never valid at K from ``since`` on, past
#: rows never before it, so the later of the two found is the answer.
_KNOWN_SQL = (
    "WITH f AS (SELECT MAX(known_from) AS last FROM rm_quota_refreshes "
    "WHERE rule_position = ? AND country = ? AND known_from <= ?), "
    "w AS (SELECT COALESCE(MIN(since_day), '" + FRESH + "') AS since FROM rm_quota_refreshes "
    "WHERE rule_position = ? AND country = ? AND known_from > ?), "
    "g AS (SELECT MAX(regime) AS regime FROM rm_quota_days WHERE rule_position = ? AND "
    "country = ? AND day = ? AND regime <= ?) "
    "SELECT f.last, "
    "(SELECT MIN(m.day) FROM rm_quota_marks m WHERE m.rule_position = ? AND m.country = ? "
    "AND m.position > f.last AND m.position <= ? AND m.day <= ?), "
    "(SELECT p.position FROM rm_quota_past p WHERE p.rule_position = ? AND p.country = ? "
    "AND p.regime = g.regime AND p.day >= w.since AND p.day <= ? AND p.known_from <= ? "
    "AND p.known_to > ? ORDER BY p.day DESC LIMIT 1), "
    "(SELECT d.position FROM rm_quota_days d WHERE d.rule_position = ? AND d.country = ? "
    "AND d.regime = g.regime AND d.day <= ? AND d.day < w.since ORDER BY d.day DESC "
    "LIMIT 1) FROM f, w, g")


def _known_day_row(c: Cursor, rule_position: int, country: str, as_of: dt.date,
                   known_at: int) -> dict[str, Any]:
    """The stored position of the last day on or before ``as_of``, as known at
    ``known_at`` (before the read model's position). Raises Miss(UNINDEXED) when the
    rows valid then are not all stored: the fold answers."""
    r, k, day = (rule_position, country), known_at, _iso(as_of)
    rows = c.execute(_KNOWN_SQL, (*r, k, *r, k, *r, FIRST_DAY, day, *r, k, day,
                                  *r, day, k, k, *r, day)).fetchall()
    last, gap, past, live = rows[0] if rows else (None, None, None, None)
    found = past if past is not None else live
    if last is None or gap is not None or found is None:
        raise Miss(UNINDEXED)
    data: dict[str, Any] = json.loads(found)
    return data


def _stamp(data: dict[str, Any], as_of: dt.date, known_at: int | None,
           state_position: int) -> dict[str, Any]:
    data["as_of"] = _iso(as_of)
    data["known_at"] = known_at
    data["computed_at_position"] = (state_position if known_at is None
                                    else min(known_at, state_position))
    return data


def lookup(c: Cursor, country: str, as_of: dt.date, *, rule_id: str | None = None,
           known_at: int | None = None, on_the_books: bool = False,
           head_sql: str | None = None) -> dict[str, Any]:
    """The position of ``country`` on ``as_of`` as ``ledger quota --json`` prints it
    (``Position.model_dump(mode="json")`` without contributions), from the index as
    the read model stands (with ``head_sql``: only if it has folded the whole log).
    Raises Miss."""
    cut, state_position = _positions(c, known_at, head_sql)
    if known_at is None or not is_past(known_at, cut):
        rule_position = choose_rule(c, as_of, rule_id, on_the_books, cut)
        return _stamp(_day_row(c, rule_position, country, as_of), as_of, known_at,
                      state_position)
    state_position = _known_positions(c, known_at)
    rule_position = choose_rule(c, as_of, rule_id, on_the_books, known_at)
    if rule_id is None and _rules_after(c, known_at):
        raise Miss(UNINDEXED)  # the stored timeline is of the revisions recorded since
    return _stamp(_known_day_row(c, rule_position, country, as_of, known_at), as_of,
                  known_at, state_position)


_RULES_AFTER_SQL = "SELECT 1 FROM rm_rules WHERE position > ? LIMIT 1"


def _rules_after(c: Cursor, known_at: int) -> bool:
    """Whether a rule revision was recorded after ``known_at``."""
    return bool(c.execute(_RULES_AFTER_SQL, (known_at,)).fetchall())


_COUNTRIES_SQL = "SELECT country FROM rm_quota_countries ORDER BY country"
_PAIRS_OF_RULE_SQL = "SELECT country, valid_before FROM rm_quota_pairs WHERE rule_position = ?"
#: the stored day of every active pair of a revision, by country (parameters: those of
#: _DAY_SQL, then the rule position)
_ACTIVE_DAYS_SQL = (f"SELECT ({_DAY_SQL}) FROM rm_quota_pairs p WHERE p.rule_position = ? "
                    "AND p.active = 1 ORDER BY p.country")


def lookup_all(c: Cursor, as_of: dt.date, *, rule_id: str | None = None,
               known_at: int | None = None, on_the_books: bool = False,
               head_sql: str | None = None) -> list[dict[str, Any]]:
    """Every active country's position on ``as_of`` (sorted by country), like
    ``quota_all``. Raises Miss naming the stale countries (a past ``known_at``:
    Miss(UNINDEXED), the fold answers)."""
    cut, state_position = _positions(c, known_at, head_sql)
    if is_past(known_at, cut):
        raise Miss(UNINDEXED)
    rule_position = choose_rule(c, as_of, rule_id, on_the_books, cut)
    countries = [r[0] for r in c.execute(_COUNTRIES_SQL).fetchall()]
    pairs = dict(c.execute(_PAIRS_OF_RULE_SQL, (rule_position,)).fetchall())
    stale = [country for country in countries
             if _iso(as_of) >= pairs.get(country, EVERYTHING)]
    if stale:
        raise Miss(STALE, stale, rule_position)
    day = _iso(as_of)
    rows = c.execute(_ACTIVE_DAYS_SQL, (FIRST_DAY, day, day, rule_position)).fetchall()
    return [_stamp(json.loads(r[0]), as_of, known_at, state_position) for r in rows]


# --- the lookup on a bare connection (a ``ledger quota`` process) ----------------------

#: eventsourcing's events table of the Ledger application, per backend (a test keeps
#: them equal to the recorder's ``events_table_name``)
EVENTS_TABLE = {"sqlite": "stored_events", "postgres": "public.ledger_events"}
#: ... and the column that orders it
EVENTS_ORDER = {"sqlite": "rowid", "postgres": "notification_id"}


class _Bare:
    """``?`` placeholders over a DB-API cursor (sqlite3, psycopg or projections.libpq)."""

    def __init__(self, raw: Any, pg: bool):
        self.raw = raw
        self.pg = pg

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.raw.execute(sql.replace("?", "%s") if self.pg else sql, params)
        return self.raw


def lookup_database(url: str, country: str, as_of: dt.date, *, rule_id: str | None = None,
                    on_the_books: bool = False, known_at: int | None = None
                    ) -> dict[str, Any] | None:
    """``lookup`` on a connection of its own, without the Ledger application: what a
    ``ledger quota --json`` process prints, known at the head or at the recorded
    position ``known_at``. None when the index cannot answer as it stands (no
    database or read model yet, the read model behind the log, a stale pair, no
    revision applies, ``known_at`` not a recorded position of the log or its rows not
    kept): the caller then takes the full path, which catches up, builds, folds, or
    refuses with the right error."""
    try:
        return _lookup_database(url, country, as_of, rule_id, on_the_books, known_at)
    except Miss:
        return None
    except Exception:  # noqa: BLE001 - any failure here: the full path will say what
        return None


def _lookup_database(url: str, country: str, as_of: dt.date, rule_id: str | None,
                     on_the_books: bool, known_at: int | None) -> dict[str, Any] | None:
    if url.startswith(("postgresql://", "postgres://")):
        from projections import libpq  # libpq through ctypes, else psycopg

        with libpq.connect(url, connect_timeout=5) as conn, conn.cursor() as raw:
            return _lookup_caught_up(_Bare(raw, True), country, as_of, rule_id,
                                     on_the_books, known_at)
    import os
    import sqlite3
    from urllib.parse import quote

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    if not path or not os.path.isfile(path):
        return None
    lite = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
    try:
        return _lookup_caught_up(_Bare(lite.cursor(), False), country, as_of, rule_id,
                                 on_the_books, known_at)
    finally:
        lite.close()


#: the log's head, per backend (``head_sql`` of ``lookup``)
_HEAD_SQL = {backend: f"SELECT MAX({EVENTS_ORDER[backend]}) FROM {table}"
             for backend, table in EVENTS_TABLE.items()}
#: SQLite: one snapshot for every statement of a lookup (PostgreSQL: psycopg and
#: projections.libpq open a transaction with the first statement)
_SNAPSHOT_SQL = "BEGIN"


def _lookup_caught_up(c: _Bare, country: str, as_of: dt.date,
                      rule_id: str | None, on_the_books: bool, known_at: int | None
                      ) -> dict[str, Any] | None:
    """``lookup``, if the read model has folded everything recorded (or everything up
    to a past ``known_at``)."""
    if not c.pg:
        c.execute(_SNAPSHOT_SQL)
    if known_at is not None and not _recorded(c, known_at):
        return None
    return lookup(c, country, as_of, rule_id=rule_id, on_the_books=on_the_books,
                  known_at=known_at, head_sql=_HEAD_SQL["postgres" if c.pg else "sqlite"])


_RECORDED_RANGE_SQL = f"SELECT MIN(position), MAX(position) FROM {CHAIN_TABLE}"


def _recorded(c: Cursor, known_at: int) -> bool:
    """Whether ``known_at`` is a position ``--known-at`` accepts: from the first
    recorded event to the head (the full path refuses the others, naming why)."""
    first, head = c.execute(_RECORDED_RANGE_SQL).fetchall()[0]
    return first is not None and int(first) <= known_at <= int(head)


# --- maintenance: what a catch-up batch changed --------------------------------------------


class _Marks:
    """The earliest day from which each country's stored days may have changed."""

    def __init__(self) -> None:
        self.by_country: dict[str, str] = {}

    def mark(self, country: str, day: str) -> None:
        if day < self.by_country.get(country, FRESH):
            self.by_country[country] = day


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i:i + IN_CHUNK]


def _in(n: int) -> str:
    return ",".join("?" * n)


_ADD_COUNTRY_SQL = ("INSERT INTO rm_quota_countries (country) VALUES (?) "
                   "ON CONFLICT (country) DO NOTHING")
_FORGET_TIMELINE_SQL = "DELETE FROM rm_quota_rules"
_ANY_PAIR_SQL = "SELECT 1 FROM rm_quota_pairs LIMIT 1"
#: the countries (and each one's earliest ship date) of the shipments naming licenses or
#: VEUs; format with the IN list (``_in``)
_NAMED_BY_SQL = ("SELECT destination, MIN(ship_date) FROM rm_shipment_versions WHERE "
                 "auth_ref IN ({}) GROUP BY destination")
#: the countries where LPP consignees ship under LPP; format with the IN list
_LPP_COUNTRIES_SQL = ("SELECT consignee_id, destination FROM rm_shipment_versions WHERE "
                      "auth_kind = 'lpp' AND consignee_id IN ({}) "
                      "GROUP BY consignee_id, destination")


def note_batch(c: Any, folder: Any, events: int, first: int) -> None:
    """Record what one catch-up batch changed (``folder``: the read model's batch
    folder, after it wrote its rows; ``first``: the position of its first event), in
    the batch's transaction."""
    versions = [*folder.new_versions, *folder.old_versions]
    countries = sorted({r[9] for r in versions} | {a[1] for a in folder.allocations})
    if countries:
        c.executemany(_ADD_COUNTRY_SQL, [(x,) for x in countries])
    if folder.rules:
        c.execute(_FORGET_TIMELINE_SQL)
    if not c.execute(_ANY_PAIR_SQL).fetchall():
        return  # nothing built yet: nothing to mark
    if events > DETAIL_LIMIT:
        _lower(c, [(EVERYTHING, None)], first)
        return
    marks = _Marks()
    lpp: dict[str, str] = {}
    for r in versions:
        marks.mark(r[9], r[8])
        if r[14] == "lpp":
            lpp[r[10]] = min(lpp.get(r[10], FRESH), r[8])
    _mark_allocations(c, folder, marks)
    refs = sorted({a[0] for a in folder.allocations} | {a[0] for a in folder.alloc_changes}
                  | {v[0] for v in folder.veus} | {v[0] for v in folder.veu_changes})
    for chunk in _chunks(refs):
        for country, earliest in c.execute(_NAMED_BY_SQL.format(_in(len(chunk))),
                                           chunk).fetchall():
            marks.mark(country, earliest)
    consignees = sorted(lpp)
    for chunk in _chunks(consignees):
        for consignee, country in c.execute(_LPP_COUNTRIES_SQL.format(_in(len(chunk))),
                                            chunk).fetchall():
            marks.mark(country, lpp[consignee])
    _lower(c, [(day, country) for country, day in sorted(marks.by_country.items())], first)


#: the pairs whose valid_before a day lowers: of every country, of one country
_LOWERED = "valid_before > ?"
_LOWERED_OF_COUNTRY = f"country = ? AND {_LOWERED}"
#: format with one of the two
_MARK_SQL = ("INSERT INTO rm_quota_marks (rule_position, country, position, day) "
             "SELECT rule_position, country, ?, ? FROM rm_quota_pairs WHERE {}")
_LOWER_SQL = "UPDATE rm_quota_pairs SET valid_before = ? WHERE {}"


def _lower(c: Any, marks: Sequence[tuple[str, str | None]], first: int) -> None:
    """Lower ``valid_before`` to ``day`` for each (day, country; None: every country),
    noting in rm_quota_marks, per pair lowered, the position from which its days from
    ``day`` on may differ (what a known-at lookup checks)."""
    for day, country in marks:
        where, args = (_LOWERED, (day,)) if country is None else (
            _LOWERED_OF_COUNTRY, (country, day))
        c.execute(_MARK_SQL.format(where), (first, day, *args))
        c.execute(_LOWER_SQL.format(where), (day, *args))


#: the country and start of allocations; format with the IN list
_ALLOCATIONS_SQL = ("SELECT allocation_id, country, valid_from FROM rm_allocations WHERE "
                    "allocation_id IN ({})")


def _mark_allocations(c: Cursor, folder: Any, marks: _Marks) -> None:
    """An allocation's country, from the earliest day its standing may have changed."""
    earliest: dict[str, str] = {}
    for alloc_id, _country, _holder, valid_from, *_rest in folder.allocations:
        earliest[alloc_id] = min(earliest.get(alloc_id, FRESH), valid_from)
    for alloc_id, _pos, _kind, effective, _amount in folder.alloc_changes:
        earliest[alloc_id] = min(earliest.get(alloc_id, FRESH), effective)
    ids = sorted(earliest)
    for chunk in _chunks(ids):
        for alloc_id, country, valid_from in c.execute(
                _ALLOCATIONS_SQL.format(_in(len(chunk))), chunk).fetchall():
            marks.mark(country, min(valid_from, earliest[alloc_id]))


# --- maintenance: building pairs and the timeline (the heavy path) ----------------------


def dump_position(p: Position) -> str:
    """A position as stored: what ``ledger quota --json`` prints."""
    # pydantic's own JSON (the stored text is only ever read back with json.loads,
    # which gives what ``model_dump(mode="json")`` gives)
    return p.model_dump_json(exclude={"contributions"})


def timeline(rules: list[tuple[int, RuleBook]]) -> list[tuple[str, str, int | None]]:
    """(choice, from day, rule position or None) rows: the revision ``in_force`` and
    ``on_the_books`` pick, from each day on which the pick can change (every date a
    rule document names, and the day after it: both functions compare days with the
    documents' dates). None: no published revision (the fold answers)."""
    from ledger.rulebook import in_force, on_the_books

    books = [book for _pos, book in rules]
    position_of = {id(book): pos for pos, book in rules}  # a later equal document wins
    days = {day for book in books for day in _change_days(book)}
    out: list[tuple[str, str, int | None]] = []
    for choice, pick in ((IN_FORCE, in_force), (ON_THE_BOOKS, on_the_books)):
        previous: object = object()
        for day in sorted(days):
            chosen = pick(books, day)
            # None also when the pick is not a published revision (``on_the_books``
            # composes one from instruments): not indexed, the fold answers
            rule_position = None if chosen is None else position_of.get(id(chosen))
            if rule_position != previous:
                out.append((choice, _iso(day), rule_position))
                previous = rule_position
    return out


def _change_days(book: RuleBook) -> list[dt.date]:
    """Every date the rule document names and the day after it, sorted: the only days
    on which a choice that compares days with the document's dates can change."""
    days = {dt.date.min}
    for day in _dates(book.model_dump()):
        days.add(day)
        if day < dt.date.max:
            days.add(day + dt.timedelta(days=1))
    return sorted(days)


def regimes(book: RuleBook, country: str) -> list[dt.date]:
    """The as-of dates from which ``country``'s cap, tier and cap-period standing
    under ``book`` are what they are, until the next one (the first: ``dt.date.min``):
    what a position takes from its as-of date."""
    from projections.positions import cap_period_of

    out: list[dt.date] = []
    previous: object = object()
    for day in _change_days(book):
        period = cap_period_of(book, country, day)
        now = (book.cap_for(country, day), book.tier_of(country, day),
               period is not None and period.contains(day))
        if now != previous:
            out.append(day)
            previous = now
    return out


def _dates(value: Any) -> Iterator[dt.date]:
    if isinstance(value, dt.date):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _dates(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _dates(v)


# --- maintenance: the past of a pair (what a known-at lookup reads) ------------------------

#: a pair's past rows are kept up to this many times its live rows; beyond, its history
#: restarts at the refresh (known-at positions before it go to the fold)
HISTORY_FACTOR = 4
#: ... and up to this many refreshes
MAX_REFRESHES = 64

Pair = tuple[int, str]


def computed_at(refreshes: Sequence[tuple[int, str]], day: str) -> int | None:
    """The position a live day row was computed as known at: that of the latest
    refresh (known_from, since_day) that recomputed ``day`` (None: none recorded)."""
    found = [known_from for known_from, since in refreshes if since <= day]
    return max(found) if found else None


def closed_at(pending: Sequence[tuple[int, str]], day: str) -> int | None:
    """The first position from which a live day row may be wrong: that of the first
    batch, among the marks (position, day) since the last refresh, that changed a
    day on or before it (None: none did)."""
    found = [position for position, mark_day in pending if mark_day <= day]
    return min(found) if found else None


_PAIR = "rule_position = ? AND country = ?"
_REFRESHES_SQL = f"SELECT known_from, since_day FROM rm_quota_refreshes WHERE {_PAIR}"
_MARKS_AFTER_SQL = f"SELECT position, day FROM rm_quota_marks WHERE {_PAIR} AND position > ?"
_DAYS_FROM_SQL = f"SELECT regime, day, position FROM rm_quota_days WHERE {_PAIR} AND day >= ?"
_PAST_COLUMNS = "rule_position, country, regime, day, known_from, known_to, position"


def _keep_past(c: Any, pair: Pair, since: str) -> None:
    """Before a refresh replaces the pair's live rows from ``since`` on: keep each in
    rm_quota_past, valid from the position it was computed at until the first batch
    that may have changed it."""
    refreshes = c.execute(_REFRESHES_SQL, pair).fetchall()
    if not refreshes:  # built before the index kept a past
        return
    last = max(known_from for known_from, _since in refreshes)
    pending = c.execute(_MARKS_AFTER_SQL, (*pair, last)).fetchall()
    past = []
    for regime, day, position in c.execute(_DAYS_FROM_SQL, (*pair, since)).fetchall():
        start, end = computed_at(refreshes, day), closed_at(pending, day)
        if start is not None and end is not None and start < end:
            past.append((*pair, regime, day, start, end, position))
    c.insert_rows("rm_quota_past", _PAST_COLUMNS, past)


_NOTE_REFRESH_SQL = ("INSERT INTO rm_quota_refreshes (rule_position, country, known_from, "
                     "since_day) VALUES (?, ?, ?, ?)")
#: a pair's past rows, live rows and refreshes (parameters: the pair, three times)
_HISTORY_SIZE_SQL = (f"SELECT (SELECT COUNT(*) FROM rm_quota_past WHERE {_PAIR}), "
                     f"(SELECT COUNT(*) FROM rm_quota_days WHERE {_PAIR}), "
                     f"(SELECT COUNT(*) FROM rm_quota_refreshes WHERE {_PAIR})")
#: what a restarted history forgets
_FORGET_HISTORY_SQL = [f"DELETE FROM {table} WHERE {_PAIR}"
                       for table in ("rm_quota_past", "rm_quota_refreshes", "rm_quota_marks")]


def _note_refresh(c: Any, pair: Pair, since: str, cut: int) -> None:
    """Record that the pair's days from ``since`` on are now as known at ``cut``;
    restart its history at ``cut`` when it outgrew its bounds (``HISTORY_FACTOR``,
    ``MAX_REFRESHES``)."""
    c.execute(_NOTE_REFRESH_SQL, (*pair, cut, since))
    past, live, refreshes = c.execute(_HISTORY_SIZE_SQL, (*pair, *pair, *pair)
                                      ).fetchall()[0]
    if past > HISTORY_FACTOR * live or refreshes > MAX_REFRESHES:
        for forget in _FORGET_HISTORY_SQL:
            c.execute(forget, pair)
        # every live row is exact as known at cut (the pair was just refreshed)
        c.execute(_NOTE_REFRESH_SQL, (*pair, cut, EVERYTHING))


# the statements of PositionIndex's maintenance
_POSITION_SQL = "SELECT position FROM rm_position WHERE name = ?"
_HOLD = " FOR UPDATE"  # PostgreSQL's row lock (SQLite: BEGIN IMMEDIATE holds the file)
_TIMELINE_ROW_SQL = ("INSERT INTO rm_quota_rules (choice, from_day, rule_position) "
                     "VALUES (?, ?, ?)")
_VALID_BEFORE_SQL = "SELECT rule_position, valid_before FROM rm_quota_pairs WHERE country = ?"
_DROP_DAYS_FROM_SQL = f"DELETE FROM rm_quota_days WHERE {_PAIR} AND day >= ?"
_DAY_COLUMNS = "rule_position, country, regime, day, position"
_DROP_PAIR_SQL = f"DELETE FROM rm_quota_pairs WHERE {_PAIR}"
_ADD_PAIR_SQL = ("INSERT INTO rm_quota_pairs (rule_position, country, valid_before, active) "
                 "VALUES (?, ?, ?, ?)")
_STALE_PAIRS_SQL = ("SELECT country, rule_position FROM rm_quota_pairs WHERE "
                    "valid_before <> ? ORDER BY country, rule_position")
_ANY_COUNTRY_SQL = "SELECT 1 FROM rm_quota_countries LIMIT 1"
_ANY_SHIPMENT_SQL = "SELECT 1 FROM rm_shipment_versions LIMIT 1"
_ANY_ALLOCATION_SQL = "SELECT 1 FROM rm_allocations LIMIT 1"
_SEED_COUNTRIES_SQL = ("INSERT INTO rm_quota_countries (country) SELECT u.country FROM "
                       "(SELECT destination AS country FROM rm_shipment_versions UNION "
                       "SELECT country FROM rm_allocations) u WHERE u.country IS NOT NULL "
                       "ON CONFLICT (country) DO NOTHING")


class PositionIndex:
    """Answers and maintenance of the index of one read model."""

    def __init__(self, rm: ReadModel):
        self.rm = rm

    def position(self, country: str, as_of: dt.date, *, rule_id: str | None = None,
                 known_at: int | None = None, on_the_books: bool = False,
                 catch_up: bool = True) -> Position | None:
        """The indexed answer (catching the read model up and building what is stale
        first), or None when only the full fold answers (see the module docstring)."""
        from projections.positions import Position

        head = self.rm._head_sql() if catch_up else None
        data = self._retrying(lambda c: lookup(c, country, as_of, rule_id=rule_id,
                                               known_at=known_at, on_the_books=on_the_books,
                                               head_sql=head))
        return None if data is None else Position.model_validate(data)

    def positions_all(self, as_of: dt.date, *, rule_id: str | None = None,
                      known_at: int | None = None, on_the_books: bool = False,
                      catch_up: bool = True) -> list[Position] | None:
        from projections.positions import Position

        self._seed_countries()
        head = self.rm._head_sql() if catch_up else None
        found = self._retrying(lambda c: lookup_all(c, as_of, rule_id=rule_id,
                                                    known_at=known_at,
                                                    on_the_books=on_the_books,
                                                    head_sql=head))
        return None if found is None else [Position.model_validate(d) for d in found]

    def _retrying(self, ask: Any) -> Any:
        self.rm.ensure_schema()
        for _attempt in range(20):
            try:
                with self.rm._tx(commit=False) as c:
                    return ask(c)
            except Miss as miss:
                if miss.reason == UNINDEXED:
                    return None
                if miss.reason == BEHIND:
                    self.rm.catch_up()
                elif miss.reason == NO_TIMELINE:
                    self.refresh_timeline()
                else:
                    for country in miss.countries:
                        self.refresh(country, miss.rule_position)
        raise RuntimeError("the position index kept changing under this query")

    # --- building ------------------------------------------------------------------

    def _lock(self, c: Any) -> int:
        """Hold rm_position for this transaction (SQLite: BEGIN IMMEDIATE already
        does); returns it. A catch-up batch waits until this transaction ends."""
        sql = _POSITION_SQL + _HOLD if self.rm.pg else _POSITION_SQL
        rows = c.execute(sql, (PROJECTION,)).fetchall()
        return int(rows[0][0]) if rows else 0

    def refresh_timeline(self) -> None:
        self.rm.ensure_schema()
        with self.rm._tx() as c:
            cut = self._lock(c)
            c.execute(_FORGET_TIMELINE_SQL)
            c.executemany(_TIMELINE_ROW_SQL, timeline(self.rm._rules(c, cut)))

    def refresh(self, country: str, rule_position: int | None = None) -> int:
        """Recompute ``country``'s stale pairs (under ``rule_position``, or every
        revision) from their ``valid_before`` on; returns how many were rebuilt."""
        from projections.positions import position_days

        self.rm.ensure_schema()
        with self.rm._tx() as c:
            cut = self._lock(c)
            valid = dict(c.execute(_VALID_BEFORE_SQL, (country,)).fetchall())
            todo = [(pos, book) for pos, book in self.rm._rules(c, cut)
                    if valid.get(pos, EVERYTHING) != FRESH
                    and rule_position in (None, pos)]
            if not todo:
                return 0
            state = self.rm.country_state_in(c, country, None, None)
            active = int(bool(state.by_country.get(country))
                         or bool(state.allocations_by_country.get(country)))
            for pos, book in todo:
                since = valid.get(pos, EVERYTHING)
                _keep_past(c, (pos, country), since)
                c.execute(_DROP_DAYS_FROM_SQL, (pos, country, since))
                rows = [(pos, country, _iso(regime), _iso(day), dump_position(p))
                        for regime, day, p in position_days(state, country, book,
                                                            regimes(book, country))
                        if _iso(day) >= since]
                c.insert_rows("rm_quota_days", _DAY_COLUMNS, rows)
                _note_refresh(c, (pos, country), since, cut)
                c.execute(_DROP_PAIR_SQL, (pos, country))
                c.execute(_ADD_PAIR_SQL, (pos, country, FRESH, active))
            return len(todo)

    def refresh_all(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Build every stale pair of every country (e.g. after a rebuild or an
        import); ``progress(countries done, countries)`` after each country."""
        self._seed_countries()
        with self.rm._tx(commit=False) as c:
            countries = [r[0] for r in c.execute(_COUNTRIES_SQL).fetchall()]
        self.refresh_timeline()
        built = 0
        for done, country in enumerate(countries, 1):
            built += self.refresh(country)
            if progress is not None:
                progress(done, len(countries))
        return built

    def refresh_stale(self) -> int:
        """Recompute every built pair that catch-up marked stale (the deploy's
        catch-up service runs this, so queries find them fresh)."""
        self.rm.ensure_schema()
        with self.rm._tx(commit=False) as c:
            stale = c.execute(_STALE_PAIRS_SQL, (FRESH,)).fetchall()
        return sum(self.refresh(country, int(pos)) for country, pos in stale)

    def _seed_countries(self) -> None:
        """Fill rm_quota_countries from the rows of a read model folded before the
        index existed (its batches did not list their countries)."""
        self.rm.ensure_schema()
        with self.rm._tx(commit=False) as c:
            if c.execute(_ANY_COUNTRY_SQL).fetchall():
                return
            if not c.execute(_ANY_SHIPMENT_SQL).fetchall() and \
                    not c.execute(_ANY_ALLOCATION_SQL).fetchall():
                return
        with self.rm._tx() as c:
            c.execute(_SEED_COUNTRIES_SQL)
