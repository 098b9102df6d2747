"""The read model's per-event fold as it was before recorded shipments went through
one INSERT ... SELECT per batch (``projections/readmodel.py``'s ``_Folder`` at commit
0df6c5a): every event decoded in Python, in batches, over an in-memory copy of the
tables. The reference the read model is compared with, table by table, and batch by
batch for what the position index's ``note_batch`` is fed.

Kept as it was, decode rules included: a stored shape whose ``class_version`` differs
from its class's goes through ``decode_event`` (upcasters), except the shipment events,
whose every stored shape is read as stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.utils import resolve_topic
from pydantic_core import from_json

from ledger.persistence import decode_event
from projections.readmodel import PROJECTION, ReadModel

_READ_AS_STORED = ("ShipmentRecorded", "ShipmentCorrected")


@dataclass
class Feed:
    """What one batch handed ``position_index.note_batch``: the folder's lists (the
    version rows as sorted tuples: note_batch reads them as sets and minima, so
    their order is not part of what it is fed) and its two numbers."""

    new_versions: list[tuple[Any, ...]]
    old_versions: list[tuple[Any, ...]]
    allocations: list[tuple[Any, ...]]
    alloc_changes: list[tuple[Any, ...]]
    veus: list[tuple[Any, ...]]
    veu_changes: list[tuple[Any, ...]]
    rules: list[tuple[Any, ...]]
    events: int
    first: int


def feed_of(folder: Any, events: int, first: int) -> Feed:
    """The Feed a folder (the read model's, or _Batch below) hands note_batch."""
    return Feed(sorted(tuple(r) for r in folder.new_versions),
                sorted(tuple(r) for r in folder.old_versions),
                list(folder.allocations), list(folder.alloc_changes), list(folder.veus),
                list(folder.veu_changes), list(folder.rules), events, first)


def read_back_feed(feed: Feed) -> Feed:
    """What the read model feeds note_batch for a batch above ``READ_BACK`` events,
    given the reference's feed: it does not read the recorded shipments' rows back
    (their countries go to rm_quota_countries by one INSERT ... SELECT), and reads
    those corrected in the batch from the table, as they were before the batch."""
    firsts = [r for r in feed.new_versions if r[1] == r[3]]
    return Feed(sorted(r for r in feed.new_versions if r[1] != r[3]),
                sorted([*feed.old_versions,
                        *((*r[:2], None, *r[3:]) for r in firsts if r[2] is not None)]),
                feed.allocations, feed.alloc_changes, feed.veus, feed.veu_changes,
                feed.rules, feed.events, feed.first)


def event_rows(rm: ReadModel) -> list[tuple[Any, ...]]:
    """Every stored event as the fold reads it: (position, originator_id, topic, state)."""
    pos = "notification_id" if rm.pg else "rowid"
    with rm._tx(commit=False) as c:
        return c.execute(f"SELECT {pos}, originator_id, topic, state FROM {rm.events_table} "
                         f"ORDER BY {pos}").fetchall()


@dataclass
class Tables:
    """The read model's fold tables, in memory."""

    versions: list[list[Any]] = field(default_factory=list)
    #: sid -> its open version (a row of ``versions``)
    open: dict[str, list[Any]] = field(default_factory=dict)
    sid_of_first: dict[int, str] = field(default_factory=dict)
    allocations: list[tuple[Any, ...]] = field(default_factory=list)
    alloc_changes: list[tuple[Any, ...]] = field(default_factory=list)
    veus: list[tuple[Any, ...]] = field(default_factory=list)
    veu_changes: list[tuple[Any, ...]] = field(default_factory=list)
    rules: list[tuple[Any, ...]] = field(default_factory=list)
    countries: set[str] = field(default_factory=set)
    position: int = 0

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Each table's rows, sorted (as ``table_rows`` reads the database's)."""
        return {
            "rm_shipment_versions": sorted(tuple(r) for r in self.versions),
            "rm_allocations": sorted(self.allocations),
            "rm_allocation_changes": sorted(self.alloc_changes, key=repr),
            "rm_veus": sorted(self.veus),
            "rm_veu_changes": sorted(self.veu_changes, key=repr),
            "rm_rules": sorted(self.rules),
            "rm_quota_countries": sorted((c,) for c in self.countries),
            "rm_position": [(PROJECTION, self.position)],
        }


#: the tables Tables.rows gives, as the read model's database holds them
TABLES = ["rm_shipment_versions", "rm_allocations", "rm_allocation_changes", "rm_veus",
          "rm_veu_changes", "rm_rules", "rm_quota_countries", "rm_position"]


def table_rows(rm: ReadModel) -> dict[str, list[tuple[Any, ...]]]:
    """Each of TABLES's rows in the read model's database, sorted like Tables.rows."""
    out = {}
    with rm._tx(commit=False) as c:
        for table in TABLES:
            rows = [tuple(r) for r in c.execute(f"SELECT * FROM {table}").fetchall()]
            out[table] = sorted(rows, key=repr if "changes" in table else None)
    return out


def fold(rows: Sequence[Sequence[Any]], batch: int, ends: Sequence[int] = ()
         ) -> tuple[Tables, list[Feed]]:
    """Fold ``rows`` (event_rows) ``batch`` events at a time, a batch never reaching
    past one of the positions ``ends`` (where a catch-up found the log's head): the
    tables, and what each batch fed note_batch."""
    tables = Tables()
    feeds = []
    i = 0
    while i < len(rows):
        j = min(i + batch, len(rows))
        stops = [k for k in range(i + 1, j) if int(rows[k - 1][0]) in ends]
        part = rows[i:stops[0] if stops else j]
        b = _Batch(tables)
        b.fold(part)
        feeds.append(feed_of(b, len(part), int(part[0][0])))
        tables.position = int(part[-1][0])
        i += len(part)
    return tables, feeds


class _Batch:
    """One batch of the old ``_Folder``, its reads and writes on ``Tables``."""

    def __init__(self, tables: Tables):
        self.t = tables
        self.new_versions: list[list[Any]] = []
        self.open_new: dict[str, int] = {}
        self.open_old: dict[str, list[Any]] = {}
        self.old_versions: list[tuple[Any, ...]] = []
        self.close_old: list[tuple[int, int]] = []
        self.allocations: list[tuple[Any, ...]] = []
        self.alloc_changes: list[tuple[Any, ...]] = []
        self.veus: list[tuple[Any, ...]] = []
        self.veu_changes: list[tuple[Any, ...]] = []
        self.rules: list[tuple[Any, ...]] = []

    def fold(self, rows: Sequence[Sequence[Any]]) -> None:
        decoded: list[tuple[int, str, Any, Any]] = []
        fixes = []
        for position, originator_id, topic, state in rows:
            handler, version, fix = self._kind(topic)
            if handler is False:
                continue
            data = from_json(state)
            if data.pop("class_version", 1) != version and version:
                data = decode_event(topic, bytes(state), originator_id, 1).model_dump(
                    mode="json")
            sid = originator_id if isinstance(originator_id, str) else originator_id.hex
            if handler is None:
                sh = data["shipment"]
                auth = sh["authorization"]
                decoded.append((position, sid, None, [
                    sid, position, None, position, 0, 0, data["exporter_id"],
                    data["shipment_ref"], sh["ship_date"], sh["destination"],
                    sh["consignee_id"], sh["product_id"], sh["quantity"],
                    sh["tpp_per_unit"], auth["kind"], auth.get("ref"),
                    sh.get("die_area_mm2")]))
            else:
                decoded.append((position, sid, handler, data))
                if fix:
                    fixes.append(sid)
        recorded_here = {sid for _p, sid, h, _d in decoded if h is None}
        for sid in sorted({sid for sid in fixes if sid not in recorded_here}):
            row = self.t.open.get(sid)
            if row is not None:
                self.open_old[sid] = list(row)
                self.old_versions.append(tuple(row))
        for position, sid, handler, data in decoded:
            if handler is None:
                self.open_new[sid] = len(self.new_versions)
                self.new_versions.append(data)
            else:
                handler(position, sid, data)
        self._write()

    def _kind(self, topic: str) -> tuple[Any, int, bool]:
        name = topic.rsplit(":", 1)[1]
        if name == "ShipmentRecorded":
            handler = None
        else:
            handler = getattr(self, "_" + name, None)
            if handler is None:
                return False, 0, False
        version = 0 if name in _READ_AS_STORED else resolve_topic(topic).class_version
        return handler, version, name in ("ShipmentCorrected", "ShipmentVoided")

    def _successor(self, position: int, sid: str) -> list[Any]:
        i = self.open_new.get(sid)
        if i is not None:
            prev = self.new_versions[i]
        else:
            prev = self.open_old.pop(sid)
            self.close_old.append((position, prev[3]))
        prev[2] = position
        row = list(prev)
        row[1], row[2] = position, None
        self.open_new[sid] = len(self.new_versions)
        self.new_versions.append(row)
        return row

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
        import json

        self.veus.append((d["veu_id"], d["kind"], d["headquarters_country"],
                          d["valid_from"], position))
        data = {k: d.get(k) for k in ("entity", "covered_countries", "valid_to", "limits")}
        self.veu_changes.append((d["veu_id"], position, "version", d["valid_from"],
                                 json.dumps(data)))

    def _VeuAmended(self, position: int, sid: str, d: dict[str, Any]) -> None:
        import json

        self.veu_changes.append((d["veu_id"], position, "version", d["effective_date"],
                                 json.dumps(d["changes"])))

    def _VeuRevoked(self, position: int, sid: str, d: dict[str, Any]) -> None:
        self.veu_changes.append((d["veu_id"], position, "revoke", d["effective_date"], None))

    def _RuleRevisionPublished(self, position: int, sid: str, d: dict[str, Any]) -> None:
        import json

        self.rules.append((position, d["rule_id"], json.dumps(d["document"])))

    def _write(self) -> None:
        t = self.t
        for position, first in self.close_old:
            t.open.pop(t.sid_of_first[first])[2] = position
        for r in self.new_versions:
            row = list(r)
            t.versions.append(row)
            t.sid_of_first[row[3]] = row[0]
            if row[2] is None:
                t.open[row[0]] = row
        t.allocations += self.allocations
        t.alloc_changes += self.alloc_changes
        t.veus += self.veus
        t.veu_changes += self.veu_changes
        t.rules += self.rules
        t.countries |= {r[9] for r in [*self.new_versions, *self.old_versions]}
        t.countries |= {a[1] for a in self.allocations}
