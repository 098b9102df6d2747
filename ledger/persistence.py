"""Persistence: how events become stored rows, on SQLite and PostgreSQL.

Three things live here:

- ``PydanticMapper``: a stored event's state is the event's compact JSON (pydantic
  ``model_dump_json``), decoded with ``model_validate``; old shapes are upcast on read
  through ``upcast_vN_vN+1`` class methods, while the stored bytes stay as written.
- the recorders: eventsourcing's process recorders (events plus an upstream tracking
  position in one transaction), extended so that the same transaction also appends
  one row per event to ``ledger_chain``: the event's recorded position, its UTC
  recorded time (strictly increasing, assigned here, never by a client) and its
  hash-chain link (see ``ledger.chain``). No event ever exists without its link.

Which database is opened and with which settings is ``ledger.database``.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from eventsourcing.utils import get_topic, resolve_topic

from ledger.chain import GENESIS_HASH, link_hash
from ledger.database import DEFAULT_DB, database_env, database_url, is_postgres
from ledger.events import STORED, LedgerEvent

CHAIN_TABLE = "ledger_chain"
#: the explicit idempotency keys (Kafka message ids, import command ids) applied to
#: each aggregate, written in the transaction that appends the command's events
APPLIED_KEYS_TABLE = "ledger_applied_keys"
EVENTS_TABLE = "stored_events"
#: configuration lives in ledger.database; these names are kept for existing callers
__all__ = ["APPLIED_KEYS_TABLE", "CHAIN_TABLE", "DEFAULT_DB", "EVENTS_TABLE", "PydanticMapper",
           "SQLiteLedgerRecorder", "chain_rows", "database_env", "database_url", "decode_event",
           "is_postgres", "next_recorded_at"]


# --- mapping ------------------------------------------------------------------------


class PydanticMapper(Mapper[Any]):
    """Maps frozen pydantic events to stored events and back."""

    def __init__(self) -> None:
        super().__init__(transcoder=JSONTranscoder())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        event: LedgerEvent = domain_event
        cls = type(event)
        state = event.model_dump_json(exclude={"originator_id", "originator_version"})
        if cls.class_version > 1:
            # keep the version in the stored bytes so a reader knows how to upcast
            state = state[:-1] + f',"class_version":{cls.class_version}}}'
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=get_topic(cls),
            state=state.encode("utf-8"),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return decode_event(
            stored_event.topic,
            stored_event.state,
            stored_event.originator_id,
            stored_event.originator_version,
        )


def decode_event(topic: str, state: bytes, originator_id: Any, version: int) -> LedgerEvent:
    """Decode stored bytes into the current shape of the event, upcasting old shapes."""
    cls: type[LedgerEvent] = resolve_topic(topic)
    data = json.loads(state)
    stored_version = data.pop("class_version", 1)
    while stored_version < cls.class_version:
        upcast = getattr(cls, f"upcast_v{stored_version}_v{stored_version + 1}")
        data = upcast(data)
        stored_version += 1
    data["originator_id"] = originator_id
    data["originator_version"] = version
    # STORED: a fact already appended is read as it is, not re-judged by the checks
    # on new input (date range, control characters) that came after it
    return cls.model_validate(data, context=STORED)


# --- recorders with the chain -------------------------------------------------------


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def next_recorded_at(previous: str | None) -> str:
    """Now, or one microsecond after the previous stamp if the clock went back."""
    now = _utc_now()
    if previous is not None:
        prev = dt.datetime.fromisoformat(previous)
        if now <= prev:
            now = prev + dt.timedelta(microseconds=1)
    return now.isoformat(timespec="microseconds")


def recorded_times(first: str, count: int) -> list[str]:
    """``count`` stamps from ``first`` on, one microsecond apart, each as
    ``isoformat(timespec="microseconds")`` writes it. Within one second only the
    six microsecond digits change, so a run is formatted from one ``isoformat``
    (the per-event ``datetime`` arithmetic was a sixth of appending a chunk)."""
    base = dt.datetime.fromisoformat(first)
    out: list[str] = []
    done = 0
    while done < count:
        start = base + dt.timedelta(microseconds=done)
        text = start.isoformat(timespec="microseconds")
        head, tail = text[:20], text[26:]  # "YYYY-MM-DDTHH:MM:SS." and the offset
        run = min(count - done, 1_000_000 - start.microsecond)
        micro = start.microsecond
        out += [f"{head}{us:06d}{tail}" for us in range(micro, micro + run)]
        done += run
    return out


def chain_rows(
    head: tuple[str, str] | None, positions: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[tuple[int, str, str]]:
    """The chain rows (position, recorded_at, hash) for events appended after ``head``
    ((recorded_at, hash) of the last row, None if empty). Each event's recorded time is
    at least one microsecond after the previous one: strictly increasing."""
    prev_hash = GENESIS_HASH if head is None else head[1]
    times = recorded_times(next_recorded_at(None if head is None else head[0]),
                           len(stored_events))
    rows = []
    for position, recorded_at, stored in zip(positions, times, stored_events, strict=True):
        prev_hash = link_hash(
            prev_hash, position, recorded_at, str(stored.originator_id),
            stored.originator_version, stored.topic, stored.state,
        )
        rows.append((position, recorded_at, prev_hash))
    return rows


class SQLiteLedgerRecorder(SQLiteProcessRecorder):
    """SQLite process recorder that also appends the chain rows in the same transaction."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "recorded_at TEXT NOT NULL, "
            "hash TEXT NOT NULL)"
        )
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {CHAIN_TABLE}_recorded_at "
            f"ON {CHAIN_TABLE} (recorded_at)"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {APPLIED_KEYS_TABLE} ("
            "originator_id TEXT NOT NULL, "
            "key TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "PRIMARY KEY (originator_id, key))"
        )
        return statements

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return super()._insert_events(c, stored_events, **kwargs)
        # One executemany instead of eventsourcing's execute-per-event loop (a third of
        # a bulk import's storage time). Positions are rowids: SQLite gives a new row
        # of a rowid table MAX(rowid) + 1, and this transaction holds the write lock
        # from its first insert, so the batch's rowids are the last len(batch) ones.
        c.executemany(self.insert_events_statement, [
            (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
             s.originator_version, s.topic, s.state)
            for s in stored_events
        ])
        c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
        last = int(c.fetchone()[0])
        positions = list(range(last - len(stored_events) + 1, last + 1))
        tracking = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        # We hold the write lock from the inserts above, so the head read here is
        # the true head and no other writer can slip in between.
        c.execute(f"SELECT position, recorded_at, hash FROM {CHAIN_TABLE} "
                  "ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        head = None if row is None else (row["recorded_at"], row["hash"])
        rows = chain_rows(head, positions, stored_events)
        c.executemany(f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?)", rows)
        keys: Sequence[tuple[UUID, str, int]] = kwargs.get("applied_keys") or ()
        if keys:
            c.executemany(f"INSERT INTO {APPLIED_KEYS_TABLE} VALUES (?,?,?)",
                          [(agg.hex, key, version) for agg, key, version in keys])
        return positions

    @contextmanager
    def bulk_session(self) -> Iterator[_SQLiteBulkSession]:
        """One write transaction for a streamed import. ``BEGIN IMMEDIATE`` takes the
        write lock before the first history read, so no other writer can change a
        history between the read and the append (no race, nothing to decide again)."""
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield _SQLiteBulkSession(self, cursor)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
            except sqlite3.IntegrityError as e:
                raise IntegrityError(e) from e
            except sqlite3.OperationalError as e:
                raise OperationalError(e) from e
            except sqlite3.Error as e:
                raise PersistenceError(e) from e
            finally:
                cursor.sqlite_cursor.close()


# --- bulk sessions: one transaction, many chunks -------------------------------------


#: a stored event row as a history query returns it: (originator id as the store
#: gives it, version, topic, state bytes)
HistoryRow = tuple[Any, int, str, bytes]


class BulkSession(Protocol):
    """One open write transaction of a streamed import: the histories it reads include
    what it has appended so far; nothing is visible to others until it commits."""

    def history_rows(self, aggregate_ids: Sequence[UUID]) -> list[HistoryRow]:
        """The stored events of these aggregates, ordered by aggregate and version."""
        ...

    def applied_key_rows(self, aggregate_ids: Sequence[UUID]) -> list[tuple[UUID, str]]:
        """(aggregate id, idempotency key) of the keys applied to these aggregates."""
        ...

    def insert(self, stored_events: Sequence[StoredEvent],
               applied_keys: Sequence[tuple[UUID, str, int]] = ()) -> list[int]:
        """Append events, their chain links and the idempotency keys of the commands
        that made them; return their recorded positions."""
        ...


class BulkRecorder(Protocol):
    def bulk_session(self) -> Any:
        """A context manager giving a ``BulkSession``; commits when the block ends,
        rolls back if it raises."""
        ...


class _SQLiteBulkSession:
    def __init__(self, recorder: SQLiteLedgerRecorder, cursor: SQLiteCursor) -> None:
        self.recorder = recorder
        self.cursor = cursor

    def history_rows(self, aggregate_ids: Sequence[UUID]) -> list[HistoryRow]:
        if not aggregate_ids:
            return []
        self.cursor.execute(
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {self.recorder.events_table_name} "
            f"WHERE originator_id IN ({','.join('?' * len(aggregate_ids))}) "
            "ORDER BY originator_id, originator_version", [a.hex for a in aggregate_ids])
        return [(UUID(r[0]), int(r[1]), r[2], bytes(r[3])) for r in self.cursor.fetchall()]

    def applied_key_rows(self, aggregate_ids: Sequence[UUID]) -> list[tuple[UUID, str]]:
        if not aggregate_ids:
            return []
        self.cursor.execute(
            f"SELECT originator_id, key FROM {APPLIED_KEYS_TABLE} "
            f"WHERE originator_id IN ({','.join('?' * len(aggregate_ids))})",
            [a.hex for a in aggregate_ids])
        return [(UUID(r[0]), r[1]) for r in self.cursor.fetchall()]

    def insert(self, stored_events: Sequence[StoredEvent],
               applied_keys: Sequence[tuple[UUID, str, int]] = ()) -> list[int]:
        if not stored_events:
            return []
        return list(self.recorder._insert_events(self.cursor, stored_events,
                                                 applied_keys=applied_keys) or [])
