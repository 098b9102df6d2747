"""The columnar replay: ``projections.replay.replay`` over typed columns, with numpy.

Same answer, byte for byte, as the per-shipment engine (``projections.replay``, which
folds every country with ``positions.fold_country``), computed without a Python step
per shipment for the running parts:

1. **Groups.** A shipment's treatment (``ledger.counting.classify``) depends only on
   its lane's revision and dated period on the ship date, its destination, product,
   TPP per unit and declared die area, authorization kind and license/VEU check;
   shipments alike in these form a group, classified once (a million shipments: a
   few thousand groups). The license/VEU checks are computed once per distinct
   (reference, exporter, destination, ship date).
2. **LPP year totals.** LPP shipments sorted by (consignee, year), then (ship date,
   recorded position): a cumulative sum per consignee-year gives each shipment's
   earlier total, and the excess is ``clip(total + tpp - limit, 0, tpp)``.
3. **Licenses.** Per license, its changes of standing (grant, adjustment, end: at
   the start of their day) and its shipments (after them, in recorded order) in one
   sorted run: cumulative shipped and counted TPP, the amount and standing carried
   forward from the latest change, hence each shipment's excess and each item's
   change of the license's committed part.
4. **Countries.** Per country, every allocation change and shipment in day-rule order
   with its change of committed and of cap: cumulative sums give committed and cap
   after each; the first breach is the first shipment, or last change of a day whose
   changes worsened the position, after which committed > cap.

Only the rows a user sees are built as Python objects: the per-country positions,
and the shipment changes, lazily, as they are printed (``ChangeRows``).

What it does not model, so the caller switches to the per-shipment engine
(``Unsupported``): a license shipment with no change of standing of its license
before it (cannot happen in a consistent ledger: a valid license started by the
ship date), and values that could leave int64 (``columns.ColumnsUnsupported``).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from ledger.counting import AuthorizationCheck, Bucket, Flag, Treatment, classify, license_check
from ledger.errors import ValidationError
from ledger.events import Authorization, ShipmentFields
from ledger.rulebook import RuleBook
from projections.columns import IntArray, ShipmentColumns, day_of, days_since_epoch
from projections.positions import (
    AllocationChange,
    BreachRef,
    FlagTotal,
    allocation_changes,
    authorization_checks,
    cap_period_of,
    cap_standing,
    no_rule_treatment,
)
from projections.replay import (
    _BUCKET_WORDS,
    CountryComparison,
    Lane,
    LaneCountry,
    LaneTreatment,
    ReplayResult,
    ShipmentChange,
    Totals,
    make_lane,
)
from projections.state import LedgerState, ShipmentRow

BoolArray = npt.NDArray[np.bool_]
BUCKETS = [Bucket.NONE, Bucket.CAP, Bucket.LICENSE, Bucket.LPP, Bucket.VEU]
B_NONE, B_CAP, B_LICENSE, B_LPP, B_VEU = range(5)
#: flag codes: 0 is no flag
FLAGS: list[Flag | None] = [None, *Flag]
F_LPP_EXCESS, F_LICENSE_EXCESS = FLAGS.index(Flag.LPP_EXCESS), FLAGS.index(Flag.LICENSE_EXCESS)


class Unsupported(Exception):
    """The ledger holds a case the columnar lane does not model (the message says
    which): the caller uses the per-shipment engine."""


# --- small array helpers --------------------------------------------------------------


#: the largest key range ranked through a table of the range (a bool and an int64
#: per key: 36 MB) instead of by sorting the keys
DENSE_SPAN = 1 << 22


def dense_rank(values: IntArray) -> tuple[IntArray, int]:
    """(rank of each value among the distinct values, how many there are), in value
    order: what ``np.unique(values, return_inverse=True)`` gives, without sorting the
    values when their range is small (a table marking which values occur)."""
    if not len(values):
        return values.astype(np.int64), 0
    low = int(values.min())
    width = int(values.max()) - low + 1
    if width > DENSE_SPAN:
        distinct, inverse = np.unique(values, return_inverse=True)
        return inverse.reshape(-1), len(distinct)
    shifted = values - low
    present = np.zeros(width, dtype=bool)
    present[shifted] = True
    rank_of = np.cumsum(present) - 1
    ranks: IntArray = rank_of[shifted]
    return ranks, int(rank_of[-1]) + 1


def group_codes(*cols: IntArray) -> tuple[IntArray, IntArray]:
    """(group of each row, first row of each group) for rows equal in every column:
    ``np.unique(key, return_index=True, return_inverse=True)`` of the rows' key
    tuples, groups numbered in key order (the first column most significant).

    The columns are integer codes: each is ranked (``dense_rank``), the ranks packed
    into one int64 key (mixed radix), the key ranked again whenever the next column
    would make its range exceed ``DENSE_SPAN``; so no sort of the rows when the
    columns have few values, as here."""
    n = len(cols[0])
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for col in cols:
        ranks, width = dense_rank(col)
        if span * max(width, 1) > DENSE_SPAN:
            key, span = dense_rank(key)
        key = key * width + ranks
        span *= max(width, 1)
    group, count = dense_rank(key)
    first = np.full(count, n, dtype=np.int64)
    np.minimum.at(first, group, np.arange(n, dtype=np.int64))
    return group, first


def sort_order(*keys: IntArray) -> IntArray:
    """``np.lexsort(keys)`` (the last key first) of non-negative int keys, as one
    stable sort of a packed int64 key when they fit, else lexsort."""
    packed = np.zeros(len(keys[0]), dtype=np.int64)
    span = 1
    for k in reversed(keys):
        low = int(k.min(initial=0))
        width = int(k.max(initial=0)) - low + 1
        if span * width >= 2**62:
            return np.lexsort(keys)
        packed = packed * width + (k - low)
        span *= width
    order: IntArray = np.argsort(packed, kind="stable")
    return order


def run_starts(*keys: IntArray) -> BoolArray:
    """True where a run of equal keys begins (the arrays are sorted by them)."""
    n = len(keys[0])
    start = np.zeros(n, dtype=bool)
    if n:
        start[0] = True
        for k in keys:
            start[1:] |= k[1:] != k[:-1]
    return start


def run_cumsum(values: IntArray, start: BoolArray) -> IntArray:
    """Cumulative sum restarting at each run start."""
    total = np.cumsum(values)
    before = total - values
    run = np.cumsum(start) - 1
    out: IntArray = total - before[np.flatnonzero(start)][run]
    return out


# --- the shipment as the per-shipment functions see it --------------------------------


_AUTHS: dict[tuple[str, str | None], Authorization] = {}


def _authorization(kind: Any, ref: str | None) -> Authorization:
    """One shared (frozen) Authorization per (kind, reference); the kind is a stored
    one, so valid."""
    auth = _AUTHS.get((kind, ref))
    if auth is None:
        auth = _AUTHS[(kind, ref)] = Authorization.model_construct(kind=kind, ref=ref)
    return auth


def fields_at(cols: ShipmentColumns, i: int) -> ShipmentFields:
    """Shipment ``i``'s fields (for classifying a group's first row)."""
    return ShipmentFields.model_construct(
        ship_date=day_of(cols.day[i]), destination=cols.destinations[int(cols.destination[i])],
        consignee_id=cols.consignees[int(cols.consignee[i])],
        product_id=cols.products[int(cols.product[i])], quantity=int(cols.quantity[i]),
        tpp_per_unit=int(cols.tpp_per_unit[i]),
        authorization=_authorization(cols.auth_kinds[int(cols.auth_kind[i])],
                                     cols.auth_refs[int(cols.auth_ref[i])] or None),
        die_area_mm2=_die_area(cols.die_areas[int(cols.die_area[i])]))


def _die_area(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def row_at(cols: ShipmentColumns, i: int) -> ShipmentRow:
    """Shipment ``i`` as a ShipmentRow (for its license/VEU check)."""
    position = int(cols.position[i])
    return ShipmentRow(cols.exporters[int(cols.exporter[i])], str(cols.shipment_ref[i]),
                       fields_at(cols, i), position, position)


# --- 1. groups -------------------------------------------------------------------------


#: the license/VEU check of a group: its rows' references and failure reasons differ,
#: so the group's treatment is classified with these stand-ins and the row's own
#: reference and reason are put in its detail when it is printed (``RowChecks``)
REF, REASON = "\x00ref\x00", "\x00reason\x00"
STAND_INS = [AuthorizationCheck(REF, False, REASON), AuthorizationCheck(REF, True)]


@dataclass(frozen=True)
class Checks:
    """Per row, its license check and VEU check: 1 valid, 0 not valid, -1 none."""

    license: IntArray
    veu: IntArray

    @staticmethod
    def stand_in(code: int) -> AuthorizationCheck | None:
        return None if code < 0 else STAND_INS[code]


def all_checks(state: LedgerState, cols: ShipmentColumns) -> Checks:
    """Whether each row's license or VEU was usable on its ship date (the conditions
    of ``counting.license_check`` and ``veu_check``, over arrays)."""
    license = np.full(len(cols), -1, dtype=np.int64)
    veu = np.full(len(cols), -1, dtype=np.int64)
    idx = np.flatnonzero(cols.auth_kind == cols.kind_code("license"))
    license[idx] = license_valid(state, cols, idx)
    idx = np.flatnonzero(cols.auth_kind == cols.kind_code("veu"))
    veu[idx] = veu_valid(state, cols, idx)
    return Checks(license, veu)


_FAR = 10**9  # a day number after every date


def license_valid(state: LedgerState, cols: ShipmentColumns, idx: IntArray) -> IntArray:
    exporter_of = {e: i for i, e in enumerate(cols.exporters)}
    dest_of = {d: i for i, d in enumerate(cols.destinations)}
    # per reference: holder, country, valid from, valid to, revoked on
    table = np.full((len(cols.auth_refs), 5), -2, dtype=np.int64)
    for r, name in enumerate(cols.auth_refs):
        a = state.allocations.get(name)
        if a is None or a.holder is None:
            continue
        table[r] = (exporter_of.get(a.holder, -3), dest_of.get(a.country, -3),
                    days_since_epoch(a.valid_from),
                    _FAR if a.valid_to is None else days_since_epoch(a.valid_to),
                    _FAR if a.revoked_on is None else days_since_epoch(a.revoked_on))
    t = table[cols.auth_ref[idx]]
    day = cols.day[idx]
    ok = ((t[:, 0] == cols.exporter[idx]) & (t[:, 1] == cols.destination[idx])
          & (day >= t[:, 2]) & (day <= t[:, 3]) & (day < t[:, 4]))
    valid: IntArray = ok.astype(np.int64)
    return valid


def veu_valid(state: LedgerState, cols: ShipmentColumns, idx: IntArray) -> IntArray:
    """Per VEU and per stretch between its amendments' effective dates, the version
    in force (``VeuRow.version_on``) decides its rows."""
    out = np.zeros(len(idx), dtype=np.int64)
    refs, day, dest = cols.auth_ref[idx], cols.day[idx], cols.destination[idx]
    for r in np.unique(refs):
        v = state.veus.get(cols.auth_refs[int(r)])
        if v is None:
            continue
        mine = np.flatnonzero(refs == r)
        cuts = sorted({days_since_epoch(x.effective) for x in v.versions[1:]})
        stretch = np.searchsorted(np.array(cuts, np.int64), day[mine], side="right")
        for s in np.unique(stretch):
            rows = mine[stretch == s]
            version = v.version_on(day_of(cuts[s - 1]) if s else dt.date.min)
            covered = [i for i, d in enumerate(cols.destinations)
                       if d in (version.covered_countries or [])]
            end = _FAR if version.valid_to is None else days_since_epoch(version.valid_to)
            revoked = _FAR if v.revoked_on is None else days_since_epoch(v.revoked_on)
            ok = (np.isin(dest[rows], covered) & (day[rows] >= days_since_epoch(v.valid_from))
                  & (day[rows] <= end) & (day[rows] < revoked))
            out[rows] = ok
    return out


class RowChecks:
    """Rows' license/VEU checks (``row_check``), each computed once per distinct
    (kind, reference, exporter, destination, ship date): all that a check reads of
    its row. Both lanes and every printed form of a change share them."""

    def __init__(self, state: LedgerState, cols: ShipmentColumns):
        self.state, self.cols = state, cols
        self.known: dict[tuple[int, ...], AuthorizationCheck] = {}

    def fill_detail(self, i: int, detail: str) -> str:
        """A group's detail with row ``i``'s own reference and check failure reason."""
        if "\x00" not in detail:
            return detail
        return self.fill_details(np.array([i], dtype=np.int64), [detail])[0]

    def fill_details(self, rows: IntArray, details: Sequence[str]) -> list[str]:
        """``fill_detail`` of each of ``rows`` (details that name the row's check)."""
        c, known = self.cols, self.known
        out = []
        for i, key, detail in zip(rows.tolist(), zip(
                c.auth_kind[rows].tolist(), c.auth_ref[rows].tolist(),
                c.exporter[rows].tolist(), c.destination[rows].tolist(),
                c.day[rows].tolist(), strict=True), details, strict=True):
            check = known.get(key)
            if check is None:
                check = known[key] = row_check(self.state, c, i)
            out.append(detail.replace(REF, check.ref).replace(REASON, check.reason))
        return out


def row_check(state: LedgerState, cols: ShipmentColumns, i: int) -> AuthorizationCheck:
    """Row ``i``'s license or VEU check (``positions.authorization_checks``)."""
    kind = cols.auth_kinds[int(cols.auth_kind[i])]
    ref = cols.auth_refs[int(cols.auth_ref[i])]
    dest, day = cols.destinations[int(cols.destination[i])], day_of(cols.day[i])
    if kind == "license":
        a = state.allocations.get(ref)
        return license_check(
            ref, exists=a is not None, country=a.country if a else None,
            holder=a.holder if a else None, valid_from=a.valid_from if a else None,
            valid_to=a.valid_to if a else None, revoked_on=a.revoked_on if a else None,
            exporter_id=cols.exporters[int(cols.exporter[i])], destination=dest,
            ship_date=day)
    _lic, veu = authorization_checks(state, row_at(cols, i))
    assert veu is not None
    return veu


@dataclass(frozen=True)
class Days:
    """Per distinct ship day, what one lane's revision says about it."""

    #: index into ``rules`` (-1: no revision)
    rule: IntArray
    #: rule and dated period; for no revision, the day itself (its detail names it)
    key: IntArray
    #: inside the revision's tier-2 cap period (or it has none)
    in_period: BoolArray
    #: the revision's LPP limit (-1: none)
    lpp_limit: IntArray
    year: IntArray
    rules: list[RuleBook]


def lane_days(lane: Lane, days: IntArray) -> Days:
    rules: list[RuleBook] = []
    ids: dict[int, int] = {}
    found: list[tuple[int, int, bool, int, int]] = []
    for n, d in enumerate(days.tolist()):
        day = day_of(d)
        book = lane.rule_at(day)
        if book is None:  # the no-rule detail names the day: a key of its own
            found.append((-1, -1 - n, True, -1, day.year))
            continue
        r = ids.setdefault(id(book), len(rules))
        if r == len(rules):
            rules.append(book)
        period, lpp = book.cap_period(), book.lpp_limit()
        found.append((r, r * 1_000_000 + book.dated_period(day),
                      period is None or period.contains(day), -1 if lpp is None else lpp,
                      day.year))
    rule, key, in_period, limit, year = (list(c) for c in zip(*found, strict=True)) \
        if found else ([], [], [], [], [])
    return Days(np.array(rule, np.int64), np.array(key, np.int64),
                np.array(in_period, bool), np.array(limit, np.int64),
                np.array(year, np.int64), rules)


@dataclass(frozen=True)
class Groups:
    """Each row's treatment group under one lane, and the groups' treatments."""

    of_row: IntArray
    treatments: list[Treatment]
    bucket: IntArray
    flag: IntArray
    #: the group's destination is tier 2 under a revision with a cap period
    tier2: BoolArray


#: a group's treatment by what decides it, shared by the two lanes (a revision in
#: force under the timeline lane is often the one the other lane names)
@dataclass
class Memo:
    """Shared by the two lanes (a revision in force under the timeline lane is often
    the one the other lane names): a group's (treatment, tier 2 under a revision with
    a cap period) by what decides it; and the tier-2 part by (revision, dated period,
    destination), on which alone it depends (tiers change only with the groups, whose
    change dates cut the dated periods)."""

    treatments: dict[tuple[int, ...], tuple[Treatment, bool]] = field(default_factory=dict)
    tier2: dict[tuple[int, int, int], bool] = field(default_factory=dict)


def classify_groups(cols: ShipmentColumns, checks: Checks, days: Days,
                    day_index: IntArray, row_kind: IntArray, memo: Memo) -> Groups:
    """Groups of rows alike in the lane's revision and dated period and in their kind
    (``row_kinds``), each classified once."""
    group, first = group_codes(days.key[day_index], row_kind)
    found = [classify_row(cols, checks, days, int(f), int(day_index[f]), memo)
             for f in first]
    treatments = [t for t, _ in found]
    bucket = np.array([BUCKETS.index(t.bucket) for t in treatments], dtype=np.int64)
    flag = np.array([FLAGS.index(t.flag) for t in treatments], dtype=np.int64)
    return Groups(group, treatments, bucket, flag, np.array([t2 for _, t2 in found], bool))


def classify_row(cols: ShipmentColumns, checks: Checks, days: Days, i: int, d: int,
                 memo: Memo) -> tuple[Treatment, bool]:
    """(treatment, tier 2 under a revision with a cap period) of row ``i``."""
    r = int(days.rule[d])
    if r < 0:
        return no_rule_treatment(day_of(cols.day[i])), False
    rule = days.rules[r]
    key = (id(rule), int(days.key[d]) - r * 1_000_000, int(cols.destination[i]),
           int(cols.auth_kind[i]), int(cols.product[i]), int(cols.tpp_per_unit[i]),
           int(cols.die_area[i]), int(checks.license[i]), int(checks.veu[i]))
    found = memo.treatments.get(key)
    if found is None:
        f = fields_at(cols, i)
        lic, veu = (Checks.stand_in(int(c)) for c in (checks.license[i], checks.veu[i]))
        tier_key = (id(rule), key[1], key[2])
        tier2 = memo.tier2.get(tier_key)
        if tier2 is None:
            tier2 = memo.tier2[tier_key] = (rule.tier_of(f.destination, f.ship_date) == 2
                                            and rule.cap_period() is not None)
        found = memo.treatments[key] = (classify(f, rule, license=lic, veu=veu), tier2)
    return found


def row_kinds(cols: ShipmentColumns, checks: Checks) -> IntArray:
    """Per row, the code of what decides its treatment besides the lane's revision
    and dated period (the same for both lanes), in the order of these columns."""
    kind, _ = group_codes(cols.destination, cols.auth_kind, cols.product,
                          cols.tpp_per_unit, cols.die_area, checks.license, checks.veu)
    return kind


# --- 2. LPP ----------------------------------------------------------------------------


def lpp_excess(cols: ShipmentColumns, bucket: IntArray, limit: IntArray,
               year: IntArray) -> IntArray:
    """Per row, the part of an LPP shipment over its consignee's yearly limit (0 for
    others): earlier-dated LPP shipments of the consignee and year first, ties in
    recorded order (the rows' own order)."""
    out = np.zeros(len(cols), dtype=np.int64)
    idx = np.flatnonzero(bucket == B_LPP)
    if not len(idx):
        return out
    idx = idx[sort_order(idx, year[idx], cols.consignee[idx])]
    tpp = cols.tpp[idx]
    before = run_cumsum(tpp, run_starts(cols.consignee[idx], year[idx])) - tpp
    out[idx] = np.clip(before + tpp - limit[idx], 0, tpp)
    return out


# --- 3. licenses -----------------------------------------------------------------------


@dataclass(frozen=True)
class LicenseRun:
    """Per row: the change of committed of a license shipment and its excess; per
    allocation change (``changes`` order): its change of committed."""

    row_delta: IntArray
    row_excess: IntArray
    change_delta: IntArray


def license_run(cols: ShipmentColumns, bucket: IntArray, counts: BoolArray,
                changes: list[AllocationChange]) -> LicenseRun:
    rows = np.flatnonzero(bucket == B_LICENSE)
    lic_changes = [i for i, ch in enumerate(changes) if ch.allocation.is_license]
    names = sorted({changes[i].allocation.allocation_id for i in lic_changes}
                   | {cols.auth_refs[int(r)] for r in np.unique(cols.auth_ref[rows])})
    code = {n: i for i, n in enumerate(names)}
    ref_code = np.array([code.get(n, -1) for n in cols.auth_refs], dtype=np.int64)
    nc = len(lic_changes)
    lic = np.concatenate([np.array([code[changes[i].allocation.allocation_id]
                                    for i in lic_changes], np.int64),
                          ref_code[cols.auth_ref[rows]]])
    day = np.concatenate([np.array([days_since_epoch(changes[i].day) for i in lic_changes],
                                   np.int64), cols.day[rows]])
    is_ship = np.concatenate([np.zeros(nc, np.int64), np.ones(len(rows), np.int64)])
    pos = np.concatenate([np.array([changes[i].position for i in lic_changes], np.int64),
                          cols.position[rows]])
    order = sort_order(pos, is_ship, day, lic)
    shipped = np.concatenate([np.zeros(nc, np.int64), cols.tpp[rows]])[order]
    counted = np.concatenate([np.zeros(nc, np.int64),
                              np.where(counts[rows], cols.tpp[rows], 0)])[order]
    amount = np.concatenate([np.array([changes[i].amount for i in lic_changes], np.int64),
                             np.zeros(len(rows), np.int64)])[order]
    active = np.concatenate([np.array([changes[i].kind != "end" for i in lic_changes], bool),
                             np.zeros(len(rows), bool)])[order]
    lic, is_ship = lic[order], is_ship[order]
    start = run_starts(lic)
    last = _last_change(is_ship == 0, start)
    held = np.where(active[last], amount[last], 0)
    shipped_after = run_cumsum(shipped, start)
    committed = run_cumsum(counted, start) + np.maximum(held - shipped_after, 0)
    delta = committed - np.where(start, 0, np.roll(committed, 1))
    excess = np.clip(shipped_after - held, 0, shipped)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    row_delta = np.zeros(len(cols), np.int64)
    row_excess = np.zeros(len(cols), np.int64)
    row_delta[rows] = delta[back[nc:]]
    row_excess[rows] = excess[back[nc:]]
    change_delta = np.zeros(len(changes), np.int64)
    change_delta[lic_changes] = delta[back[:nc]]
    return LicenseRun(row_delta, row_excess, change_delta)


def _last_change(is_change: BoolArray, start: BoolArray) -> IntArray:
    """Per item, the index of the latest change at or before it in its run; raises
    Unsupported for an item with none (a shipment before its license's grant)."""
    idx = np.arange(len(is_change))
    last = np.maximum.accumulate(np.where(is_change, idx, -1)) if len(idx) else idx
    run_first = np.maximum.accumulate(np.where(start, idx, 0)) if len(idx) else idx
    if np.any(last < run_first):
        raise Unsupported("a license shipment before any change of standing of its license")
    return last


# --- 4. countries ----------------------------------------------------------------------


@dataclass(frozen=True)
class CountryRun:
    """Per row: whether it is its country's first breach; per country: the position."""

    breach: BoolArray
    positions: list[LaneCountry]


def change_cap_deltas(changes: list[AllocationChange], capped: BoolArray,
                      country_of: dict[str, int]) -> IntArray:
    """Per change, what it adds to its country's cap (country-level allocations of a
    country with a cap)."""
    before: dict[str, int] = {}
    out = np.zeros(len(changes), dtype=np.int64)
    for i, ch in enumerate(changes):
        a = ch.allocation
        if a.is_license or not capped[country_of[a.country]]:
            continue
        out[i] = ch.amount - before.get(a.allocation_id, 0)
        before[a.allocation_id] = ch.amount
    return out


@dataclass(frozen=True)
class FoldOrder:
    """The items of the countries' folds (every allocation change, then every row: the
    stream's order) in fold order, (country, day, changes first, position): the same
    for both lanes, which differ only in what each item adds to committed and cap."""

    #: stream index of each item in fold order
    order: IntArray
    country: IntArray
    is_row: IntArray
    #: an item starts its country's run
    start: BoolArray
    #: the run of (country, day, is_row) each item is in, and whether it is its last
    run_id: IntArray
    last_of_run: BoolArray


def fold_order(cols: ShipmentColumns, row_country: IntArray,
               changes: list[AllocationChange], country_of: dict[str, int]) -> FoldOrder:
    country = np.concatenate([np.array([country_of[c.allocation.country] for c in changes],
                                       np.int64), row_country])
    day = np.concatenate([np.array([days_since_epoch(c.day) for c in changes], np.int64),
                          cols.day])
    is_row = np.concatenate([np.zeros(len(changes), np.int64), np.ones(len(cols), np.int64)])
    position = np.concatenate([np.array([c.position for c in changes], np.int64),
                               cols.position])
    order = sort_order(position, is_row, day, country)
    country, is_row = country[order], is_row[order]
    day_run = run_starts(country, day[order], is_row)
    last_of_run = np.append(day_run[1:], True) if len(day_run) else day_run
    return FoldOrder(order, country, is_row, run_starts(country), np.cumsum(day_run) - 1,
                     last_of_run)


@dataclass(frozen=True)
class Stream:
    """What every allocation change, then every row, adds to its country's committed
    and cap under one lane (items in the stream's order, as ``FoldOrder.order``
    indexes them)."""

    committed: IntArray
    cap: IntArray


def country_stream(row_delta: IntArray, change_delta: IntArray, cap_delta: IntArray
                   ) -> Stream:
    return Stream(np.concatenate([change_delta, row_delta]),
                  np.concatenate([cap_delta, np.zeros(len(row_delta), np.int64)]))


def first_breaches(f: FoldOrder, s: Stream, base_cap: IntArray, capped: BoolArray
                   ) -> dict[int, tuple[int, int, int]]:
    """Per country with a breach: (stream index of the item it names, committed, cap).

    The breach comes after the first item where committed exceeds the cap: a
    shipment, or the last change of a day whose changes include one that worsened the
    position (then it names the latest recorded of those)."""
    order, country, is_row = f.order, f.country, f.is_row
    added, cap_added = s.committed[order], s.cap[order]
    committed = run_cumsum(added, f.start)
    cap = base_cap[country] + run_cumsum(cap_added, f.start)
    over = (committed > cap) & capped[country]
    worse = (added - cap_added > 0) & (is_row == 0)
    worsened_run = np.zeros(int(f.run_id[-1]) + 1 if len(f.run_id) else 0, dtype=bool)
    np.logical_or.at(worsened_run, f.run_id, worse)
    at_change = (is_row == 0) & f.last_of_run & worsened_run[f.run_id]
    hits = np.flatnonzero(over & ((is_row == 1) | at_change))
    firsts, at = np.unique(country[hits], return_index=True)
    out: dict[int, tuple[int, int, int]] = {}
    for c, i in zip(firsts, at, strict=True):
        h = named = int(hits[i])
        while is_row[named] == 0 and not worse[named]:  # the latest worsening change
            named -= 1
        out[int(c)] = (int(order[named]), int(committed[h]), int(cap[h]))
    return out


# --- a lane ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneColumns:
    """One lane's outcome per row (what ``ShipmentOutcome`` holds) and per country."""

    days: Days
    groups: Groups
    #: the treatment after the cap-period check: replaced for shipments (to the cap
    #: or under a license) of a tier-2 country outside the revision's cap period
    outside: BoolArray
    bucket: IntArray
    flag: IntArray
    flag_tpp: IntArray
    delta: IntArray
    breach: BoolArray
    positions: list[LaneCountry]


@dataclass(frozen=True)
class Ledgerwide:
    """What both lanes share: the rows shipped by ``to`` and where they go."""

    state: LedgerState
    cols: ShipmentColumns
    to: dt.date
    countries: list[str]
    country_of: dict[str, int]
    row_country: IntArray
    checks: Checks
    udays: IntArray
    day_index: IntArray
    #: per row, what decides its treatment besides the lane (``row_kinds``)
    row_kind: IntArray
    #: every country's allocation changes up to ``to``, country by country
    changes: list[AllocationChange]
    fold: FoldOrder


def run_lane(w: Ledgerwide, lane: Lane, memo: Memo) -> LaneColumns:
    days = lane_days(lane, w.udays)
    groups = classify_groups(w.cols, w.checks, days, w.day_index, w.row_kind, memo)
    bucket0 = groups.bucket[groups.of_row]
    outside_period = groups.tier2[groups.of_row] & ~days.in_period[w.day_index]
    lpp = lpp_excess(w.cols, bucket0, days.lpp_limit[w.day_index], days.year[w.day_index])
    changes = w.changes
    lic = license_run(w.cols, bucket0, ~outside_period, changes)
    rows = settle_rows(w.cols.tpp, bucket0, groups.flag[groups.of_row], outside_period, lpp,
                       lic)
    capped, base_cap = lane_caps(lane, w.countries, w.to)
    cap_delta = change_cap_deltas(changes, capped, w.country_of)
    stream = country_stream(rows.delta, lic.change_delta, cap_delta)
    breaches = first_breaches(w.fold, stream, base_cap, capped)
    breach = np.zeros(len(w.cols), dtype=bool)
    for at, _, _ in breaches.values():
        if at >= len(changes):
            breach[at - len(changes)] = True
    positions = lane_positions(w, lane, stream, rows, changes, breaches, base_cap, capped)
    return LaneColumns(days, groups, rows.outside, rows.bucket, rows.flag, rows.flag_tpp,
                       rows.delta, breach, positions)


@dataclass(frozen=True)
class Settled:
    outside: BoolArray
    bucket: IntArray
    flag: IntArray
    flag_tpp: IntArray
    delta: IntArray


def settle_rows(tpp: IntArray, bucket0: IntArray, flag0: IntArray, outside_period: BoolArray,
                lpp: IntArray, lic: LicenseRun) -> Settled:
    """Each row's bucket, flag, flagged TPP and change of committed (``_Fold._count``)."""
    outside = outside_period & ((bucket0 == B_CAP) | (bucket0 == B_LICENSE))
    bucket = np.where(outside, B_NONE, bucket0)
    flag = np.where(outside, 0, flag0)
    flag_tpp = np.where(flag != 0, tpp, 0)
    delta = np.where(bucket == B_CAP, tpp, 0)
    lpp_counts = (bucket0 == B_LPP) & (lpp > 0) & ~outside_period
    delta = np.where(lpp_counts, lpp, delta)
    flag = np.where(lpp_counts, F_LPP_EXCESS, flag)
    flag_tpp = np.where(lpp_counts, lpp, flag_tpp)
    delta = np.where(bucket0 == B_LICENSE, lic.row_delta, delta)
    over_license = (bucket == B_LICENSE) & (lic.row_excess > 0)
    flag = np.where(over_license, F_LICENSE_EXCESS, flag)
    flag_tpp = np.where(over_license, lic.row_excess, flag_tpp)
    return Settled(outside, bucket, flag, flag_tpp, delta)


def lane_caps(lane: Lane, countries: list[str], to: dt.date) -> tuple[BoolArray, IntArray]:
    """(has a cap, the revision's own cap) per country, from the lane's cap revision."""
    caps = [None if lane.cap_rule is None else lane.cap_rule.cap_for(c, to)
            for c in countries]
    return (np.array([c is not None for c in caps], dtype=bool),
            np.array([c or 0 for c in caps], dtype=np.int64))


def lane_positions(w: Ledgerwide, lane: Lane, s: Stream, rows: Settled,
                   changes: list[AllocationChange], breaches: dict[int, tuple[int, int, int]],
                   base_cap: IntArray, capped: BoolArray) -> list[LaneCountry]:
    n = len(w.countries)
    committed = np.zeros(n, np.int64)
    np.add.at(committed, w.fold.country, s.committed[w.fold.order])
    extra = np.zeros(n, np.int64)
    np.add.at(extra, w.fold.country, s.cap[w.fold.order])
    flagged = flag_totals(w.row_country, rows, n)
    out = []
    for c, country in enumerate(w.countries):
        cap = int(base_cap[c] + extra[c]) if capped[c] else None
        hit = breaches.get(c)
        breach = None if hit is None else breach_ref(w, changes, *hit)
        out.append(lane_country(lane.cap_rule, country, w.to, cap, int(committed[c]),
                                breach, flagged.get(c, {})))
    return out


def flag_totals(row_country: IntArray, rows: Settled, n: int
                ) -> dict[int, dict[str, FlagTotal]]:
    idx = np.flatnonzero(rows.flag != 0)
    key = row_country[idx] * len(FLAGS) + rows.flag[idx]
    count = np.bincount(key, minlength=n * len(FLAGS))
    tpp = np.zeros(n * len(FLAGS), np.int64)
    np.add.at(tpp, key, rows.flag_tpp[idx])
    out: dict[int, dict[str, FlagTotal]] = defaultdict(dict)
    for k in np.flatnonzero(count):
        c, f = divmod(int(k), len(FLAGS))
        flag = FLAGS[f]
        assert flag is not None
        out[c][flag.value] = FlagTotal(count=int(count[k]), tpp=int(tpp[k]))
    return {c: dict(sorted(v.items())) for c, v in out.items()}


_BREACH_TYPES: dict[str, Literal["allocation", "allocation-adjusted", "allocation-ended"]] = {
    "grant": "allocation", "adjust": "allocation-adjusted",
                 "end": "allocation-ended"}


def breach_ref(w: Ledgerwide, changes: list[AllocationChange], at: int, committed: int,
               cap: int) -> BreachRef:
    if at < len(changes):
        ch = changes[at]
        return BreachRef(type=_BREACH_TYPES[ch.kind], date=ch.day,
                         position=ch.position, allocation_id=ch.allocation.allocation_id,
                         committed_tpp=committed, cap_tpp=cap)
    i = at - len(changes)
    cols = w.cols
    return BreachRef(type="shipment", date=day_of(cols.day[i]), position=int(cols.position[i]),
                     exporter_id=cols.exporters[int(cols.exporter[i])],
                     shipment_ref=str(cols.shipment_ref[i]), committed_tpp=committed,
                     cap_tpp=cap)


def lane_country(cap_rule: RuleBook | None, country: str, to: dt.date, cap: int | None,
                 committed: int, breach: BreachRef | None,
                 flagged: dict[str, FlagTotal]) -> LaneCountry:
    """``_Fold.position`` of the replay's columns: status and remaining from the cap."""
    period = cap_period_of(cap_rule, country, to) if cap is not None else None
    status, cap, remaining = cap_standing(cap, period, to, committed)
    return LaneCountry(tier=None if cap_rule is None else cap_rule.tier_of(country, to),
                       cap_tpp=cap, committed_tpp=committed, remaining_tpp=remaining,
                       status=status, first_breach=breach, flagged=flagged)


# --- the shipment changes, built as they are read ---------------------------------------


class ChangeRows(Sequence[ShipmentChange]):
    """The shipments whose treatment differs between the lanes, in the result's order,
    built a slice at a time when read (a million-shipment replay has ~700,000)."""

    def __init__(self, w: Ledgerwide, a: LaneColumns, b: LaneColumns, idx: IntArray):
        self.w, self.a, self.b, self.idx = w, a, b, idx
        self.citations: dict[tuple[int, int, int], str] = {}
        self.checks = RowChecks(w.state, w.cols)
        self.fill_detail = self.checks.fill_detail

    def __len__(self) -> int:
        return len(self.idx)

    @overload
    def __getitem__(self, i: int) -> ShipmentChange: ...

    @overload
    def __getitem__(self, i: slice) -> list[ShipmentChange]: ...

    def __getitem__(self, i: int | slice) -> ShipmentChange | list[ShipmentChange]:
        if isinstance(i, slice):
            return self.build(self.idx[i])
        return self.build(self.idx[[i]])[0]

    def __iter__(self) -> Iterator[ShipmentChange]:
        for start in range(0, len(self.idx), 2000):
            yield from self.build(self.idx[start:start + 2000])

    def build(self, rows: IntArray) -> list[ShipmentChange]:
        c = self.w.cols
        under_a = self.treatments(self.a, rows)
        under_b = self.treatments(self.b, rows)
        return [ShipmentChange(c.exporters[e], str(ref), day_of(d), c.destinations[dest],
                               c.consignees[k], pos, tpp, ta, tb)
                for e, ref, d, dest, k, pos, tpp, ta, tb in zip(
                    c.exporter[rows].tolist(), c.shipment_ref[rows], c.day[rows].tolist(),
                    c.destination[rows].tolist(), c.consignee[rows].tolist(),
                    c.position[rows].tolist(), c.tpp[rows].tolist(), under_a, under_b,
                    strict=True)]

    def treatments(self, lane: LaneColumns, rows: IntArray, *, details: bool = True
                   ) -> list[LaneTreatment]:
        """The rows' treatments under ``lane`` (``details=False``: without the detail
        text, which alone may need a row's own license/VEU check)."""
        days = lane.days
        day_index = self.w.day_index[rows]
        out = []
        for i, rule_i, group, bucket, flag, flag_tpp, delta, breach, outside, d in zip(
                rows.tolist(),
                days.rule[day_index].tolist(), lane.groups.of_row[rows].tolist(),
                lane.bucket[rows].tolist(), lane.flag[rows].tolist(),
                lane.flag_tpp[rows].tolist(), lane.delta[rows].tolist(),
                lane.breach[rows].tolist(), lane.outside[rows].tolist(),
                self.w.cols.day[rows].tolist(), strict=True):
            rule = None if rule_i < 0 else days.rules[rule_i]
            t = lane.groups.treatments[group]
            word, flag_value = BUCKETS[bucket].value, FLAGS[flag]
            label = _BUCKET_WORDS[word]
            if flag_value is not None:
                label += f" ({flag_value.value})"
            if breach:
                label += ", first breach"
            out.append(LaneTreatment(
                rule=None if rule is None else rule.id, treatment=label, bucket=word,
                flag=None if flag_value is None else flag_value.value, flag_tpp=flag_tpp,
                counted_tpp=delta, breach=breach, clause=t.clause,
                citation=self.citation(lane, rule_i, group),
                detail=("" if not details else outside_detail(rule, d) if outside
                        else self.fill_detail(i, t.detail))))
        return out

    def citation(self, lane: LaneColumns, rule_i: int, group: int) -> str:
        key = (int(lane is self.a), rule_i, group)
        text = self.citations.get(key)
        if text is None:
            clause = lane.groups.treatments[group].clause
            text = self.citations[key] = (NO_RULE_CITATION if rule_i < 0 else
                                          lane.days.rules[rule_i].clause(clause).citation)
        return text


NO_RULE_CITATION = "no rule revision in force"


def outside_detail(rule: RuleBook | None, days: int) -> str:
    period = None if rule is None else rule.cap_period()
    assert period is not None
    return (f"shipped {day_of(days)}, outside the cap period "
            f"{period.start}..{period.end}")


# --- the replay ------------------------------------------------------------------------


def replay_columns(
    state: LedgerState,
    cols: ShipmentColumns,
    rule_id: str,
    against: str = "in-force",
    *,
    window_from: dt.date | None = None,
    window_to: dt.date | None = None,
    known_at: int | None = None,
    drafts: Mapping[str, RuleBook] | None = None,
) -> ReplayResult:
    """``projections.replay.replay`` of ``state`` (allocations, VEUs, rules) and the
    live shipments ``cols``; the same result. Raises Unsupported for a ledger it does
    not model, UnknownRule and ValidationError as ``replay`` does."""
    if window_from is not None and window_to is not None and window_from > window_to:
        raise ValidationError(f"--from {window_from} is after --to {window_to}",
                              field="from", value=window_from.isoformat())
    if window_to is None and len(cols):
        window_to = day_of(cols.day[-1])
    if window_from is None and len(cols):
        window_from = day_of(cols.day[0])
    to = window_to or dt.date.min
    lane_a = make_lane(state, rule_id, to, drafts)
    lane_b = make_lane(state, against, to, drafts)
    w = ledgerwide(state, cols, to, window_to is not None)
    memo = Memo()
    a, b = run_lane(w, lane_a, memo), run_lane(w, lane_b, memo)
    in_window = (w.cols.day >= days_since_epoch(window_from) if window_from is not None
                 else np.zeros(len(w.cols), dtype=bool))
    changed = in_window & _differs(a, b)
    idx = np.flatnonzero(changed)
    idx = idx[np.lexsort((w.cols.shipment_ref[idx], w.cols.exporter[idx], w.cols.day[idx]))]
    comparisons = [_compare(c, pa, pb) for c, pa, pb in
                   zip(w.countries, a.positions, b.positions, strict=True)]
    totals = _totals(w, in_window, changed, comparisons)
    position = state.position if known_at is None else min(known_at, state.position)
    return ReplayResult.model_construct(
        rule=lane_a.label, against=lane_b.label,
        against_caps_from=(lane_b.cap_rule.id if lane_b.timeline and lane_b.cap_rule
                           else None),
        window_from=window_from, window_to=window_to, known_at=known_at,
        computed_at_position=position,
        revisions_used={"rule": _used(a, w, in_window), "against": _used(b, w, in_window)},
        countries=comparisons, changes=_as_list(ChangeRows(w, a, b, idx)), totals=totals)


def _as_list(changes: ChangeRows) -> list[ShipmentChange]:
    """The lazy changes where the result's field says list: everything that reads
    ``ReplayResult.changes`` (len, slices, iteration, the JSON and CSV writers) uses
    only what a Sequence offers."""
    return changes  # type: ignore[return-value]


def ledgerwide(state: LedgerState, cols: ShipmentColumns, to: dt.date,
               dated: bool) -> Ledgerwide:
    """The shared inputs: countries with activity (every live shipment's destination
    and every allocation's country; none without a date), the rows shipped by ``to``."""
    countries: list[str] = []
    if dated:
        shipped = {cols.destinations[int(d)] for d in
                   np.flatnonzero(np.bincount(cols.destination, minlength=1))}
        allocated = {c for c, ids in state.allocations_by_country.items() if ids}
        countries = sorted(shipped | allocated)
    country_of = {c: i for i, c in enumerate(countries)}
    cols = cols.head(int(np.searchsorted(cols.day, days_since_epoch(to), side="right")))
    dest_country = np.array([country_of.get(d, -1) for d in cols.destinations], np.int64)
    row_country = dest_country[cols.destination] if len(cols) else cols.destination
    # the rows are in date order: each distinct day is a run
    new_day = run_starts(cols.day)
    checks = all_checks(state, cols)
    changes = [ch for c in countries for ch in allocation_changes(state, c, to)]
    return Ledgerwide(state, cols, to, countries, country_of, row_country, checks,
                      cols.day[new_day], np.cumsum(new_day) - 1, row_kinds(cols, checks),
                      changes, fold_order(cols, row_country, changes, country_of))


def _differs(a: LaneColumns, b: LaneColumns) -> BoolArray:
    """Rows whose (bucket, flag, flagged TPP, counted TPP, breach) differ."""
    out: BoolArray = ((a.bucket != b.bucket) | (a.flag != b.flag) | (a.flag_tpp != b.flag_tpp)
                      | (a.delta != b.delta) | (a.breach != b.breach))
    return out


def _compare(country: str, pa: LaneCountry, pb: LaneCountry) -> CountryComparison:
    remaining_diff = (None if pa.remaining_tpp is None or pb.remaining_tpp is None
                      else pa.remaining_tpp - pb.remaining_tpp)
    return CountryComparison(
        country=country, rule=pa, against=pb,
        committed_difference_tpp=pa.committed_tpp - pb.committed_tpp,
        remaining_difference_tpp=remaining_diff, status_changed=pa.status != pb.status)


def _used(lane: LaneColumns, w: Ledgerwide, in_window: BoolArray) -> dict[str, int]:
    rule = lane.days.rule[w.day_index[in_window]]
    counts = np.bincount(rule + 1, minlength=len(lane.days.rules) + 1)
    used: dict[str, int] = defaultdict(int)
    for i, n in enumerate(counts.tolist()):
        if n:
            used["none" if i == 0 else lane.days.rules[i - 1].id] += n
    return dict(sorted(used.items()))


def _totals(w: Ledgerwide, in_window: BoolArray, changed: BoolArray,
            comparisons: list[CountryComparison]) -> Totals:
    return Totals(
        shipments_in_window=int(in_window.sum()),
        tpp_in_window=int(w.cols.tpp[in_window].sum()),
        shipments_changed=int(changed.sum()), tpp_changed=int(w.cols.tpp[changed].sum()),
        countries=len(comparisons),
        countries_status_changed=[c.country for c in comparisons if c.status_changed],
        over_cap_under_rule=[c.country for c in comparisons if c.rule.status == "over-cap"],
        over_cap_under_against=[c.country for c in comparisons
                                if c.against.status == "over-cap"],
        committed_under_rule_tpp=sum(c.rule.committed_tpp for c in comparisons),
        committed_under_against_tpp=sum(c.against.committed_tpp for c in comparisons),
    )
