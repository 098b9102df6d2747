"""A lean read-only PostgreSQL connection: libpq itself through ctypes.

Why: a ``ledger quota --json`` process answered by the position index runs a handful
of SELECTs on a bare connection (``position_index.lookup_database``), yet
``import psycopg`` alone costs ~0.1 s of CPU (psycopg.pq, psycopg_binary,
typing_extensions, importlib.metadata, asyncio...), more than the whole indexed answer
on SQLite. Those SELECTs need only a connection, ``execute`` with parameters and
``fetchall`` of integers and text, which the standard library's ctypes gets from
libpq in a few milliseconds. The library is psycopg_binary's own bundled copy (found
next to the package without importing it), else the system's ``libpq``.

``connect`` returns a lean connection or, when there is none to be had (no library
loads, a symbol is missing, the client encoding is not UTF-8, ``LEDGER_LEAN_LIBPQ=0``),
psycopg's; a server that refuses or cannot be reached raises ``Error`` (the caller's
full path then says why). The answer never depends on which one ran, only the
start-up does. The lean one behaves as psycopg does for what the lookup uses:

- the connection string is the same libpq URI, with ``connect_timeout`` overriding
  the URI's (psycopg's ``make_conninfo``);
- one transaction per connection, begun before the first statement (psycopg's
  default, READ COMMITTED; here also READ ONLY), ended by closing the connection;
- placeholders as psycopg parses them: ``%s`` (and ``%t``) become ``$1..$n`` in order,
  ``%%`` is a ``%``; the values travel apart from the SQL, never interpolated into
  it. Parameters typed as psycopg types them: ``str`` unknown (the server infers its
  type from the context), ``int`` int2/int4/int8/numeric by its size, ``bool``,
  ``None`` NULL; anything else raises ``Unsupported``;
- result values by column type OID, as psycopg loads them (text format):

  ====================================  ==========  =================================
  type (OID)                            Python      read by the lookup as
  ====================================  ==========  =================================
  int2 (21), int4 (23), int8 (20),      ``int``     rm_position.position, MAX/MIN of
  oid (26)                                          ledger_chain.position and
                                                    ledger_events.notification_id,
                                                    rm_rules.position,
                                                    rm_quota_rules.rule_position,
                                                    rm_quota_refreshes.known_from
                                                    (all BIGINT), ``SELECT 1``
  text (25), varchar (1043),            ``str``     rm_quota_pairs.valid_before,
  bpchar (1042), name (19), "char" (18)             rm_quota_days/past.position (the
                                                    position as JSON text),
                                                    MIN(rm_quota_marks.day)
  bool (16)                             ``bool``    (none today)
  NULL (any type)                       ``None``    empty aggregates, scalar
                                                    subqueries without a row
  ====================================  ==========  =================================

  any other type raises ``Unsupported`` (the lookup then fails and the caller's full
  path answers): a query reading one must add it here, with its test.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

#: env var: "0" forces psycopg (tests compare both paths)
LEAN_ENV = "LEDGER_LEAN_LIBPQ"
CONNECTION_OK = 0
PGRES_COMMAND_OK, PGRES_TUPLES_OK = 1, 2
_INTS = frozenset({20, 21, 23, 26})
_TEXTS = frozenset({25, 1043, 1042, 19, 18})
_BOOL = 16


class Unsupported(Exception):
    """The lean connection cannot do this; psycopg can (or the full path answers)."""


class Error(Exception):
    """An error libpq reported (its message), or one psycopg raises too (placeholders,
    a NUL in a text parameter)."""


def connect(url: str, connect_timeout: int) -> Any:
    """A lean connection to ``url`` if one can be had, else psycopg's
    ``psycopg.connect(url, connect_timeout=...)``. Both are context managers with
    ``cursor()`` (itself one) whose ``execute(sql, params)`` takes psycopg placeholders
    and whose ``fetchall()`` returns tuples. A server that refuses or cannot be reached
    raises ``Error`` at once (the caller's full path then opens the ledger and says
    why): trying psycopg too would wait a second ``connect_timeout`` and log in twice."""
    if os.environ.get(LEAN_ENV, "1") != "0":
        try:
            return LeanConnection(_library(), url, connect_timeout)
        except Error:
            raise
        except Exception:  # noqa: BLE001 - no usable libpq here: today's psycopg path
            pass
    import psycopg

    return psycopg.connect(url, connect_timeout=connect_timeout)


# --- the library ----------------------------------------------------------------------------

_lib: Any = None


def _library() -> Any:
    """libpq with the prototypes used here, loaded once (raises if none loads)."""
    global _lib
    if _lib is None:
        _lib = _prototypes(_load())
    return _lib


def _load() -> ctypes.CDLL:
    bundled = _bundled()
    if bundled is not None:
        try:
            return ctypes.CDLL(bundled)
        except OSError:
            pass
    from ctypes.util import find_library

    name = find_library("pq")
    if name is None:
        raise Unsupported("no libpq found")
    return ctypes.CDLL(name)


def _bundled() -> str | None:
    """psycopg_binary's libpq (``psycopg_binary.libs/libpq-*.so*`` beside the package),
    located without importing psycopg_binary."""
    import importlib.util

    spec = importlib.util.find_spec("psycopg_binary")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = next(iter(spec.submodule_search_locations))
    libs = os.path.join(os.path.dirname(package), "psycopg_binary.libs")
    try:
        names = sorted(n for n in os.listdir(libs) if n.startswith("libpq"))
    except OSError:
        return None
    return os.path.join(libs, names[0]) if names else None


def _prototypes(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, s, i, u = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint
    strings = ctypes.POINTER(ctypes.c_char_p)
    for name, restype, argtypes in (
            ("PQconnectdbParams", p, [strings, strings, i]),
            ("PQstatus", i, [p]), ("PQerrorMessage", s, [p]), ("PQfinish", None, [p]),
            ("PQparameterStatus", s, [p, s]),
            ("PQexecParams", p, [p, s, i, ctypes.POINTER(u), strings,
                                 ctypes.POINTER(i), ctypes.POINTER(i), i]),
            ("PQresultStatus", i, [p]), ("PQresultErrorMessage", s, [p]),
            ("PQntuples", i, [p]), ("PQnfields", i, [p]), ("PQftype", u, [p, i]),
            ("PQgetvalue", s, [p, i, i]), ("PQgetisnull", i, [p, i, i]),
            ("PQclear", None, [p])):
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def _strings(values: Sequence[bytes | None]) -> Any:
    return (ctypes.c_char_p * (len(values) + 1))(*values, None)


# --- the connection ---------------------------------------------------------------------


class LeanConnection:
    """One libpq connection, one read-only transaction (see the module docstring)."""

    def __init__(self, lib: Any, url: str, connect_timeout: int):
        self.lib = lib
        keywords = _strings([b"dbname", b"connect_timeout"])
        values = _strings([url.encode(), str(int(connect_timeout)).encode()])
        self.conn = lib.PQconnectdbParams(keywords, values, 1)
        if not self.conn:
            raise Error("libpq could not allocate a connection")
        if lib.PQstatus(self.conn) != CONNECTION_OK:
            message = (lib.PQerrorMessage(self.conn) or b"").decode(errors="replace")
            self.close()
            raise Error(message.strip())
        if lib.PQparameterStatus(self.conn, b"client_encoding") != b"UTF8":
            self.close()
            raise Unsupported("client encoding is not UTF-8")
        self.begun = False

    def cursor(self) -> LeanCursor:
        return LeanCursor(self)

    def close(self) -> None:
        if self.conn:
            self.lib.PQfinish(self.conn)
            self.conn = None

    def __del__(self) -> None:
        # one used outside ``with`` closes when collected, as psycopg's does
        if getattr(self, "conn", None):
            self.close()

    def __enter__(self) -> LeanConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Execute one statement (``$n`` placeholders) and return its rows."""
        if not self.conn:
            raise Error("the connection is closed")
        if not self.begun:
            self.begun = True
            self._result(self._send("BEGIN READ ONLY", []))
        return self._result(self._send(sql, params))

    def _send(self, sql: str, params: Sequence[Any]) -> Any:
        typed = [_param(p) for p in params]
        types, values = [t for t, _ in typed], [v for _, v in typed]
        n = len(types)
        result = self.lib.PQexecParams(self.conn, sql.encode(), n, (ctypes.c_uint * n)(*types),
                                       _strings(values), None, None, 0)
        if not result:
            raise Error((self.lib.PQerrorMessage(self.conn) or b"").decode(errors="replace"))
        return result

    def _result(self, result: Any) -> list[tuple[Any, ...]]:
        lib = self.lib
        try:
            status = lib.PQresultStatus(result)
            if status == PGRES_COMMAND_OK:
                return []
            if status != PGRES_TUPLES_OK:
                message = lib.PQresultErrorMessage(result) or b""
                raise Error(message.decode(errors="replace").strip())
            return _rows(lib, result)
        finally:
            lib.PQclear(result)


def _rows(lib: Any, result: Any) -> list[tuple[Any, ...]]:
    loads = [_loader(lib.PQftype(result, col)) for col in range(lib.PQnfields(result))]
    return [tuple(None if lib.PQgetisnull(result, row, col)
                  else load(lib.PQgetvalue(result, row, col))
                  for col, load in enumerate(loads))
            for row in range(lib.PQntuples(result))]


def _loader(oid: int) -> Any:
    """The function turning a text-format value of type ``oid`` into psycopg's value."""
    if oid in _INTS:
        return int
    if oid in _TEXTS:
        return _text
    if oid == _BOOL:
        return _bool
    raise Unsupported(f"result column of type OID {oid}")


def _text(value: bytes) -> str:
    return value.decode()


def _bool(value: bytes) -> bool:
    return value == b"t"


def _param(value: Any) -> tuple[int, bytes | None]:
    """(type OID, text-format value) of a parameter, typed as psycopg types it."""
    if value is None:
        return 0, None
    if isinstance(value, bool):
        return _BOOL, b"t" if value else b"f"
    if isinstance(value, int):
        return _int_oid(value), str(value).encode()
    if isinstance(value, str):
        if "\x00" in value:
            raise Error("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return 0, value.encode()
    raise Unsupported(f"parameter of type {type(value).__name__}")


def _int_oid(value: int) -> int:
    """int2, int4, int8 or numeric: the smallest that holds ``value`` (psycopg's)."""
    if -(2**15) <= value < 2**15:
        return 21
    if -(2**31) <= value < 2**31:
        return 23
    if -(2**63) <= value < 2**63:
        return 20
    return 1700


def numbered(query: str) -> tuple[str, int]:
    """(``query`` with psycopg's placeholders ``%s``/``%t`` numbered ``$1..$n`` in
    order and ``%%`` made ``%``, the number of placeholders). Raises Unsupported on
    ``%b`` and named placeholders, Error on anything else after a ``%`` (where psycopg
    raises ProgrammingError)."""
    pieces = query.split("%")
    out, n, i = [pieces[0]], 0, 1
    while i < len(pieces):
        piece = pieces[i]
        if piece == "" and i + 1 < len(pieces):  # "%%"
            out.append("%" + pieces[i + 1])
            i += 2
            continue
        kind = piece[:1]
        if kind in ("s", "t"):
            n += 1
            out.append(f"${n}{piece[1:]}")
        elif kind in ("b", "("):
            raise Unsupported(f"placeholder %{kind}")
        else:
            raise Error(f"only '%s', '%b', '%t' are allowed as placeholders, got '%{kind}'")
        i += 1
    return "".join(out), n


class LeanCursor:
    """psycopg's cursor, as far as the lookup uses one: ``execute``, ``fetchall``."""

    def __init__(self, connection: LeanConnection):
        self.connection = connection
        self.rows: list[tuple[Any, ...]] | None = None

    def execute(self, query: str, params: Sequence[Any] = ()) -> LeanCursor:
        sql, n = numbered(query)
        if n != len(params):
            raise Error(f"the query has {n} placeholders but {len(params)} parameters "
                        "were passed")
        self.rows = self.connection.run(sql, list(params))
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self.rows is None:
            raise Error("no result available")
        rows, self.rows = self.rows, []
        return rows

    def __enter__(self) -> LeanCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.rows = None
