"""The Ledger application: loads, decides, appends; reads the log back.

The service layer of the write side. ``submit`` takes a batch of commands, decides
each against its aggregate's history (including earlier commands of the same batch),
and appends all resulting events in ONE transaction, optionally together with an
upstream tracking position (a Kafka topic/partition/offset), so a batch is either
wholly recorded or not at all. Concurrent writers are caught by the store's
(aggregate, version) uniqueness and the batch is decided again.

Reads: ``read`` yields (recorded position, event) in recorded order up to a
``known_at`` position; ``resolve_known_at`` turns a position or an ISO timestamp into
a position; ``head`` gives the chain head.
"""

from __future__ import annotations

import datetime as dt
import gc
import getpass
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import Environment, EnvType
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
)

from ledger.errors import LedgerError, StorageError, ValidationError
from ledger.events import LedgerEvent
from ledger.database import (
    check_sqlite_file,
    database_env,
    database_url,
    is_postgres,
    masked_url,
    postgres_failure,
)
from ledger.persistence import (
    APPLIED_KEYS_TABLE,
    CHAIN_TABLE,
    BulkRecorder,
    HistoryRow,
    PydanticMapper,
    decode_event,
)

if TYPE_CHECKING:
    # The write side (commands, decide, the product catalog) is imported when first
    # used: a query such as ``ledger quota`` never needs it and starts faster without.
    from ledger.catalog import Catalog
    from ledger.commands import Command

#: how many times a batch is decided again after losing a race to another writer
#: (six processes correcting one shipment at once: the last may lose five rounds)
MAX_RACE_RETRIES = 20
#: upper bound of the random pause before deciding again, growing with each loss, so
#: racing writers spread out instead of colliding again in lockstep
RACE_BACKOFF_S = 0.02
READ_PAGE = 10_000
#: aggregates per history query when planning a batch (SQLite allows 32,766 variables)
PREFETCH_CHUNK = 2_000
#: commands decided and appended per step of a streamed import (bounds its memory)
IMPORT_CHUNK = 10_000
#: a PostgreSQL import of at least this many events refreshes the table statistics
ANALYZE_AFTER = 10_000

#: one line of an import: (line number, the parsed command or the line's error)
ImportLine = tuple[int, "Command | LedgerError"]


@dataclass
class Outcome:
    """What became of one command of a batch."""

    index: int
    command: Command | None
    events: list[LedgerEvent] = field(default_factory=list)
    duplicate: bool = False
    error: LedgerError | None = None
    note: str = ""
    #: the explicit idempotency key (message or command id), stored with the events
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def applied_keys(self) -> list[tuple[UUID, str, int]]:
        """(aggregate, key, version of its first event) to store, if any."""
        if self.key is None or not self.events or self.error is not None:
            return []
        first = self.events[0]
        return [(first.originator_id, self.key, first.originator_version)]


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    positions: list[int]

    @property
    def appended(self) -> int:
        return sum(len(o.events) for o in self.outcomes if o.ok)

    @property
    def duplicates(self) -> int:
        return sum(1 for o in self.outcomes if o.duplicate)

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


class BatchRejected(LedgerError):
    """A batch had bad commands and nothing was appended."""

    code = "batch-rejected"

    def __init__(self, outcomes: list[Outcome]):
        self.outcomes = outcomes
        bad = [o for o in outcomes if not o.ok]
        super().__init__(f"{len(bad)} of {len(outcomes)} commands refused; nothing appended")

    def errors_only(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


@dataclass
class ImportResult:
    """What a streamed import did, without holding its events: counts, the first and
    last recorded positions, and every refused line with its error."""

    commands: int = 0
    appended: int = 0
    duplicates: int = 0
    first_position: int | None = None
    last_position: int | None = None
    errors: list[tuple[int, LedgerError]] = field(default_factory=list)


class ImportRejected(LedgerError):
    """A streamed import had bad lines: its transaction was rolled back, nothing was
    appended. ``result.errors`` lists every bad line."""

    code = "batch-rejected"

    def __init__(self, result: ImportResult):
        self.result = result
        super().__init__(f"{len(result.errors)} of {result.commands} commands refused; "
                         "nothing appended")


class _RollBack(Exception):
    """Raised inside a bulk session to roll it back."""


def _decode_histories(ids: Sequence[UUID], rows: Iterable[HistoryRow]
                      ) -> dict[UUID, list[LedgerEvent]]:
    out: dict[UUID, list[LedgerEvent]] = {agg_id: [] for agg_id in ids}
    for agg_id, version, topic, state in rows:
        out[agg_id].append(decode_event(topic, bytes(state), agg_id, int(version)))
    return out


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: deciding a chunk allocates hundreds of
    thousands of short-lived acyclic objects (freed by reference counting), and the
    collector's passes over them were about a third of an import's deciding time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli:unknown"


class Ledger(Application[UUID]):
    """The quota ledger: the event store plus the commands that write to it."""

    name = "LEDGER"
    recorder: ProcessRecorder

    def __init__(self, db: str | None = None, *, catalog: Catalog | None = None,
                 create: bool = True) -> None:
        """Open the ledger at ``db`` (see ``ledger.database``). With ``create`` false
        (read-only commands) a SQLite file that does not exist is an error, never a
        new empty ledger. Raises DatabaseRefused, ConfigurationError, StorageError."""
        self.url = database_url(db)
        self._catalog = catalog
        env = database_env(self.url)
        if not is_postgres(self.url):
            check_sqlite_file(self.url, create=create)
        try:
            super().__init__(env=env)
        except PersistenceError as e:
            self._close_half_open()
            if is_postgres(self.url):
                raise postgres_failure(self.url, e) from e
            raise StorageError(f"cannot open the ledger database {self.url!r}: {e}") from e

    def _close_half_open(self) -> None:
        """Close what a failed open had built (PostgreSQL: a connection pool and its
        worker threads) now, in this thread. Left to ``__del__`` at exit, the pool's
        close could run in one of its own threads and print a traceback ("cannot join
        current thread") after the error message; without ``factory``, ``__del__``
        has nothing left to close."""
        factory = self.__dict__.pop("factory", None)
        if factory is not None:
            with suppress(Exception):
                factory.close()

    @property
    def shown_url(self) -> str:
        """The database as shown to people: the password masked."""
        return masked_url(self.url)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only the ledger's pinned settings, never the process environment: an
        exported ``POSTGRES_ENABLE_DB_FUNCTIONS`` or ``CIPHER_KEY`` must not change
        how events are stored (``ledger.database``)."""
        return Environment(name, dict(env or {}))

    @property
    def catalog(self) -> Catalog:
        """The product catalog decisions use (the bundled one unless given)."""
        if self._catalog is None:
            from ledger.catalog import bundled_catalog

            self._catalog = bundled_catalog()
        return self._catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self._catalog = value

    # eventsourcing hooks ---------------------------------------------------------------

    def construct_mapper(self) -> PydanticMapper:
        return PydanticMapper()

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    # writing --------------------------------------------------------------------------

    def history_of(self, aggregate_id: UUID) -> list[LedgerEvent]:
        """All events of one aggregate, in version order."""
        stored = self.recorder.select_events(aggregate_id)
        return [self.mapper.to_domain_event(s) for s in stored]  # type: ignore[misc]

    def positioned_history(self, aggregate_id: UUID) -> list[tuple[int, LedgerEvent]]:
        """All events of one aggregate as (recorded position, event), in version order:
        one indexed query, not a scan of the log."""
        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        if is_postgres(self.url):
            rows = self._query(
                f"SELECT notification_id, originator_version, topic, state FROM {table} "
                "WHERE originator_id = ? ORDER BY originator_version", [aggregate_id])
        else:
            rows = self._query(
                f"SELECT rowid, originator_version, topic, state FROM {table} "
                "WHERE originator_id = ? ORDER BY originator_version", [aggregate_id.hex])
        return [(int(pos), decode_event(topic, bytes(state), aggregate_id, int(version)))
                for pos, version, topic, state in rows]

    def histories_of(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, list[LedgerEvent]]:
        """The histories of many aggregates (empty lists for unknown ones), fetched
        with one query per ``PREFETCH_CHUNK`` ids."""
        unique = list(dict.fromkeys(aggregate_ids))
        pg = is_postgres(self.url)
        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        rows: list[HistoryRow] = []
        for start in range(0, len(unique), PREFETCH_CHUNK):
            chunk = unique[start:start + PREFETCH_CHUNK]
            if pg:
                rows += self._query(
                    f"SELECT originator_id, originator_version, topic, state FROM {table} "
                    "WHERE originator_id = ANY(?) ORDER BY originator_id, originator_version",
                    [chunk])
            else:
                rows += [(UUID(o), v, t, s) for o, v, t, s in self._query(
                    f"SELECT originator_id, originator_version, topic, state FROM {table} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY originator_id, originator_version", [a.hex for a in chunk])]
        return _decode_histories(unique, rows)

    def applied_keys_of(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, set[str]]:
        """The explicit idempotency keys already applied to each of these aggregates."""
        unique = list(dict.fromkeys(aggregate_ids))
        out: dict[UUID, set[str]] = {agg_id: set() for agg_id in unique}
        pg = is_postgres(self.url)
        for start in range(0, len(unique), PREFETCH_CHUNK):
            chunk = unique[start:start + PREFETCH_CHUNK]
            if pg:
                rows = self._query(f"SELECT originator_id, key FROM {APPLIED_KEYS_TABLE} "
                                   "WHERE originator_id = ANY(?)", [chunk])
                for originator, key in rows:
                    out[originator].add(key)
            else:
                rows = self._query(
                    f"SELECT originator_id, key FROM {APPLIED_KEYS_TABLE} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
                    [a.hex for a in chunk])
                for originator, key in rows:
                    out[UUID(originator)].add(key)
        return out

    def plan(
        self, commands: Sequence[Command | LedgerError], *, actor: str,
        now: dt.datetime | None = None, keys: Sequence[str | None] | None = None,
        fetch: Callable[[Sequence[UUID]], dict[UUID, list[LedgerEvent]]] | None = None,
        fetch_keys: Callable[[Sequence[UUID]], dict[UUID, set[str]]] | None = None,
    ) -> list[Outcome]:
        """Decide every command without writing. A ``LedgerError`` in place of a
        command stands for a line that did not parse; it is reported in order.
        ``keys`` are the commands' explicit idempotency keys (Kafka message ids);
        by default an import line's ``command_id``. ``fetch`` and ``fetch_keys`` read
        the histories and the applied keys (default: ``histories_of`` and
        ``applied_keys_of``; a streamed import reads them inside its transaction)."""
        from ledger.decide import Context

        now = now or dt.datetime.now(dt.UTC)
        ctx = Context(now=now, actor=actor, catalog=self.catalog)
        ids, keys, histories, applied = _prefetch(
            commands, keys, fetch or self.histories_of, fetch_keys or self.applied_keys_of)
        outcomes: list[Outcome] = []
        for i, command in enumerate(commands):
            if isinstance(command, LedgerError):
                outcomes.append(Outcome(i, None, error=command))
                continue
            agg_id = ids[i]
            assert agg_id is not None
            outcomes.append(_decide_one(i, command, histories[agg_id],
                                        applied.setdefault(agg_id, set()), keys[i], ctx))
        return outcomes

    def submit(
        self,
        commands: Sequence[Command | LedgerError],
        *,
        actor: str | None = None,
        skip_bad: bool = False,
        tracking: Tracking | None = None,
        now: dt.datetime | None = None,
    ) -> BatchResult:
        """Decide and append a batch in one transaction.

        Raises ``BatchRejected`` (nothing appended) if any command is refused and
        ``skip_bad`` is false; with ``skip_bad`` the good ones are appended and the
        refused ones are in the result. Raises ``StorageError`` if the store fails.
        """
        actor = actor or default_actor()
        for attempt in range(MAX_RACE_RETRIES):
            outcomes = self.plan(commands, actor=actor, now=now)
            if not skip_bad and any(not o.ok for o in outcomes):
                raise BatchRejected(outcomes)
            events = [e for o in outcomes if o.ok for e in o.events]
            keys = [k for o in outcomes for k in o.applied_keys()]
            try:
                positions = self.append(events, tracking=tracking, keys=keys)
            except IntegrityError as e:
                if tracking is not None and self._tracking_passed(tracking):
                    raise
                if not _lost_race(e):
                    # not another writer's event at the same version: a planted or
                    # corrupt row (e.g. in the chain); deciding again would only skip it
                    raise
                # another writer got there first: decide again, after a short pause
                time.sleep(random.uniform(0, RACE_BACKOFF_S * (attempt + 1)))
                continue
            return BatchResult(outcomes, positions)
        raise StorageError(f"gave up after {MAX_RACE_RETRIES} write conflicts with other writers")

    def import_stream(
        self,
        chunks: Iterable[Sequence[ImportLine]],
        *,
        actor: str | None = None,
        skip_bad: bool = False,
        now: dt.datetime | None = None,
    ) -> ImportResult:
        """Decide and append a stream of lines chunk by chunk in ONE transaction; the
        memory held is one chunk's, not the stream's.

        Each chunk's histories are read inside the transaction, so they include what
        earlier chunks appended: the decisions equal ``submit``'s on the whole stream.
        Every bad line (unparsable, or refused when decided) is collected; if there is
        one and ``skip_bad`` is false, the transaction is rolled back and
        ``ImportRejected`` lists them all (nothing appended). Raises ``StorageError``
        if the store fails (also rolled back)."""
        actor = actor or default_actor()
        now = now or dt.datetime.now(dt.UTC)
        result = ImportResult()
        recorder: BulkRecorder = self.recorder  # type: ignore[assignment]
        try:
            with _collector_paused(), recorder.bulk_session() as session:
                for chunk in chunks:
                    self._import_chunk(session, chunk, result, actor=actor, now=now)
                    gc.collect(1)  # this chunk's cycles, if any; not the whole heap
                if result.errors and not skip_bad:
                    raise _RollBack
        except _RollBack:
            raise ImportRejected(result) from None
        except IntegrityError as e:
            raise StorageError(f"the ledger database refused the import: {e}") from e
        except OperationalError as e:
            raise StorageError(f"the ledger database is unavailable: {e}") from e
        except PersistenceError as e:
            raise StorageError(f"the ledger database refused the import: {e}") from e
        if result.appended >= ANALYZE_AFTER and hasattr(self.recorder, "analyze"):
            self.recorder.analyze()
        return result

    def _import_chunk(self, session: Any, chunk: Sequence[ImportLine], result: ImportResult,
                      *, actor: str, now: dt.datetime) -> None:
        """Decide one chunk against histories read in the session, append its events."""
        from ledger.decide import Context

        def fetch(ids: Sequence[UUID]) -> dict[UUID, list[LedgerEvent]]:
            unique = list(dict.fromkeys(ids))
            rows: list[HistoryRow] = []
            for start in range(0, len(unique), PREFETCH_CHUNK):
                rows += session.history_rows(unique[start:start + PREFETCH_CHUNK])
            return _decode_histories(unique, rows)

        def fetch_keys(ids: Sequence[UUID]) -> dict[UUID, set[str]]:
            unique = list(dict.fromkeys(ids))
            out: dict[UUID, set[str]] = {agg_id: set() for agg_id in unique}
            for start in range(0, len(unique), PREFETCH_CHUNK):
                for agg_id, key in session.applied_key_rows(unique[start:start + PREFETCH_CHUNK]):
                    out[agg_id].add(key)
            return out

        stored, keys = _decide_chunk(chunk, result, Context(now=now, actor=actor,
                                                          catalog=self.catalog),
                                     fetch, fetch_keys, self.mapper)
        result.commands += len(chunk)
        # Appended even after a bad line: later chunks are decided against these
        # histories, so every later error is the one a whole-file decision would give.
        positions = session.insert(stored, keys)
        if positions:
            result.appended += len(positions)
            if result.first_position is None:
                result.first_position = positions[0]
            result.last_position = positions[-1]

    def _tracking_passed(self, tracking: Tracking) -> bool:
        last = self.recorder.max_tracking_id(tracking.application_name)
        return last is not None and last >= tracking.notification_id

    def append(self, events: Sequence[LedgerEvent], *, tracking: Tracking | None = None,
               keys: Sequence[tuple[UUID, str, int]] = ()) -> list[int]:
        """Append events (and a tracking position, and the idempotency keys of the
        commands that made them) in one transaction; return positions."""
        if not events and tracking is None:
            return []
        stored = [self.mapper.to_stored_event(e) for e in events]
        try:
            positions = self.recorder.insert_events(stored, tracking=tracking,
                                                    applied_keys=list(keys))
        except IntegrityError:
            raise
        except OperationalError as e:
            raise StorageError(f"the ledger database is unavailable: {e}") from e
        except PersistenceError as e:
            raise StorageError(f"the ledger database refused the write: {e}") from e
        return list(positions or [])

    # reading --------------------------------------------------------------------------

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read(self, known_at: int | None = None, start: int = 1
             ) -> Iterator[tuple[int, LedgerEvent]]:
        """(position, event) in recorded order, from ``start`` up to ``known_at``."""
        stop = known_at
        cursor = start
        while True:
            page = self.recorder.select_notifications(cursor, READ_PAGE, stop=stop)
            for n in page:
                yield n.id, decode_event(n.topic, n.state, n.originator_id, n.originator_version)
            if len(page) < READ_PAGE:
                return
            cursor = page[-1].id + 1

    def read_stored(self, start: int = 1, stop: int | None = None) -> Iterator[Any]:
        """Raw stored notifications (bytes as written), for audit and export."""
        cursor = start
        while True:
            page = self.recorder.select_notifications(cursor, READ_PAGE, stop=stop)
            yield from page
            if len(page) < READ_PAGE:
                return
            cursor = page[-1].id + 1

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read-only query on the ledger's own database (chain table etc.)."""
        if is_postgres(self.url):
            datastore = self.recorder.datastore  # type: ignore[attr-defined]
            with datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(sql.replace("?", "%s"), list(params))
                return [tuple(r.values()) for r in curs.fetchall()]
        with self.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute(sql, list(params))
            return [tuple(r) for r in c.fetchall()]

    def head(self) -> tuple[int, str, str] | None:
        """(position, recorded_at, hash) of the last appended event, or None if empty."""
        rows = self._query(
            f"SELECT position, recorded_at, hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1"
        )
        return None if not rows else (int(rows[0][0]), str(rows[0][1]), str(rows[0][2]))

    def recorded_at(self, position: int) -> str | None:
        rows = self._query(f"SELECT recorded_at FROM {CHAIN_TABLE} WHERE position = ?", [position])
        return None if not rows else str(rows[0][0])

    def recorded_times(self, start: int = 1, stop: int | None = None) -> dict[int, str]:
        sql = f"SELECT position, recorded_at FROM {CHAIN_TABLE} WHERE position >= ?"
        params: list[Any] = [start]
        if stop is not None:
            sql += " AND position <= ?"
            params.append(stop)
        return {int(p): str(t) for p, t in self._query(sql, params)}

    def count_events(self, after: int = 0) -> int:
        """How many events were recorded after position ``after`` (positions can have
        gaps on PostgreSQL, so this is not ``head - after``)."""
        rows = self._query(f"SELECT COUNT(*) FROM {CHAIN_TABLE} WHERE position > ?", [after])
        return int(rows[0][0])

    def first_recorded(self) -> tuple[int, str] | None:
        """(position, recorded_at) of the first event, or None for an empty ledger."""
        rows = self._query(
            f"SELECT position, recorded_at FROM {CHAIN_TABLE} ORDER BY position LIMIT 1")
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    def has_rules(self) -> bool:
        """Whether any rule revision was ever published in this ledger (one indexed-free
        probe that stops at the first match: rule books are loaded first)."""
        from eventsourcing.utils import get_topic

        from ledger.events import RuleRevisionPublished

        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        rows = self._query(f"SELECT 1 FROM {table} WHERE topic = ? LIMIT 1",
                           [get_topic(RuleRevisionPublished)])
        return bool(rows)

    def first_positions(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, int]:
        """The recorded position of each aggregate's first event (absent if unknown)."""
        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        out: dict[UUID, int] = {}
        for start in range(0, len(aggregate_ids), PREFETCH_CHUNK):
            chunk = list(aggregate_ids[start:start + PREFETCH_CHUNK])
            if is_postgres(self.url):
                rows = self._query(f"SELECT originator_id, notification_id FROM {table} "
                                   "WHERE originator_id = ANY(?) AND originator_version = 1",
                                   [chunk])
                out.update({UUID(str(a)): int(p) for a, p in rows})
            else:
                rows = self._query(
                    f"SELECT originator_id, rowid FROM {table} WHERE originator_version = 1 "
                    f"AND originator_id IN ({','.join('?' * len(chunk))})",
                    [a.hex for a in chunk])
                out.update({UUID(str(a)): int(p) for a, p in rows})
        return out

    def last_position_before(self, position: int) -> int:
        """The last recorded position before ``position`` (0 if none)."""
        rows = self._query(f"SELECT MAX(position) FROM {CHAIN_TABLE} WHERE position < ?",
                           [position])
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def resolve_known_at(self, known_at: str | int | None) -> int | None:
        """A recorded position, or the last position recorded at or before a moment:
        an ISO timestamp (UTC if no offset), or a date alone, meaning the END of that
        day in UTC. None means "everything".

        Refused (ValidationError naming the value): a position past the head or a
        moment in the future (the ledger does not know yet what will be recorded
        there, so such an answer could change later, and every answer given with
        --known-at must be reproducible forever); a position or moment before the
        first recorded event (the answer would be an empty ledger's, which says
        nothing: the message names the first recorded time)."""
        if known_at is None:
            return None
        text = str(known_at).strip()
        if isinstance(known_at, int) or (text.isascii() and text.isdigit()):
            return self._known_at_position(int(known_at), known_at)
        when = _parse_moment(text)
        if when > dt.datetime.now(dt.UTC):
            raise ValidationError(
                f"--known-at {text!r} ({when.isoformat()}) is in the future; what will be "
                "recorded by then is not known yet", field="known_at", value=text)
        stamp = when.astimezone(dt.UTC).isoformat(timespec="microseconds")
        rows = self._query(
            f"SELECT MAX(position) FROM {CHAIN_TABLE} WHERE recorded_at <= ?", [stamp]
        )
        if not rows or rows[0][0] is None:
            raise self._before_first(f"--known-at {text!r} ({when.isoformat()})", text)
        return int(rows[0][0])

    def _known_at_position(self, position: int, given: str | int) -> int:
        if position < 0:
            raise ValidationError(f"--known-at {given!r} must be >= 0",
                                  field="known_at", value=given)
        head = self.max_position()
        if position > head:
            raise ValidationError(
                f"--known-at {position} is past the ledger's last recorded position "
                f"({head}); an answer known at a future position could still change",
                field="known_at", value=given)
        first = self.first_recorded()
        if first is None or position < first[0]:
            raise self._before_first(f"--known-at {position}", given)
        return position

    def _before_first(self, what: str, given: str | int) -> ValidationError:
        first = self.first_recorded()
        if first is None:
            return ValidationError(f"{what}: the ledger has no recorded events yet",
                                   field="known_at", value=given)
        return ValidationError(
            f"{what} is before the first recorded event (position {first[0]}, recorded "
            f"{first[1]}); nothing was known then", field="known_at", value=given)


def _lost_race(error: IntegrityError) -> bool:
    """Whether a unique violation is another writer's event at the same aggregate
    version (or its idempotency key): a race to decide again, not a broken store."""
    text = str(error)
    return ("originator" in text or "_events_pkey" in text or "stored_events" in text
            or APPLIED_KEYS_TABLE in text)


def _parse_moment(text: str) -> dt.datetime:
    """An ISO timestamp (UTC without an offset) or a date alone (the end of that day,
    UTC: "known at 2026-11-29" includes everything recorded that day)."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ValidationError(
            f"--known-at {text!r} is neither a recorded position nor an ISO date or "
            "timestamp", field="known_at", value=text,
        ) from e
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _decide_one(index: int, command: Command, history: list[LedgerEvent], applied: set[str],
                key: str | None, ctx: Any) -> Outcome:
    """Decide one command of a batch; the history and the applied keys grow with it, so
    a later command of the same batch sees it."""
    from ledger.decide import decide

    try:
        decision = decide(command, history, ctx, key=key, applied=applied)
    except LedgerError as e:
        return Outcome(index, command, error=e, key=key)
    history.extend(decision.events)
    if key is not None and decision.events:
        applied.add(key)
    return Outcome(index, command, list(decision.events), decision.duplicate,
                   note=decision.note, key=key)


def _prefetch(commands: Sequence[Command | LedgerError], keys: Sequence[str | None] | None,
              fetch: Callable[[Sequence[UUID]], dict[UUID, list[LedgerEvent]]],
              fetch_keys: Callable[[Sequence[UUID]], dict[UUID, set[str]]],
              ) -> tuple[list[UUID | None], Sequence[str | None],
                         dict[UUID, list[LedgerEvent]], dict[UUID, set[str]]]:
    """The commands' aggregate ids and idempotency keys (``keys``, by default each
    command's own), their histories and their applied keys: one query per
    PREFETCH_CHUNK aggregates instead of one per command (a bulk import of new
    shipments would otherwise spend half its time in lookups)."""
    from ledger.decide import aggregate_id_of, command_key

    ids = [None if isinstance(c, LedgerError) else aggregate_id_of(c) for c in commands]
    if keys is None:
        keys = [None if isinstance(c, LedgerError) else command_key(c) for c in commands]
    histories = fetch([i for i in ids if i is not None])
    keyed = [i for i, k in zip(ids, keys, strict=True) if i is not None and k is not None]
    applied = fetch_keys(keyed) if keyed else {}
    return ids, keys, histories, applied


def _decide_chunk(chunk: Sequence[ImportLine], result: ImportResult, ctx: Any,
                  fetch: Callable[[Sequence[UUID]], dict[UUID, list[LedgerEvent]]],
                  fetch_keys: Callable[[Sequence[UUID]], dict[UUID, set[str]]],
                  mapper: Any,
                  ) -> tuple[list[StoredEvent], list[tuple[UUID, str, int]]]:
    """Decide one chunk of an import: its stored events and the idempotency keys to
    store; bad lines and duplicates go to ``result``. Decisions equal ``plan``'s: a
    new shipment (no history, its key not applied) has its stored row written
    directly (``ledger.new_shipments``); a later line of the chunk on the same
    shipment decodes that row into its history and takes the general path."""
    from ledger.commands import RecordShipment
    from ledger.new_shipments import RECORDED_TOPIC, NewShipmentRows

    new_rows = NewShipmentRows(ctx)
    ids, keys, histories, applied = _prefetch([c for _, c in chunk], None, fetch, fetch_keys)
    stored: list[StoredEvent] = []
    applied_rows: list[tuple[UUID, str, int]] = []
    pending: dict[UUID, StoredEvent] = {}  # new shipments' rows not decoded yet
    for (number, command), agg_id, key in zip(chunk, ids, keys, strict=True):
        if isinstance(command, LedgerError):
            result.errors.append((number, command))
            continue
        assert agg_id is not None
        history = histories[agg_id]
        if agg_id in pending:
            row = pending.pop(agg_id)
            history.append(decode_event(row.topic, row.state, agg_id, 1))
        seen = applied.setdefault(agg_id, set()) if key is not None else set()
        if type(command) is RecordShipment and not history and key not in seen:
            try:
                state = new_rows.state(command)
            except LedgerError as e:
                result.errors.append((number, e))
                continue
            if state is not None:
                row = StoredEvent(originator_id=agg_id, originator_version=1,
                                  topic=RECORDED_TOPIC, state=state)
                stored.append(row)
                pending[agg_id] = row
                if key is not None:
                    seen.add(key)
                    applied_rows.append((agg_id, key, 1))
                continue
        outcome = _decide_one(0, command, history, seen, key, ctx)
        if outcome.error is not None:
            result.errors.append((number, outcome.error))
            continue
        result.duplicates += outcome.duplicate
        stored.extend(mapper.to_stored_event(e) for e in outcome.events)
        applied_rows.extend(outcome.applied_keys())
    return stored, applied_rows
