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

from json.encoder import encode_basestring_ascii as _enc_str  # output.py's encoder
from dataclasses import asdict
from typing import Any

import numpy as np

from ledger.cli.output import _INDENT, dumps_indented
from projections.replay_columnar import ChangeRows, LaneColumns, fill_detail, outside_detail

_LEVEL = 2  # the changes are items of a list in the top-level object


def _lead(name: str, level: int) -> str:
    return "\n" + _INDENT * (level + 1) + _enc_str(name) + ": "


class ChangeEncoder:
    """``encode(changes, start, stop)`` for ``echo_json_stream``."""

    def __init__(self, changes: ChangeRows):
        self.changes = changes
        cols = changes.w.cols
        self.exporters = [_enc_str(e) for e in cols.exporters]
        self.destinations = [_enc_str(d) for d in cols.destinations]
        self.consignees = [_enc_str(c) for c in cols.consignees]
        self.pieces: dict[tuple[int, ...], tuple[str, str, str, str]] = {}
        self.details: dict[tuple[int, ...], str] = {}

    def __call__(self, items: Any, start: int, stop: int) -> list[str]:
        assert items is self.changes
        rows = self.changes.idx[start:stop]
        cols = self.changes.w.cols
        under_a = self.lane(self.changes.a, 0, rows)
        under_b = self.lane(self.changes.b, 1, rows)
        lead = {name: _lead(name, _LEVEL) for name in (
            "against", "consignee_id", "destination", "exporter_id", "position", "rule",
            "ship_date", "shipment_ref", "tpp")}
        close = "\n" + _INDENT * _LEVEL + "}"
        out = []
        for e, ref, d, dest, k, pos, tpp, ta, tb in zip(
                cols.exporter[rows].tolist(), cols.shipment_ref[rows].tolist(),
                cols.day[rows].tolist(), cols.destination[rows].tolist(),
                cols.consignee[rows].tolist(), cols.position[rows].tolist(),
                cols.tpp[rows].tolist(), under_a, under_b, strict=True):
            out.append("".join((
                "{", lead["against"], tb, ",", lead["consignee_id"], self.consignees[k], ",",
                lead["destination"], self.destinations[dest], ",", lead["exporter_id"],
                self.exporters[e], ",", lead["position"], int.__repr__(pos), ",", lead["rule"],
                ta, ",", lead["ship_date"], self.date(d), ",", lead["shipment_ref"],
                _enc_str(ref), ",", lead["tpp"], int.__repr__(tpp), close)))
        return out

    def date(self, day: int) -> str:
        key = (-1, day)
        text = self.details.get(key)
        if text is None:
            from projections.columns import day_of

            text = self.details[key] = _enc_str(day_of(day).isoformat())
        return text

    def lane(self, lane: LaneColumns, which: int, rows: Any) -> list[str]:
        """The lane treatments' texts at level 3 (an object inside a change)."""
        days = lane.days
        treatments = lane.groups.treatments
        w = self.changes.w
        out = []
        for i, rule_i, group, bucket, flag, flag_tpp, delta, breach, outside, d in zip(
                rows.tolist(), days.rule[w.day_index[rows]].tolist(),
                lane.groups.of_row[rows].tolist(), lane.bucket[rows].tolist(),
                lane.flag[rows].tolist(), lane.flag_tpp[rows].tolist(),
                lane.delta[rows].tolist(), lane.breach[rows].tolist(),
                lane.outside[rows].tolist(), w.cols.day[rows].tolist(), strict=True):
            clause = treatments[group].clause
            key = (rule_i, clause, bucket, flag, breach)
            pieces = self.pieces.get(key)
            if pieces is None:
                pieces = self.pieces[key] = self.lane_pieces(lane, i)
            p1, p2, p3, p4 = pieces
            detail = self.details.get((which, rule_i, group, d if outside else -1))
            if detail is None:
                detail = self.detail(lane, which, rule_i, group, outside, d, i)
            out.append("".join((p1, int.__repr__(delta), p2, detail, p3,
                                int.__repr__(flag_tpp), p4)))
        return out

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

    def detail(self, lane: LaneColumns, which: int, rule_i: int, group: int, outside: bool,
               day: int, i: int) -> str:
        """The encoded detail: shared by a group's rows (outside the cap period: by its
        rows of a day), or the row's own when it names its reference and reason."""
        rule = None if rule_i < 0 else lane.days.rules[rule_i]
        w = self.changes.w
        template = lane.groups.treatments[group].detail
        if outside:
            raw = outside_detail(rule, day)
        elif "\x00" in template:
            return _enc_str(fill_detail(w.state, w.cols, i, template))
        else:
            raw = template
        text = self.details[(which, rule_i, group, day if outside else -1)] = _enc_str(raw)
        return text
