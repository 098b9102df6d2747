"""``ledger replay --json``'s shipment changes from the columnar replay, encoded fast.

At a million shipments a replay lists ~700,000 changes; building each as three
dataclasses and encoding them field by field (``output.dumps_indented``) took longer
than the whole replay. Here each change's text is put together from pieces: the
parts of a lane treatment that depend only on its group (rule, treatment, bucket,
flag, breach, clause, citation) are encoded once per group, and the per-shipment
values (ids, date, TPP) are encoded from the columns. The text is exactly
``dumps_indented(change, 2)`` (tested on the golden ledger, generated ledgers and the
10k bench ledger): the field names, their order and the indentation come from the
same encoder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from itertools import repeat
from json.encoder import encode_basestring_ascii as _enc_str  # output.py's encoder
from typing import Any

import numpy as np

from ledger.cli.output import _INDENT, dumps_indented
from projections.columns import IntArray, day_of
from projections.replay_columnar import ChangeRows, LaneColumns, group_codes, outside_detail

_LEVEL = 2  # the changes are items of a list in the top-level object


def _lead(name: str, level: int) -> str:
    return "\n" + _INDENT * (level + 1) + _enc_str(name) + ": "


class ChangeEncoder:
    """``encode(changes, start, stop)`` for ``echo_json_stream``.

    A change's text is 23 pieces joined: per lane the seven of its treatment (the
    fixed texts around counted_tpp, detail and flag_tpp, chosen by the lane's key
    code), then ids, date and numbers, each with the fixed text that follows it in
    the change. The pieces of a slice are picked by numpy indexing of object arrays
    (codes computed once for all the changes), so the only per-change Python step is
    the join."""

    def __init__(self, changes: ChangeRows):
        self.changes = changes
        cols = changes.w.cols
        lead = {name: "," + _lead(name, _LEVEL) for name in (
            "against", "consignee_id", "destination", "exporter_id", "position", "rule",
            "ship_date", "shipment_ref", "tpp")}
        self.consignees = _texts(_enc_str(c) + lead["destination"] for c in cols.consignees)
        self.destinations = _texts(_enc_str(d) + lead["exporter_id"]
                                   for d in cols.destinations)
        self.exporters = _texts(_enc_str(e) + lead["position"] for e in cols.exporters)
        self.dates = _texts(lead["ship_date"] + _enc_str(day_of(d).isoformat())
                            + lead["shipment_ref"] for d in changes.w.udays.tolist())
        self.tpp_lead = lead["tpp"]
        self.close = "\n" + _INDENT * _LEVEL + "}"
        self.lanes = [
            _LaneCodes(self, changes.b, "{" + lead["against"][1:], lead["consignee_id"]),
            _LaneCodes(self, changes.a, lead["rule"], ""),
        ]

    def __call__(self, items: Any, start: int, stop: int) -> list[str]:
        assert items is self.changes
        rows = self.changes.idx[start:stop]
        cols = self.changes.w.cols
        under_b, under_a = (lane.texts(start, stop, rows) for lane in self.lanes)
        return list(map("".join, zip(
            *under_b, self.consignees[cols.consignee[rows]].tolist(),
            self.destinations[cols.destination[rows]].tolist(),
            self.exporters[cols.exporter[rows]].tolist(), _ints(cols.position[rows]),
            *under_a, self.dates[self.changes.w.day_index[rows]].tolist(),
            map(_enc_str, cols.shipment_ref[rows].tolist()), repeat(self.tpp_lead),
            _ints(cols.tpp[rows]), repeat(self.close))))

    def lane_pieces(self, lane: LaneColumns, i: int) -> tuple[str, str, str, str]:
        """The texts around counted_tpp, detail and flag_tpp of row ``i``'s treatment,
        cut from its full encoding (so they are the encoder's own); the rest depends
        only on the revision, clause, bucket, flag and breach."""
        t = self.changes.treatments(lane, np.array([i], dtype=np.int64), details=False)[0]
        # the dict of its fields encodes as the dataclass does (``dumps_indented``)
        marked = {**asdict(t), "counted_tpp": "\x01c", "detail": "\x01d", "flag_tpp": "\x01f"}
        text = dumps_indented(marked, _LEVEL + 1)
        p1, rest = text.split(_enc_str("\x01c"))
        p2, rest = rest.split(_enc_str("\x01d"))
        p3, p4 = rest.split(_enc_str("\x01f"))
        return p1, p2, p3, p4


class _LaneCodes:
    """One lane's seven pieces of every change: the fixed texts by a code per change
    (revision, clause, bucket, flag, breach), the details by another (the revision and
    day outside the cap period, else the group's detail), and the numbers."""

    def __init__(self, enc: ChangeEncoder, lane: LaneColumns, before: str, after: str):
        self.enc, self.lane = enc, lane
        w, rows = enc.changes.w, enc.changes.idx
        rule_i, group = lane.days.rule[w.day_index[rows]], lane.groups.of_row[rows]
        treatments = lane.groups.treatments
        clause_ids: dict[str, int] = {}
        clause = np.array([clause_ids.setdefault(t.clause, len(clause_ids))
                           for t in treatments], dtype=np.int64)
        self.code, first = group_codes(rule_i, clause[group] if len(group) else group,
                                       lane.bucket[rows], lane.flag[rows],
                                       lane.breach[rows].astype(np.int64))
        pieces = [enc.lane_pieces(lane, int(rows[f])) for f in first.tolist()]
        self.p1 = _texts(before + p[0] for p in pieces)
        self.p2 = _texts(p[1] for p in pieces)
        self.p3 = _texts(p[2] for p in pieces)
        self.p4 = _texts(p[3] + after for p in pieces)
        self.details_by_code(rule_i, group, w.cols.day[rows], lane.outside[rows])

    def details_by_code(self, rule_i: IntArray, group: IntArray, day: IntArray,
                        outside: Any) -> None:
        """Outside the cap period the detail names the revision's period and the day;
        otherwise it is the group's, unless it names the row's own reference and
        reason (``fill``: made per row)."""
        treatments = self.lane.groups.treatments
        template_ids: dict[str, int] = {}
        template = np.array([template_ids.setdefault(t.detail, len(template_ids))
                             for t in treatments], dtype=np.int64)
        templates = list(template_ids)
        inside = ~outside
        self.detail_code, first = group_codes(
            outside.astype(np.int64), np.where(outside, rule_i, 0),
            np.where(outside, day, template[group] if len(group) else group))
        texts: list[str | None] = []
        for f in first.tolist():
            if inside[f]:
                raw = templates[int(template[group[f]])]
                texts.append(None if "\x00" in raw else _enc_str(raw))
            else:
                r = int(rule_i[f])
                texts.append(_enc_str(outside_detail(
                    None if r < 0 else self.lane.days.rules[r], int(day[f]))))
        self.details = _texts(texts)
        self.fill = np.array([t is None for t in texts], dtype=bool)

    def texts(self, start: int, stop: int, rows: IntArray) -> list[Any]:
        """The seven piece lists of changes ``start:stop`` (rows ``rows``)."""
        code, dcode = self.code[start:stop], self.detail_code[start:stop]
        details = self.details[dcode].tolist()
        lane = self.lane
        js = np.flatnonzero(self.fill[dcode])
        if len(js):
            own = rows[js]
            treatments = lane.groups.treatments
            filled = self.enc.changes.checks.fill_details(
                own, [treatments[g].detail for g in lane.groups.of_row[own].tolist()])
            for j, text in zip(js.tolist(), filled, strict=True):
                details[j] = _enc_str(text)
        return [self.p1[code].tolist(), _ints(lane.delta[rows]), self.p2[code].tolist(),
                details, self.p3[code].tolist(), _ints(lane.flag_tpp[rows]),
                self.p4[code].tolist()]


def _texts(texts: Iterable[str | None]) -> Any:
    """Texts as an object array, for picking a slice's pieces by numpy indexing."""
    items = list(texts)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _ints(values: IntArray) -> list[str]:
    return list(map(int.__repr__, values.tolist()))
