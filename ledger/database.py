"""Which database the ledger opens, and the settings it opens it with.

``--db`` / ``LEDGER_DB`` is a SQLite file path or ``postgresql://user[:password]@host
[:port]/dbname[?schema=NAME]``. This module turns it into eventsourcing settings and
guards the edges of opening it:

- **Pinned settings.** eventsourcing reads its settings from the process environment
  (``POSTGRES_ENABLE_DB_FUNCTIONS``, ``POSTGRES_SCHEMA``, ``CIPHER_KEY``,
  ``COMPRESSOR_TOPIC``, ``SQLITE_DBNAME``, any of them prefixed ``LEDGER_`` …). The
  ledger never lets it: ``database_env`` gives every setting the library reads a fixed
  value, and ``Ledger.construct_env`` hands the library only these, so no environment
  variable can change where or how events, chain links and read models are stored
  (with ``POSTGRES_ENABLE_DB_FUNCTIONS=y`` events were written without their chain
  link). The few operational knobs the ledger does read are listed in
  ``LEDGER_SETTINGS``, validated, and documented in the README.
- **A schema, all or nothing.** On PostgreSQL ``?schema=NAME`` puts every table in
  that schema: events, tracking and chain (eventsourcing qualifies them) and the
  read models ``rm_*`` (each connection's ``search_path`` is the schema). The
  library's ``POSTGRES_SCHEMA`` variable is refused: it moved the events but not the
  read models.
- **SQLite files.** A read-only command never creates a database (a mistyped
  ``--db`` is an error naming the path, not an empty ledger answering "no cap"); a
  file that is not SQLite, another application's SQLite file, and a read-only file
  or folder are refused in one line before anything is written.
- **PostgreSQL failures** come within ``LEDGER_DB_CONNECT_TIMEOUT`` seconds (default
  5) with the server's own reason, and the password is masked wherever a URL is shown.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse, urlunparse

from ledger.errors import ConfigurationError, LedgerError, ValidationError

DEFAULT_DB = "ledger.db"
#: seconds a PostgreSQL connection may take before the ledger gives up, by default
DEFAULT_CONNECT_TIMEOUT = 5.0
#: the ledger's own tables in a SQLite file (besides eventsourcing's)
SQLITE_EVENTS_TABLE = "stored_events"
SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: environment variables the ledger itself reads to open a database, with defaults
LEDGER_SETTINGS = {
    "LEDGER_DB": DEFAULT_DB,
    "LEDGER_DB_CONNECT_TIMEOUT": str(DEFAULT_CONNECT_TIMEOUT),
    "POSTGRES_POOL_SIZE": "1",
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "120",
}
#: eventsourcing settings that would change the store if read from the environment;
#: the ones without a pinned value below are left unset, i.e. the library's default
#: (no cipher, no compression, no snapshots, no aggregate cache, the default mapper)
REFUSED_ENVIRONMENT = ("POSTGRES_SCHEMA", "LEDGER_POSTGRES_SCHEMA")


class DatabaseRefused(ValidationError):
    """The --db value or the file it names cannot be used as a ledger."""

    code = "database-refused"

    def __init__(self, message: str, *, value: object = None):
        super().__init__(message, field="db", value=value)


def database_url(db: str | None) -> str:
    """The database to use: ``--db``, else ``LEDGER_DB``, else ./ledger.db.

    Raises DatabaseRefused for an empty value (``--db ""`` must not quietly mean
    ./ledger.db)."""
    if db is None:
        env = os.environ.get("LEDGER_DB")
        db = DEFAULT_DB if env is None else env
    if not db.strip():
        raise DatabaseRefused("--db is empty: give a SQLite file path or "
                              "postgresql://user@host:port/dbname", value=db)
    return db


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def masked_url(url: str) -> str:
    """The URL with its password replaced by ``***``: what is shown to people."""
    if not is_postgres(url):
        return url
    parts = urlparse(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunparse(parts._replace(netloc=netloc))


def connect_timeout() -> float:
    """``LEDGER_DB_CONNECT_TIMEOUT`` in seconds (default 5). Raises ConfigurationError."""
    text = os.environ.get("LEDGER_DB_CONNECT_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 600:
        raise ConfigurationError(f"LEDGER_DB_CONNECT_TIMEOUT={text!r} must be a number of "
                                 "seconds between 0.1 and 600")
    return value


def _int_setting(name: str) -> str:
    text = os.environ.get(name, "").strip() or LEDGER_SETTINGS[name]
    if not text.isdigit() or int(text) < 1:
        raise ConfigurationError(f"{name}={text!r} must be a positive integer")
    return text


def postgres_schema(url: str) -> str:
    """The schema named by ``?schema=NAME`` (``public`` without one).
    Raises DatabaseRefused for an unknown parameter or a name that is not plain."""
    query = parse_qs(urlparse(url).query, keep_blank_values=True)
    unknown = sorted(set(query) - {"schema"})
    if unknown:
        raise DatabaseRefused(f"database URL parameter {unknown[0]!r} is not supported "
                              "(only ?schema=NAME)", value=masked_url(url))
    names = query.get("schema", ["public"])
    if len(names) != 1 or not _SCHEMA_NAME.match(names[0]):
        raise DatabaseRefused(f"schema {names!r} must be one lower-case name "
                              "(letters, digits, _)", value=masked_url(url))
    return names[0]


def _refuse_library_schema() -> None:
    for name in REFUSED_ENVIRONMENT:
        if os.environ.get(name):
            raise ConfigurationError(
                f"{name} is set, but the ledger does not read it: it moved the events and "
                "not the read models. Name the schema in the database URL instead "
                "(postgresql://user@host:port/dbname?schema=NAME), or unset it")


def _common_env() -> dict[str, str]:
    # the values eventsourcing would take by default, written out so that a reader
    # sees them and no environment variable can stand in for them
    return {
        "CREATE_TABLE": "y",
        "IS_SNAPSHOTTING_ENABLED": "n",
        "SINGLE_ROW_TRACKING": "y",
        "ORIGINATOR_ID_TYPE": "uuid",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "AGGREGATE_CACHE_FASTFORWARD_SKIPPING": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }


def database_env(url: str) -> dict[str, str]:
    """Every eventsourcing setting for a database URL or SQLite path: the library is
    given these and nothing from the process environment (see the module docstring).

    Raises DatabaseRefused / ConfigurationError for a URL or setting it cannot use."""
    _refuse_library_schema()
    env = _common_env()
    if is_postgres(url):
        parts = urlparse(url)
        if not parts.path.strip("/"):
            raise DatabaseRefused(f"database URL {masked_url(url)!r} names no database "
                                  "(…/dbname)", value=masked_url(url))
        try:
            port = parts.port or 5432
        except ValueError as e:
            raise DatabaseRefused(f"database URL {masked_url(url)!r}: {e}",
                                  value=masked_url(url)) from e
        env.update({
            "PERSISTENCE_MODULE": "ledger.persistence_postgres:LedgerPostgresFactory",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": postgres_schema(url),
            # the pool's wait for a connection: a wrong host, port, role or database
            # fails after this instead of eventsourcing's 30 s
            "POSTGRES_CONNECT_TIMEOUT": str(max(1, round(connect_timeout()))),
            # one connection up front (more on demand, up to eventsourcing's overflow
            # of 10): a CLI query or a consumer uses one at a time, and opening five
            # at start-up was a tenth of a `ledger quota` process
            "POSTGRES_POOL_SIZE": _int_setting("POSTGRES_POOL_SIZE"),
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_MAX_WAITING": "0",
            "POSTGRES_CONN_MAX_AGE": "3600",
            "POSTGRES_PRE_PING": "n",
            "POSTGRES_LOCK_TIMEOUT": "0",
            # eventsourcing ends a session idle in a transaction for 5 s; a bulk import
            # or a projection batch does seconds of Python work inside its transaction
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": _int_setting(
                "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"),
            # the chain link is written by the ledger's recorder in the transaction of
            # the insert; the library's database functions would bypass it
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "PROCESS_RECORDER_TOPIC": "ledger.persistence_postgres:PostgresLedgerRecorder",
        })
        return env
    env.update({
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": sqlite_path(url),
        "SQLITE_LOCK_TIMEOUT": "30",
        "PROCESS_RECORDER_TOPIC": "ledger.persistence:SQLiteLedgerRecorder",
    })
    return env


def sqlite_path(url: str) -> str:
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    if not path.strip():
        raise DatabaseRefused(f"--db {url!r} is not a file path", value=url)
    return path


# --- SQLite files ---------------------------------------------------------------------


def check_sqlite_file(url: str, *, create: bool) -> None:
    """Refuse, in one line and before anything is written, a SQLite --db that cannot be
    a ledger: missing (unless ``create``), not SQLite, another application's
    database, or not writable (a read-only file, folder or mount: SQLite must write
    its journal, and queries fold new events into the read models).

    Raises DatabaseRefused naming the path."""
    path = Path(sqlite_path(url))
    if path.is_dir():
        raise DatabaseRefused(f"--db {str(path)!r} is a folder, not a ledger file", value=str(path))
    if not path.exists():
        if not create:
            raise DatabaseRefused(
                f"no ledger database at {str(path)!r} (check --db / LEDGER_DB; a new "
                "ledger is created by writing to it, e.g. 'ledger rules load --bundled')",
                value=str(path))
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise DatabaseRefused(f"cannot create {str(path)!r}: folder {str(folder)!r} "
                                  "does not exist", value=str(path))
        _require_writable(folder, path)
        return
    _require_sqlite(path)
    _require_writable(path, path)
    _require_writable(path.parent if str(path.parent) else Path("."), path)
    _require_ledger_tables(path)


def _require_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise DatabaseRefused(f"cannot read {str(path)!r}: {e.strerror}", value=str(path)) from e
    if head and head != SQLITE_MAGIC:
        raise DatabaseRefused(f"{str(path)!r} is not a SQLite database, so not a ledger "
                              "(check --db)", value=str(path))


def _require_ledger_tables(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise DatabaseRefused(f"{str(path)!r} cannot be read as a SQLite database: {e}",
                              value=str(path)) from e
    if not tables:
        return  # an empty file: a new ledger
    from ledger.persistence import CHAIN_TABLE

    if SQLITE_EVENTS_TABLE not in tables or CHAIN_TABLE not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise DatabaseRefused(
            f"{str(path)!r} is another application's SQLite database (tables: {shown}), "
            "not a ledger; the ledger will not add its tables to it (check --db)",
            value=str(path))


def _require_writable(target: Path, path: Path) -> None:
    # os.access answers EROFS for a read-only mount even for root
    if not os.access(target, os.W_OK):
        what = "folder" if target.is_dir() else "file"
        raise DatabaseRefused(
            f"{str(path)!r} is read-only (the {what} {str(target)!r} cannot be written): "
            "the ledger needs to write its journal and the read models every query "
            "brings up to date; copy it to a writable place", value=str(path))


# --- PostgreSQL failures -------------------------------------------------------------


def postgres_failure(url: str, error: Exception) -> LedgerError:
    """A StorageError saying why the server refused or could not be reached: the pool
    only says it "couldn't get a connection", so connect once more directly (within
    the same timeout) and take the server's own reason. The password is masked."""
    from ledger.errors import StorageError

    reason = _direct_connect_reason(url) or str(error)
    return StorageError(f"cannot open the ledger database {masked_url(url)!r}: "
                        f"{_one_line(reason)}")


def _direct_connect_reason(url: str) -> str | None:
    try:
        import psycopg

        env = database_env(url)
        conn = psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"], connect_timeout=max(1, round(connect_timeout())),
        )
    except Exception as e:  # noqa: BLE001 - any failure's text is the reason we want
        return str(e)
    conn.close()
    return None


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines)

