"""Auditing the stored history: verify the hash chain, export the trail, restore it.

An auditor must not have to trust the operator. Three things live here:

- ``verify_chain`` (pure): walks the stored events and the ``ledger_chain`` rows
  together, recomputes every link from the exact stored bytes, and returns EVERY
  break with its position and kind (edited, deleted, inserted, reordered, truncated,
  edited chain row, not extending an expected head), in the style of beancount's
  validators: a list of problems, never a stop at the first one.
- ``export_rows`` / ``write_jsonl`` / ``write_csv``: the full trail (recorded
  position and time, effective date, type, every field, actor, chain hash, and the
  exact stored bytes so the export is a faithful copy, not a re-serialization).
- ``restore``: the auditor-only path that writes an exported trail into an EMPTY
  ledger verbatim (same positions, same recorded times, same bytes, same links),
  checking each link before it writes, so the restored ledger has the same head hash.
  Normal appends can never do this: they stamp the time and compute the link themselves.

The I/O wrappers (``read_stored_rows``, ``read_chain_rows``, ``verify``, ``export_rows``,
``restore``) take a ``Ledger``.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

from ledger.chain import GENESIS_HASH, link_hash
from ledger.errors import LedgerError, ValidationError
from ledger.persistence import CHAIN_TABLE, decode_event, is_postgres

if TYPE_CHECKING:
    from ledger.application import Ledger

BreakKind = Literal[
    "edited", "deleted", "inserted", "reordered", "truncated", "chain-row-edited",
    "time-not-increasing", "not-extending-head",
]


class AuditError(LedgerError):
    """An audit input (expected head, export file) is unusable."""

    code = "audit"


class RestoreError(AuditError):
    """An export cannot be restored verbatim (target not empty, a link does not match)."""

    code = "restore"


# --- values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRow:
    """One stored event exactly as the database holds it."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class ChainRow:
    position: int
    recorded_at: str
    hash: str


@dataclass(frozen=True)
class Break:
    position: int
    kind: BreakKind
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "message": self.message}


@dataclass
class VerifyResult:
    events: int
    links: int
    head: ChainRow | None
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "links": self.links,
            "head": None if self.head is None else {
                "position": self.head.position, "recorded_at": self.head.recorded_at,
                "hash": self.head.hash},
            "breaks": [b.as_dict() for b in self.breaks],
        }


def parse_expect_head(text: str) -> tuple[int, str]:
    """``POS:HASH`` as printed by ``ledger audit head``. Raises ValidationError."""
    pos, sep, digest = text.strip().partition(":")
    digest = digest.strip().lower()
    if not sep or not pos.isdigit() or len(digest) != 64 or any(
            c not in "0123456789abcdef" for c in digest):
        raise ValidationError(
            f"--expect-head {text!r} must be POSITION:HASH (64 hex digits), as printed by "
            "'ledger audit head'", field="expect_head", value=text)
    return int(pos), digest


def _link(prev: str, chain: ChainRow, event: StoredRow) -> str:
    return link_hash(prev, chain.position, chain.recorded_at, event.originator_id,
                     event.originator_version, event.topic, event.state)


# --- verification (pure) -----------------------------------------------------------------


def verify_chain(
    events: Iterable[StoredRow],
    links: Iterable[ChainRow],
    expect_head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Recompute the chain over the stored events and report every break.

    Each link is checked against the PREVIOUS STORED link (not a recomputed one), so
    one edit breaks one position instead of everything after it; an edited chain row
    shows as a failed link whose successor verifies against the recomputed value."""
    ev = {e.position: e for e in events}
    ch = {c.position: c for c in links}
    breaks: list[Break] = []
    last_event = max(ev, default=0)
    last_link = max(ch, default=0)

    prev_hash = GENESIS_HASH
    prev_pos = 0
    prev_time: str | None = None
    expected: dict[int, str] = {}   # the link recomputed from the stored content
    prev_used: dict[int, str] = {}  # the stored link each position was checked against
    failed: list[int] = []
    gaps: dict[int, tuple[int, int]] = {}
    truncated: list[int] = []
    for p in sorted(set(ev) | set(ch)):
        e, c = ev.get(p), ch.get(p)
        if c is None:
            assert e is not None
            breaks.append(Break(p, "inserted", (
                f"event at position {p} ({e.topic.rsplit(':', 1)[-1]} {e.originator_id} "
                f"v{e.originator_version}) has no chain row: it was written outside the "
                "ledger (inserted event)")))
            continue
        if e is None:
            if p > last_event:
                truncated.append(p)
            else:
                breaks.append(Break(p, "deleted", (
                    f"chain row {p} has no event: the event at position {p} was deleted")))
            prev_hash, prev_pos, prev_time = c.hash, p, c.recorded_at
            continue
        if prev_time is not None and c.recorded_at <= prev_time:
            breaks.append(Break(p, "time-not-increasing", (
                f"recorded time {c.recorded_at} at position {p} is not after "
                f"{prev_time} at position {prev_pos}")))
        expected[p] = _link(prev_hash, c, e)
        prev_used[p] = prev_hash
        if expected[p] != c.hash:
            failed.append(p)
            if p - prev_pos > 1:
                gaps[p] = (prev_pos + 1, p - 1)
        prev_hash, prev_pos, prev_time = c.hash, p, c.recorded_at

    if truncated:
        breaks.append(Break(truncated[0], "truncated", (
            f"chain rows {truncated[0]}..{truncated[-1]} have no events: the tail after "
            f"position {last_event} was deleted (truncated)")))

    # A chain row whose hash was edited fails, and so does the next link, which was
    # built on the true hash: if the next link verifies against the recomputed hash,
    # only the chain row was edited.
    failed_set = set(failed)
    linked = sorted(p for p in expected)
    explained: set[int] = set()
    for i, p in enumerate(linked):
        if p not in failed_set or i + 1 >= len(linked):
            continue
        q = linked[i + 1]
        if q in failed_set and _link(expected[p], ch[q], ev[q]) == ch[q].hash \
                and _link(prev_used[p], ch[p], ev[p]) == expected[p]:
            breaks.append(Break(p, "chain-row-edited", (
                f"chain row {p} holds hash {ch[p].hash[:16]}…, but the stored event "
                f"links to {expected[p][:16]}… and position {q} was built on that: the "
                "chain row was edited")))
            explained |= {p, q}

    # A reordered pair: each event fits the other's link.
    rest = [p for p in failed if p not in explained]
    for i, p in enumerate(rest):
        if p in explained:
            continue
        for q in rest[i + 1:]:
            if q in explained:
                continue
            if _link(prev_used[p], ch[p], ev[q]) == ch[p].hash and \
                    _link(prev_used[q], ch[q], ev[p]) == ch[q].hash:
                breaks.append(Break(p, "reordered", (
                    f"events at positions {p} and {q} are swapped: each matches the "
                    "other's link (reordered pair)")))
                explained |= {p, q}
                break

    for p in rest:
        if p in explained:
            continue
        if p in gaps:
            a, b = gaps[p]
            span = str(a) if a == b else f"{a}..{b}"
            breaks.append(Break(a, "deleted", (
                f"the link at position {p} does not follow from position {a - 1}: "
                f"position {span} (event and chain row) was deleted, or the event at "
                f"{p} was edited")))
        else:
            breaks.append(Break(p, "edited", (
                f"the stored event (bytes, identity or type) or its recorded time "
                f"differs from what the chain linked at position {p}")))

    head = ch[last_link] if ch else None
    if expect_head is not None:
        n, h = expect_head
        if n > max(last_link, last_event):
            breaks.append(Break(max(last_link, last_event) + 1, "truncated", (
                f"expected head at position {n} ({h[:16]}…), but the ledger ends at "
                f"position {max(last_link, last_event)}: positions "
                f"{max(last_link, last_event) + 1}..{n} were removed (truncated tail)")))
        elif n not in ch:
            breaks.append(Break(n, "not-extending-head", (
                f"expected head at position {n}, but there is no chain row at {n}: the "
                "ledger does not extend that head")))
        elif ch[n].hash != h:
            breaks.append(Break(n, "not-extending-head", (
                f"link at position {n} is {ch[n].hash[:16]}…, expected {h[:16]}…: the "
                f"history up to position {n} was rewritten")))
    breaks.sort(key=lambda b: (b.position, b.kind))
    return VerifyResult(events=len(ev), links=len(ch), head=head, breaks=breaks)


# --- reading the raw tables ----------------------------------------------------------------


def _uuid_text(value: Any) -> str:
    """The originator id as the recorders hashed it: ``str(UUID)``."""
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def read_stored_rows(ledger: Ledger, start: int = 1, stop: int | None = None
                     ) -> Iterator[StoredRow]:
    """The stored events exactly as held, in position order (no decoding)."""
    for n in ledger.read_stored(start, stop):
        yield StoredRow(int(n.id), _uuid_text(n.originator_id), int(n.originator_version),
                        str(n.topic), bytes(n.state))


def read_chain_rows(ledger: Ledger, start: int = 1, stop: int | None = None) -> list[ChainRow]:
    sql = f"SELECT position, recorded_at, hash FROM {CHAIN_TABLE} WHERE position >= ?"
    params: list[Any] = [start]
    if stop is not None:
        sql += " AND position <= ?"
        params.append(stop)
    sql += " ORDER BY position"
    return [ChainRow(int(p), str(t), str(h)) for p, t, h in ledger._query(sql, params)]


def chain_hash_at(ledger: Ledger, position: int) -> str | None:
    """The link stored at ``position`` (None if there is none): what an answer computed
    at that position can cite."""
    rows = read_chain_rows(ledger, position, position)
    return rows[0].hash if rows else None


def verify(ledger: Ledger, expect_head: tuple[int, str] | None = None) -> VerifyResult:
    """Verify the whole stored history of ``ledger`` (see ``verify_chain``)."""
    return verify_chain(read_stored_rows(ledger), read_chain_rows(ledger), expect_head)


# --- export -----------------------------------------------------------------------------------


def export_rows(ledger: Ledger, start: int = 1, stop: int | None = None
                ) -> Iterator[dict[str, Any]]:
    """One dict per stored event from ``start`` to ``stop``: the full audit trail.

    ``fields`` is the event as read today (upcast to the current shape); ``stored``
    holds the exact stored bytes, identity and type, which the chain covers and
    ``restore`` writes back verbatim. Raises AuditError for an event without its
    chain row (run ``ledger audit verify``)."""
    if start > 1:
        before = read_chain_rows(ledger, 1, start - 1)
        prev = before[-1].hash if before else GENESIS_HASH
    else:
        prev = GENESIS_HASH
    links = {c.position: c for c in read_chain_rows(ledger, start, stop)}
    for row in read_stored_rows(ledger, start, stop):
        link = links.get(row.position)
        if link is None:
            raise AuditError(f"event at position {row.position} has no chain row; run "
                             "'ledger audit verify'")
        try:
            event = decode_event(row.topic, row.state, uuid.UUID(row.originator_id),
                                 row.originator_version)
            state = json.loads(row.state)
        except Exception as e:
            raise AuditError(f"the event at position {row.position} cannot be read "
                             f"({type(e).__name__}); run 'ledger audit verify'") from e
        yield {
            "position": row.position,
            "recorded_at": link.recorded_at,
            "effective_date": event.effective_date.isoformat(),
            "type": event.type_name,
            "actor": event.actor,
            "timestamp": event.timestamp.isoformat(),
            "originator_id": row.originator_id,
            "originator_version": row.originator_version,
            "class_version": state.get("class_version", 1),
            "fields": {k: v for k, v in event.payload().items()
                       if k not in ("effective_date", "actor")},
            "prev_hash": prev,
            "chain_hash": link.hash,
            "stored": {"topic": row.topic, "state": row.state.decode("utf-8")},
        }
        prev = link.hash


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        n += 1
    return n


CSV_FIRST = ["position", "recorded_at", "effective_date", "type", "actor", "timestamp",
             "originator_id", "originator_version", "class_version", "prev_hash",
             "chain_hash"]


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    # A rule book is a whole document: one JSON cell, not hundreds of columns.
    if isinstance(value, dict) and prefix != "document":
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, (dict, list)):
        out[prefix] = json.dumps(value, sort_keys=True, ensure_ascii=False)
    else:
        out[prefix] = "" if value is None else str(value)


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Every field of every event as its own (dotted) column; the union of columns."""
    flat: list[dict[str, str]] = []
    columns: set[str] = set()
    for row in rows:
        cells = {k: str(row[k]) for k in CSV_FIRST}
        fields: dict[str, str] = {}
        _flatten("", row["fields"], fields)
        cells.update({f"fields.{k}": v for k, v in fields.items()})
        columns |= set(cells)
        flat.append(cells)
    header = CSV_FIRST + sorted(columns - set(CSV_FIRST))
    writer = csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return len(flat)


# --- restore -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreRow:
    stored: StoredRow
    link: ChainRow
    prev_hash: str


def parse_export_line(raw: str | bytes, line: int) -> RestoreRow:
    """One line of a JSON Lines export. Raises RestoreError naming the line and field."""
    try:
        data = json.loads(raw)
        stored = StoredRow(int(data["position"]), _uuid_text(data["originator_id"]),
                           int(data["originator_version"]), str(data["stored"]["topic"]),
                           str(data["stored"]["state"]).encode("utf-8"))
        link = ChainRow(int(data["position"]), str(data["recorded_at"]),
                        str(data["chain_hash"]))
        return RestoreRow(stored, link, str(data["prev_hash"]))
    except (ValueError, TypeError) as e:
        raise RestoreError(f"line {line}: not an audit export line ({e})") from e
    except KeyError as e:
        raise RestoreError(f"line {line}: field {e.args[0]!r} is missing; restore takes "
                           "'ledger audit export --format jsonl' output") from e


def check_restore(rows: Sequence[RestoreRow], head: ChainRow | None) -> None:
    """Check every link of ``rows`` before anything is written (pure).

    The first row must continue ``head`` (the genesis when the target is empty);
    positions and recorded times must increase. Raises RestoreError."""
    prev = GENESIS_HASH if head is None else head.hash
    last_pos = 0 if head is None else head.position
    last_time = None if head is None else head.recorded_at
    for r in rows:
        p = r.link.position
        if r.prev_hash != prev:
            raise RestoreError(f"position {p}: the export continues link {r.prev_hash[:16]}…, "
                               f"but the target ledger's head is {prev[:16]}…")
        if p <= last_pos:
            raise RestoreError(f"position {p} is not after position {last_pos}")
        if last_time is not None and r.link.recorded_at <= last_time:
            raise RestoreError(f"position {p}: recorded time {r.link.recorded_at} is not "
                               f"after {last_time}")
        actual = _link(prev, r.link, r.stored)
        if actual != r.link.hash:
            raise RestoreError(f"position {p}: the exported event does not match its chain "
                               f"hash {r.link.hash[:16]}… (computed {actual[:16]}…); the "
                               "export was altered")
        prev, last_pos, last_time = r.link.hash, p, r.link.recorded_at


def restore(ledger: Ledger, rows: Sequence[RestoreRow]) -> int:
    """Write checked export rows verbatim (events + chain rows) in one transaction.

    Only into a ledger whose head the export continues (normally an empty one).
    Returns the number of events written. Raises RestoreError."""
    head_t = ledger.head()
    head = None if head_t is None else ChainRow(*head_t)
    if head is None and ledger.max_position():
        raise RestoreError("the target ledger has events but no chain: refusing to restore")
    check_restore(rows, head)
    if not rows:
        return 0
    if is_postgres(ledger.url):
        _restore_postgres(ledger, rows)
    else:
        _restore_sqlite(ledger, rows)
    return len(rows)


def _restore_sqlite(ledger: Ledger, rows: Sequence[RestoreRow]) -> None:
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    events = ledger.recorder.events_table_name  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as c:
        for r in rows:
            s = r.stored
            # rowid is the recorded position on SQLite: set it explicitly
            c.execute(f"INSERT INTO {events} (rowid, originator_id, originator_version, "
                      "topic, state) VALUES (?,?,?,?,?)",
                      (s.position, uuid.UUID(s.originator_id).hex, s.originator_version,
                       s.topic, s.state))
            c.execute(f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?)",
                      (r.link.position, r.link.recorded_at, r.link.hash))


def _restore_postgres(ledger: Ledger, rows: Sequence[RestoreRow]) -> None:
    from psycopg.sql import SQL, Identifier

    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    schema = Identifier(datastore.schema)
    table = ledger.recorder.events_table_name  # type: ignore[attr-defined]
    events, chain = Identifier(table), Identifier(CHAIN_TABLE)
    with datastore.transaction(commit=True) as curs:
        # the same lock normal appends take, so no writer interleaves with the restore
        curs.execute(SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(schema, events))
        for r in rows:
            s = r.stored
            curs.execute(SQL("INSERT INTO {0}.{1} (originator_id, originator_version, topic, "
                             "state, notification_id) VALUES (%s,%s,%s,%s,%s)"
                             ).format(schema, events),
                         (uuid.UUID(s.originator_id), s.originator_version, s.topic, s.state,
                          s.position))
            curs.execute(SQL("INSERT INTO {0}.{1} VALUES (%s,%s,%s)").format(schema, chain),
                         (r.link.position, r.link.recorded_at, r.link.hash))
        # later appends must continue after the restored positions
        curs.execute(SQL("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)"),
                     (f"{datastore.schema}.{table}", rows[-1].link.position))
