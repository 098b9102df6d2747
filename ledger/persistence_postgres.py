"""PostgreSQL recorder: eventsourcing's process recorder plus the ledger's chain rows.

Same behaviour as ``SQLiteLedgerRecorder``: the chain row of every event (recorded
position, UTC recorded time, hash link) is written in the transaction that writes
the event. eventsourcing takes an EXCLUSIVE lock on the events table before it
inserts, so the chain head read here cannot be moved by another writer. Kept in its
own module so a SQLite-only run never imports psycopg.

``LedgerPostgresFactory`` opens the connections: every connection's ``search_path``
is the ledger's schema (so the read models' ``rm_*`` tables follow the events into
``?schema=NAME``, and ``PGOPTIONS`` cannot send them elsewhere), and libpq's own
connect timeout is the ledger's (a silent host fails as fast as a refusing one).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.persistence import ProcessRecorder
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
)
from eventsourcing.utils import Environment
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.database import connect_timeout
from ledger.persistence import APPLIED_KEYS_TABLE, CHAIN_TABLE, chain_rows

#: tries at creating the tables when other processes race to create them too
CREATE_ATTEMPTS = 8
#: events per INSERT statement in a large batch (see insert_events)
INSERT_CHUNK = 5_000


class PostgresLedgerRecorder(PostgresProcessRecorder):
    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        table = Identifier(CHAIN_TABLE)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0}.{1} ("
            "position bigint PRIMARY KEY, "
            "recorded_at text NOT NULL, "
            "hash text NOT NULL)"
        ).format(schema, table))
        self.sql_create_statements.append(SQL(
            "CREATE INDEX IF NOT EXISTS {0} ON {1}.{2} (recorded_at)"
        ).format(Identifier(f"{CHAIN_TABLE}_recorded_at"), schema, table))
        self._select_head = SQL(
            "SELECT position, recorded_at, hash FROM {0}.{1} ORDER BY position DESC LIMIT 1"
        ).format(schema, table)
        self._insert_links = SQL("INSERT INTO {0}.{1} VALUES (%s, %s, %s)").format(schema, table)
        keys = Identifier(APPLIED_KEYS_TABLE)
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0}.{1} ("
            "originator_id uuid NOT NULL, "
            "key text NOT NULL, "
            "originator_version bigint NOT NULL, "
            "PRIMARY KEY (originator_id, key))"
        ).format(schema, keys))
        self._insert_keys = SQL("INSERT INTO {0}.{1} VALUES (%s, %s, %s)").format(schema, keys)

    def create_table(self) -> None:
        """Create the tables, retrying when another process creates them at the same
        moment: PostgreSQL's IF NOT EXISTS is not safe against concurrent creators
        ("tuple concurrently updated", duplicate pg_type rows), and N consumer
        replicas starting together do exactly that."""
        for attempt in range(CREATE_ATTEMPTS):
            try:
                super().create_table()
                return
            except PersistenceError:
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 + random.random() * 0.2)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        """Append events (and tracking) in one transaction; large batches in chunks.

        eventsourcing sends a batch as ONE pipelined statement; with ~100,000 events
        that statement stalled here (client and server each waiting for the other).
        A large batch is therefore inserted chunk by chunk, without the pipeline, in
        the same transaction and under the same table lock: still all or nothing."""
        if len(stored_events) <= INSERT_CHUNK:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the tracking row
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(self._select_head)
            row = curs.fetchone()
            head = None if row is None else (row["recorded_at"], row["hash"])
            positions: list[int] = []
            # events and their links chunk by chunk, so the connection is never idle
            # in the transaction for long (eventsourcing's idle timeout ends it)
            for start in range(0, len(stored_events), INSERT_CHUNK):
                chunk = stored_events[start:start + INSERT_CHUNK]
                PostgresAggregateRecorder._insert_stored_events(self, curs, chunk)
                ids = [row["notification_id"] for row in curs.fetchall()]
                links = chain_rows(head, ids, chunk)
                curs.executemany(self._insert_links, links)
                head = (links[-1][1], links[-1][2])
                positions += ids
            self._append_keys(curs, **kwargs)
        return positions

    def _append_keys(self, curs: Cursor[DictRow], **kwargs: Any) -> None:
        """The idempotency keys of the commands whose events are being appended."""
        keys: Sequence[tuple[Any, str, int]] = kwargs.get("applied_keys") or ()
        if keys:
            curs.executemany(self._insert_keys, list(keys))

    def _append_links(self, curs: Cursor[DictRow], positions: Sequence[int],
                      stored_events: Sequence[StoredEvent]) -> None:
        curs.execute(self._select_head)
        row = curs.fetchone()
        head = None if row is None else (row["recorded_at"], row["hash"])
        curs.executemany(self._insert_links, chain_rows(head, positions, stored_events))

    def _fetch_ids_after_insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if not stored_events:
            return positions
        assert positions is not None
        self._append_links(curs, positions, stored_events)
        self._append_keys(curs, **kwargs)
        return positions


class LedgerPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory with the ledger's connection settings."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        # a session-level search_path for every connection of the pool: the read
        # models' and the ledger's own unqualified table names resolve in the schema
        kwargs["options"] = f"-c search_path={self.datastore.schema}"
        kwargs["connect_timeout"] = max(1, round(connect_timeout()))
        kwargs["application_name"] = "quota-ledger"

    def process_recorder(self) -> ProcessRecorder:
        if self.datastore.schema != "public":
            # eventsourcing creates its tables in the schema but not the schema itself
            # (two processes creating it at once: the loser's unique violation is harmless)
            with contextlib.suppress(IntegrityError), \
                    self.datastore.transaction(commit=True) as curs:
                curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(
                    Identifier(self.datastore.schema)))
        return super().process_recorder()
