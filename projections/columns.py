"""The live shipments of a ledger as typed columns: what the columnar replay reads.

``projections.state.LedgerState`` holds one ``ShipmentRow`` (with its pydantic
``ShipmentFields``) per shipment: ~2.9 KB each, 2.9 GB at a million. The columnar
replay (``projections.replay_columnar``) needs only a few numbers and codes per
shipment, so the read model's rows are fetched in chunks and packed into numpy
arrays as they come: per shipment about 60 bytes, and no Python object per row
outlives its chunk.

String columns become integer codes into sorted tables (``exporters[code]`` is the
exporter id), so comparing codes compares the strings; ``shipment_ref`` stays a
fixed-width unicode array (refs are nearly unique). Rows are ordered by (ship date,
recorded position): the order of every fold (README, "Position").

Pure: no I/O; ``ReadModel.shipment_columns`` feeds it.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
#: the columns the read model's query returns, in this order
SELECT = ("first_position, ship_date, exporter_id, shipment_ref, destination, consignee_id, "
          "product_id, quantity, tpp_per_unit, auth_kind, auth_ref, die_area_mm2")
EPOCH = dt.date(1970, 1, 1)
#: the string columns kept as codes, in SELECT order after the shipment_ref
_CODED = ("exporter", "destination", "consignee", "product", "auth_kind", "auth_ref",
          "die_area")


class ColumnsUnsupported(Exception):
    """The rows cannot be held in int64 columns (a value beyond 2**63): the caller
    falls back to the per-shipment engine."""


@dataclass(frozen=True)
class ShipmentColumns:
    """Live shipments, one array element per shipment, in (ship date, position) order."""

    position: IntArray
    #: ship date as days since 1970-01-01
    day: IntArray
    quantity: IntArray
    tpp_per_unit: IntArray
    tpp: IntArray
    exporter: IntArray
    destination: IntArray
    consignee: IntArray
    product: IntArray
    auth_kind: IntArray
    #: code into auth_refs ("" for none)
    auth_ref: IntArray
    shipment_ref: npt.NDArray[np.str_]
    #: code into die_areas, the declared die areas as stored ("" for none)
    die_area: IntArray
    exporters: list[str]
    destinations: list[str]
    consignees: list[str]
    products: list[str]
    auth_kinds: list[str]
    auth_refs: list[str]
    die_areas: list[str]

    def __len__(self) -> int:
        return len(self.position)

    def head(self, n: int) -> ShipmentColumns:
        """The first ``n`` rows (those shipped by a date: the rows are in date order)."""
        arrays = {f.name: getattr(self, f.name)[:n] for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        return replace(self, **arrays)

    def kind_code(self, kind: str) -> int:
        """The code of an authorization kind (-1: no shipment has it)."""
        return self.auth_kinds.index(kind) if kind in self.auth_kinds else -1


def day_of(days: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(days))


def days_since_epoch(day: dt.date) -> int:
    return (day - EPOCH).days


class _Coder:
    """Global integer codes for a string column, built chunk by chunk (a dict look-up
    per value: far cheaper than sorting the strings)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, values: Sequence[str]) -> IntArray:
        codes = self.codes
        for v in set(values).difference(codes):
            codes[v] = len(codes)
        return np.fromiter(map(codes.__getitem__, values), dtype=np.int64,
                           count=len(values))

    def sorted_table(self) -> tuple[list[str], IntArray]:
        """(names in sorted order, rank of each insertion-order code)."""
        names = sorted(self.codes)
        rank = np.zeros(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            rank[self.codes[name]] = i
        return names, rank


def _days(values: Sequence[str], cache: dict[str, int]) -> IntArray:
    """ISO dates as days since the epoch (a ledger has far fewer dates than rows)."""
    for text in set(values).difference(cache):
        cache[text] = days_since_epoch(dt.date.fromisoformat(text))
    return np.fromiter(map(cache.__getitem__, values), dtype=np.int64, count=len(values))


def _ints(values: Sequence[Any]) -> IntArray:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError as e:
        raise ColumnsUnsupported(f"a value beyond int64 in the shipment rows: {e}") from e


def from_chunks(chunks: Iterable[Sequence[Sequence[Any]]]) -> ShipmentColumns:
    """Pack chunks of rows (``SELECT`` order) into sorted columns."""
    packer = _Packer()
    for rows in chunks:
        if not rows:
            continue
        (pos, day, exporter, ref, dest, consignee, product, qty, tpu, kind,
         auth_ref, die_area) = zip(*rows, strict=True)
        packer.add(_ints(pos), day, exporter, ref, dest, consignee, product, _ints(qty),
                   _ints(tpu), kind, [r or "" for r in auth_ref], [a or "" for a in die_area])
    return packer.columns()


#: the separator of a bulk chunk's texts: a control character that no stored id
#: (``ledger.events.ID_PATTERN``), date or decimal contains; a value holding it would
#: split into more values than the chunk's rows, which is refused (ColumnsUnsupported)
SEP = "\x1f"
_BULK_INTS = ("first_position", "quantity", "tpp_per_unit")
_BULK_TEXTS = ("ship_date", "shipment_ref", "exporter_id", "destination", "consignee_id",
               "product_id", "auth_kind", "COALESCE(auth_ref, '')",
               "COALESCE(die_area_mm2, '')")


def bulk_select(pg: bool) -> str:
    """The select list of a bulk chunk: the number of rows, then per column every
    row's value in one text (``SELECT`` order; integers separated by commas, texts by
    ``SEP``). The aggregates of one query read the same rows in the same order, so the
    texts line up; fetching a dozen texts per chunk instead of a tuple per row is what
    makes the read cheap (no Python object per row and per value)."""
    # the separator is a literal: SQLite evaluates a char(31) call once per row (twice
    # the cost of the whole aggregate)
    if pg:
        ints = [f"string_agg(CAST({c} AS TEXT), ',')" for c in _BULK_INTS]
        texts = [f"string_agg({c}, '{SEP}')" for c in _BULK_TEXTS]
    else:
        ints = [f"group_concat({c}, ',')" for c in _BULK_INTS]
        texts = [f"group_concat({c}, '{SEP}')" for c in _BULK_TEXTS]
    return ", ".join(["count(*)", *ints, *texts])


def from_bulk(chunks: Iterable[Sequence[Any]]) -> ShipmentColumns:
    """Pack bulk chunks (rows of ``bulk_select``) into sorted columns: the same
    columns ``from_chunks`` packs from the rows themselves."""
    packer = _Packer()
    for chunk in chunks:
        count = int(chunk[0])
        if not count:
            continue
        pos, qty, tpu = (bulk_ints(text, count) for text in chunk[1:4])
        day, ref, exporter, dest, consignee, product, kind, auth_ref, die_area = (
            bulk_texts(text, count) for text in chunk[4:])
        packer.add(pos, day, exporter, ref, dest, consignee, product, qty, tpu, kind,
                   auth_ref, die_area)
    return packer.columns()


_INT64 = np.iinfo(np.int64)


def bulk_ints(text: str, count: int) -> IntArray:
    """``count`` comma-separated integers; ColumnsUnsupported for anything else, or for
    a value at the edge of int64 (numpy's parser saturates there: it might be beyond)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning) as e:
            raise ColumnsUnsupported(f"a bulk integer column did not parse: {e}") from e
    if len(values) != count:
        raise ColumnsUnsupported(f"a bulk integer column holds {len(values)} values for "
                                 f"{count} rows")
    if count and (values.max() == _INT64.max or values.min() == _INT64.min):
        raise ColumnsUnsupported("a value at the edge of int64 in the shipment rows")
    return values


def bulk_texts(text: str, count: int) -> list[str]:
    """``count`` texts separated by ``SEP``; ColumnsUnsupported if a value held it."""
    values = text.split(SEP)
    if len(values) != count:
        raise ColumnsUnsupported(f"a bulk text column holds {len(values)} values for "
                                 f"{count} rows (a value contains the separator)")
    return values


class _Packer:
    """Columns built chunk by chunk: integers as arrays, strings as global codes."""

    def __init__(self) -> None:
        self.coders = {name: _Coder() for name in _CODED}
        self.day_cache: dict[str, int] = {}
        self.parts: dict[str, list[Any]] = {k: [] for k in (
            "position", "day", "quantity", "tpp_per_unit", "shipment_ref", *_CODED)}

    def add(self, pos: IntArray, day: Sequence[str], exporter: Sequence[str],
            ref: Sequence[str], dest: Sequence[str], consignee: Sequence[str],
            product: Sequence[str], qty: IntArray, tpu: IntArray, kind: Sequence[str],
            auth_ref: Sequence[str], die_area: Sequence[str]) -> None:
        """One chunk's columns (auth_ref and die_area: "" for none)."""
        parts = self.parts
        parts["position"].append(pos)
        parts["day"].append(_days(day, self.day_cache))
        parts["quantity"].append(qty)
        parts["tpp_per_unit"].append(tpu)
        parts["shipment_ref"].append(np.array(ref, dtype=str))
        for name, values in zip(_CODED, (exporter, dest, consignee, product, kind,
                                         auth_ref, die_area), strict=True):
            parts[name].append(self.coders[name].encode(values))

    def columns(self) -> ShipmentColumns:
        return _assemble(self.parts, self.coders)


def _assemble(parts: dict[str, list[Any]], coders: dict[str, _Coder]) -> ShipmentColumns:
    def cat(name: str, dtype: Any = np.int64) -> Any:
        return np.concatenate(parts[name]) if parts[name] else np.zeros(0, dtype=dtype)

    position, day = cat("position"), cat("day")
    # one packed key: a single sort instead of lexsort's one per key
    order = (np.argsort((day - day.min(initial=0)) * (int(position.max(initial=0)) + 1)
                        + position, kind="stable") if len(day) else np.zeros(0, np.int64))
    quantity, tpu = cat("quantity")[order], cat("tpp_per_unit")[order]
    tpp = _checked_tpp(quantity, tpu)
    tables: dict[str, list[str]] = {}
    coded: dict[str, IntArray] = {}
    for name in _CODED:
        names, rank = coders[name].sorted_table()
        tables[name] = names
        coded[name] = rank[cat(name)[order]] if len(names) else np.zeros(0, np.int64)
    return ShipmentColumns(
        position=position[order], day=day[order], quantity=quantity, tpp_per_unit=tpu,
        tpp=tpp, shipment_ref=cat("shipment_ref", str)[order], **coded,
        exporters=tables["exporter"], destinations=tables["destination"],
        consignees=tables["consignee"], products=tables["product"],
        auth_kinds=tables["auth_kind"], auth_refs=tables["auth_ref"],
        die_areas=tables["die_area"])


def _checked_tpp(quantity: IntArray, tpu: IntArray) -> IntArray:
    """quantity x TPP per unit, refusing (ColumnsUnsupported) any product or total
    that could leave int64: the replay sums them."""
    if len(quantity) == 0:
        return np.zeros(0, np.int64)
    top = int(quantity.max()) * int(tpu.max())
    if top * len(quantity) >= 2**62:
        raise ColumnsUnsupported(f"TPP totals up to {top * len(quantity)} could leave int64")
    tpp: IntArray = quantity * tpu
    return tpp
