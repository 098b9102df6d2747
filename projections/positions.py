"""A country's quota position on a date under a rule revision: the quota fold.

The position is a fold over the country's dated items by the day rule (README,
"Position"): each day, first the allocations' changes of standing (starts,
adjustments, revocations, expiries; all at the start of the day, together), then the
shipments of the day in recorded order. Each shipment is classified by
``ledger.counting``; running totals settle the amount-dependent parts (LPP over the
consignee's yearly limit, license past its amount). The fold yields cap, committed,
remaining, status, the first breach, the flags, and, on request, every contribution
with the clause that made it count.

    cap       = the revision's cap for the country + country-level allocations in force
    committed = per license: shipped under it inside the cap period
                             + while in force, max(amount - everything shipped under it, 0)
              + shipments counted against the cap outside licenses (incl. LPP excess)
    remaining = cap - committed

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ledger.counting import (
    AuthorizationCheck,
    Bucket,
    Flag,
    Treatment,
    classify,
    license_check,
    license_excess,
    lpp_excess,
    veu_check,
)
from ledger.rulebook import H100_TPP, Period, RuleBook
from projections.state import AllocationRow, LedgerState, ShipmentRow

#: outside-cap-period: the revision caps the country over a period (the Diffusion
#: rule's 2025-01-01..2027-12-31) that does not contain the date asked about, so there
#: is no cap to be within or over on that date
Status = Literal["no-cap", "within-cap", "over-cap", "outside-cap-period"]


class FlagTotal(BaseModel):
    model_config = ConfigDict(frozen=True)
    count: int
    tpp: int


class BreachRef(BaseModel):
    """The event after which committed first exceeded the cap."""

    model_config = ConfigDict(frozen=True)
    type: Literal["shipment", "allocation", "allocation-adjusted", "allocation-ended"]
    date: dt.date
    position: int
    exporter_id: str | None = None
    shipment_ref: str | None = None
    allocation_id: str | None = None
    committed_tpp: int
    cap_tpp: int


class Contribution(BaseModel):
    """One item of the fold and what it did to the position (for --explain)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["shipment", "license", "country-allocation"]
    identity: str
    date: dt.date
    position: int
    exporter_id: str | None = None
    consignee_id: str | None = None
    tpp: int
    committed_delta: int
    cap_delta: int = 0
    bucket: str
    flag: str | None = None
    clause: str
    citation: str
    detail: str
    #: the instrument the clause comes from (None: the revision itself, or none)
    instrument: str | None = None


class Position(BaseModel):
    """A country's quota position (the ``--json`` shape of ``ledger quota``)."""

    model_config = ConfigDict(frozen=True)
    country: str
    as_of: dt.date
    known_at: int | None
    computed_at_position: int
    rule: str | None
    tier: int | None
    cap_tpp: int | None
    committed_tpp: int
    remaining_tpp: int | None
    status: Status
    #: the period the country's cap runs over (None: no cap, or a cap without one)
    cap_period: Period | None = None
    first_breach: BreachRef | None
    flagged: dict[str, FlagTotal]
    breakdown: dict[str, int]
    shipments_counted: int
    contributions: list[Contribution] | None = None

    def h100(self, tpp: int | None) -> float | None:
        return None if tpp is None else tpp / H100_TPP


# --- classification against the known state --------------------------------------------


def treat(state: LedgerState, row: ShipmentRow, rule: RuleBook) -> Treatment:
    """Classify one shipment under ``rule`` with its license/VEU as known in ``state``."""
    lic, veu = authorization_checks(state, row)
    return classify(row.fields, rule, license=lic, veu=veu)


def authorization_checks(state: LedgerState, row: ShipmentRow
                         ) -> tuple[AuthorizationCheck | None, AuthorizationCheck | None]:
    """(license check, VEU check) of the authorization the shipment names, as known in
    ``state`` on its ship date; None for the kind it does not name. They do not depend
    on the rule revision, so a replay computes them once for both lanes."""
    f = row.fields
    auth = f.authorization
    lic: AuthorizationCheck | None = None
    veu: AuthorizationCheck | None = None
    if auth.kind == "license":
        assert auth.ref is not None
        a = state.allocations.get(auth.ref)
        lic = license_check(
            auth.ref, exists=a is not None,
            country=a.country if a else None, holder=a.holder if a else None,
            valid_from=a.valid_from if a else None, valid_to=a.valid_to if a else None,
            revoked_on=a.revoked_on if a else None,
            exporter_id=row.exporter_id, destination=f.destination, ship_date=f.ship_date,
        )
    elif auth.kind == "veu":
        assert auth.ref is not None
        v = state.veus.get(auth.ref)
        version = v.version_on(f.ship_date) if v else None
        veu = veu_check(
            auth.ref, exists=v is not None,
            covered_countries=version.covered_countries if version else None,
            valid_from=v.valid_from if v else None,
            valid_to=version.valid_to if version else None,
            revoked_on=v.revoked_on if v else None,
            destination=f.destination, ship_date=f.ship_date,
        )
    return lic, veu


class Treater:
    """``treat`` under one revision, memoized: ``classify`` reads only the destination,
    the product, its TPP per unit and declared die area, the authorization kind, the
    license/VEU checks and the revision's dated period of the ship date (the key of
    ``projections.replay.classify_all``), so shipments alike in these share one
    Treatment. A country's fold classifies far fewer combinations than shipments."""

    def __init__(self, state: LedgerState, rule: RuleBook):
        self.state = state
        self.rule = rule
        self.memo: dict[tuple[object, ...], Treatment] = {}

    def __call__(self, row: ShipmentRow) -> Treatment:
        f = row.fields
        kind = f.authorization.kind
        lic, veu = (authorization_checks(self.state, row) if kind in ("license", "veu")
                    else (None, None))
        key = (self.rule.dated_period(f.ship_date), f.destination, kind, f.product_id,
               f.tpp_per_unit, f.die_area_mm2, lic, veu)
        t = self.memo.get(key)
        if t is None:
            t = self.memo[key] = classify(f, self.rule, license=lic, veu=veu)
        return t


def lpp_excesses(state: LedgerState, rule: RuleBook, consignees: Iterable[str],
                 as_of: dt.date, treater: Treater | None = None
                 ) -> dict[tuple[str, str], int]:
    """Per LPP shipment of these consignees, the part over the calendar-year limit.

    The excess of a shipment depends only on the consignee's earlier-dated LPP
    shipments of the same year (ties in recorded order), so it is the same for every
    as-of date on which the shipment is counted."""
    limit = rule.lpp_limit()
    out: dict[tuple[str, str], int] = {}
    if limit is None:
        return out
    treated = treater or Treater(state, rule)
    for consignee in consignees:
        per_year: dict[int, list[ShipmentRow]] = defaultdict(list)
        for key in state.by_consignee.get(consignee, ()):
            row = state.shipments[key]
            if row.voided or row.fields.ship_date > as_of:
                continue
            if row.fields.authorization.kind != "lpp":
                continue
            if treated(row).bucket is not Bucket.LPP:
                continue
            per_year[row.fields.ship_date.year].append(row)
        for rows in per_year.values():
            total = 0
            for row in sorted(rows, key=lambda r: (r.fields.ship_date, r.position)):
                out[row.key] = lpp_excess(total, row.tpp, limit)
                total += row.tpp
    return out


# --- the fold ------------------------------------------------------------------------------
#
# The day rule: grants, adjustments, revocations and expiries take effect at the START
# of their effective day (an expiry at the start of the day after ``valid_to``), before
# any shipment dated that day; the changes of one day take effect together. Recorded
# order breaks ties only between shipments of the same day.


@dataclass
class _License:
    """A license's running standing in the fold."""

    amount: int = 0
    active: bool = False
    #: everything shipped under it: what used its amount
    shipped: int = 0
    #: what shipped under it inside the cap period: what reached the cap
    counted: int = 0

    @property
    def committed(self) -> int:
        """What shipped under it inside the cap period, plus, while in force, what it
        can still ship."""
        unused = max(self.amount - self.shipped, 0) if self.active else 0
        return self.counted + unused


ChangeKind = Literal["grant", "adjust", "end"]


@dataclass(frozen=True)
class AllocationChange:
    """An allocation's standing from the start of ``day``: its start, an adjustment
    taking effect, or its end (expiry or revocation)."""

    day: dt.date
    #: the recorded position of the event behind it (an expiry: the grant's)
    position: int
    kind: ChangeKind
    allocation: AllocationRow
    #: the amount in force from ``day`` (0 once ended)
    amount: int


def allocation_changes(state: LedgerState, country: str, as_of: dt.date
                       ) -> list[AllocationChange]:
    """Every change of standing of ``country``'s allocations up to ``as_of``, in
    (day, recorded position) order."""
    out: list[AllocationChange] = []
    for alloc_id in state.allocations_by_country.get(country, ()):
        a = state.allocations[alloc_id]
        for day in a.change_days(as_of):
            out.append(_change_on(a, day))
    out.sort(key=lambda ch: (ch.day, ch.position))
    return out


def _change_on(a: AllocationRow, day: dt.date) -> AllocationChange:
    if not a.in_force_on(day):
        position = a.revoked[1] if a.revoked is not None and a.revoked[0] == day else a.position
        return AllocationChange(day, position, "end", a, 0)
    if day == a.valid_from:
        return AllocationChange(day, a.position, "grant", a, a.amount_on(day))
    position = max(pos for eff, pos, _ in a.amounts[1:] if max(eff, a.valid_from) == day)
    return AllocationChange(day, position, "adjust", a, a.amount_on(day))


#: a function giving the revision that applies to a date (None: no revision)
RuleAt = Callable[[dt.date], "RuleBook | None"]


def no_rule_treatment(day: dt.date) -> Treatment:
    """How a shipment counts on a date when no revision applies: against nothing."""
    return Treatment(Bucket.NONE, None, "no-rule", f"no rule revision in force on {day}")


NO_RULE_CITATION = "no rule revision in force"


def _citation(rule: RuleBook | None, clause: str) -> str:
    return NO_RULE_CITATION if rule is None else rule.clause(clause).citation


def _instrument(rule: RuleBook | None, clause: str) -> str | None:
    return None if rule is None else rule.clause(clause).instrument


@dataclass(frozen=True)
class ShipmentOutcome:
    """What the fold did with one shipment: the replay compares these per shipment."""

    row: ShipmentRow
    #: the revision the shipment was treated under (None: none in force)
    rule: RuleBook | None
    #: the treatment after the cap-period check (a shipment outside the period: none)
    treatment: Treatment
    #: the flag after the amount-dependent settlement (LPP or license excess)
    flag: Flag | None
    flag_tpp: int
    committed_delta: int
    committed_after: int
    #: True if this shipment is the country's first breach
    breach: bool


def country_position(
    state: LedgerState,
    country: str,
    as_of: dt.date,
    rule: RuleBook | None,
    *,
    known_at: int | None = None,
    explain: bool = False,
) -> Position:
    """The position of ``country`` on ``as_of`` under ``rule`` (None: no revision)."""
    if rule is None:
        return _no_rule_position(state, country, as_of, known_at)
    treatments, lpp_excess_by_key = country_inputs(state, country, as_of, rule)
    return fold_country(state, country, as_of, rule_at=lambda _day: rule, cap_rule=rule,
                        treatments=treatments, lpp_excess_by_key=lpp_excess_by_key,
                        known_at=known_at, explain=explain)


def country_inputs(state: LedgerState, country: str, as_of: dt.date, rule: RuleBook
                   ) -> tuple[dict[tuple[str, str], Treatment], dict[tuple[str, str], int]]:
    """(treatments, LPP excess by shipment) of ``country``'s live shipments dated up to
    ``as_of`` under ``rule``: what ``fold_country`` needs besides the state."""
    rows = [state.shipments[k] for k in state.by_country.get(country, ())]
    rows = [r for r in rows if not r.voided and r.fields.ship_date <= as_of]
    treated = Treater(state, rule)
    treatments = {row.key: treated(row) for row in rows}
    lpp_consignees = {r.fields.consignee_id for r in rows
                      if treatments[r.key].bucket is Bucket.LPP}
    return treatments, lpp_excesses(state, rule, lpp_consignees, as_of, treated)


def position_days(state: LedgerState, country: str, rule: RuleBook,
                  regimes: list[dt.date]) -> Iterator[tuple[dt.date, dt.date, Position]]:
    """(regime, day, position): ``country``'s position under ``rule`` before anything
    happens (``dt.date.min``) and at the end of every day on which an allocation
    changes standing or a shipment is dated, in date order, by the steps of
    ``fold_country``, for as-of dates in each regime: the as-of dates from a regime's
    day to the next share the country's cap, tier and cap-period standing (they follow
    the as-of date). One fold per distinct cap.

    The position on such an as-of date is the one of the last such day on or before
    it (only ``as_of`` differs): ``projections.position_index`` stores these."""
    treatments, lpp_excess_by_key = country_inputs(state, country, dt.date.max, rule)
    changes = allocation_changes(state, country, dt.date.max)
    rows = [state.shipments[k] for k in state.by_country.get(country, ())]
    rows = sorted((r for r in rows if not r.voided),
                  key=lambda r: (r.fields.ship_date, r.position))
    days = sorted({ch.day for ch in changes} | {r.fields.ship_date for r in rows})
    by_cap: dict[int | None, list[dt.date]] = defaultdict(list)
    for regime in regimes:
        by_cap[rule.cap_for(country, regime)].append(regime)
    for base_cap, group in by_cap.items():
        run = _Fold(state, base_cap, lambda _day: rule, treatments, lpp_excess_by_key,
                    False, None)

        yield from _regime_positions(run, country, rule, group, dt.date.min)
        i = j = 0
        for day in days:
            i = run.changes_until(changes, i, day)
            while j < len(rows) and rows[j].fields.ship_date == day:
                run.shipment(rows[j])
                j += 1
            yield from _regime_positions(run, country, rule, group, day)


def _regime_positions(run: _Fold, country: str, rule: RuleBook, group: list[dt.date],
                      day: dt.date) -> Iterator[tuple[dt.date, dt.date, Position]]:
    """The fold's position now, as of each regime's day: its tier and period standing
    (the index stamps the real as_of)."""
    for regime in group:
        yield regime, day, run.position(country, regime, known_at=None, cap_rule=rule,
                                        rule_label=None)


def fold_country(
    state: LedgerState,
    country: str,
    as_of: dt.date,
    *,
    rule_at: RuleAt,
    cap_rule: RuleBook | None,
    treatments: Mapping[tuple[str, str], Treatment],
    lpp_excess_by_key: Mapping[tuple[str, str], int],
    known_at: int | None = None,
    explain: bool = False,
    rule_label: str | None = None,
    outcomes: list[ShipmentOutcome] | None = None,
) -> Position:
    """The quota fold of one country, shared by ``country_position`` and the replay.

    ``rule_at`` gives the revision each dated item is treated under (one revision for
    a position or a counterfactual; the revision in force on each date for the
    replay's in-force timeline); ``cap_rule`` gives the cap and tier.
    ``treatments`` must hold every live shipment of the country shipped by ``as_of``
    (classified under ``rule_at`` of its ship date) and ``lpp_excess_by_key`` the part
    of each LPP shipment over its consignee's yearly limit: the caller computes both
    so a replay can compute them once for all countries. When ``outcomes`` is a list,
    one ``ShipmentOutcome`` per shipment is appended to it, in fold order.

    Steps: the allocations' changes of standing and the shipments, each in date
    order, are merged by the day rule (a day's changes first, together; then its
    shipments in recorded order); ``_Fold`` applies each and watches for the breach.
    """
    changes = allocation_changes(state, country, as_of)
    rows = [state.shipments[k] for k in state.by_country.get(country, ())]
    # a key of plain tuples sorts far faster than comparing rows
    rows = sorted((r for r in rows if not r.voided and r.fields.ship_date <= as_of),
                  key=lambda r: (r.fields.ship_date, r.position))
    base_cap = None if cap_rule is None else cap_rule.cap_for(country, as_of)
    run = _Fold(state, base_cap, rule_at, treatments, lpp_excess_by_key, explain, outcomes)
    i = 0
    for row in rows:
        i = run.changes_until(changes, i, row.fields.ship_date)
        run.shipment(row)
    run.changes_until(changes, i, as_of)
    return run.position(country, as_of, known_at=known_at, cap_rule=cap_rule,
                        rule_label=rule_label)


class _Fold:
    """The running totals of one country's fold and the steps that move them."""

    def __init__(self, state: LedgerState, base_cap: int | None, rule_at: RuleAt,
                 treatments: Mapping[tuple[str, str], Treatment],
                 lpp_excess_by_key: Mapping[tuple[str, str], int], explain: bool,
                 outcomes: list[ShipmentOutcome] | None):
        self.state = state
        self.base_cap = base_cap
        self.rule_at = rule_at
        self.treatments = treatments
        self.lpp_excess_by_key = lpp_excess_by_key
        self.explain = explain
        self.outcomes = outcomes
        self.licenses: dict[str, _License] = {}
        self.country_allocs: dict[str, int] = {}
        self.cap_extra = 0
        #: shipments counted against the cap outside licenses (incl. LPP excess)
        self.outside = 0
        self.license_total = 0
        self.flagged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.breakdown: dict[str, int] = defaultdict(int)
        self.first_breach: BreachRef | None = None
        self.contributions: list[Contribution] = []
        self.counted = 0
        #: ``_outside_cap_period`` by (revision, destination, ship date)
        self.periods: dict[tuple[int, str, dt.date], str | None] = {}
        self.tiers: dict[tuple[int, str, dt.date], int | None] = {}
        self.cap_periods: dict[tuple[int, str, dt.date], Period | None] = {}

    @property
    def committed(self) -> int:
        return self.outside + self.license_total

    def cap(self) -> int | None:
        return None if self.base_cap is None else self.base_cap + self.cap_extra

    def _over(self) -> bool:
        cap = self.cap()
        return self.first_breach is None and cap is not None and self.committed > cap

    # --- allocations: a day's changes take effect together, at the start of the day

    def changes_until(self, changes: list[AllocationChange], i: int, day: dt.date) -> int:
        """Apply every change dated on or before ``day`` from ``changes[i]`` on, one
        day at a time; returns the index of the first change not applied."""
        while i < len(changes) and changes[i].day <= day:
            j = i
            while j < len(changes) and changes[j].day == changes[i].day:
                j += 1
            self._day_of_changes(changes[i:j])
            i = j
        return i

    def _day_of_changes(self, group: list[AllocationChange]) -> None:
        worsened: list[tuple[int, AllocationChange]] = []
        for change in group:
            committed_delta, cap_delta = self._change(change)
            if committed_delta - cap_delta > 0:
                worsened.append((change.position, change))
        if self._over() and worsened:
            # the changes of a day are simultaneous: the breach names the one of them
            # that worsened the position, the latest recorded if several did
            change = max(worsened, key=lambda w: w[0])[1]
            self.first_breach = self._breach_ref(change)

    def _change(self, ch: AllocationChange) -> tuple[int, int]:
        a = ch.allocation
        committed_before = self.committed
        cap_delta = 0
        if a.is_license:
            lic = self.licenses.setdefault(a.allocation_id, _License())
            self.license_total -= lic.committed
            lic.amount, lic.active = ch.amount, ch.kind != "end"
            self.license_total += lic.committed
        else:
            before = self.country_allocs.get(a.allocation_id, 0)
            self.country_allocs[a.allocation_id] = ch.amount
            if self.base_cap is not None:
                cap_delta = ch.amount - before
                self.cap_extra += cap_delta
        committed_delta = self.committed - committed_before
        if self.explain:
            self._explain_change(ch, committed_delta, cap_delta)
        return committed_delta, cap_delta

    def _explain_change(self, ch: AllocationChange, committed_delta: int,
                        cap_delta: int) -> None:
        a = ch.allocation
        clause = "tier2-license" if a.is_license else "tier2-unlicensed"
        self.contributions.append(Contribution(
            kind="license" if a.is_license else "country-allocation",
            identity=a.allocation_id, date=ch.day, position=ch.position,
            exporter_id=a.holder, tpp=ch.amount, committed_delta=committed_delta,
            cap_delta=cap_delta, bucket="license" if a.is_license else "cap", clause=clause,
            citation=_citation(self.rule_at(ch.day), clause),
            detail=_allocation_detail(ch.kind, a),
            instrument=_instrument(self.rule_at(ch.day), clause),
        ))

    def _breach_ref(self, ch: AllocationChange) -> BreachRef:
        kind = {"grant": "allocation", "adjust": "allocation-adjusted",
                "end": "allocation-ended"}[ch.kind]
        cap = self.cap()
        assert cap is not None
        return BreachRef(type=kind, date=ch.day,
                         position=ch.position, allocation_id=ch.allocation.allocation_id,
                         committed_tpp=self.committed, cap_tpp=cap)

    # --- shipments, in recorded order within a day

    def shipment(self, row: ShipmentRow) -> None:
        committed_before = self.committed
        rule = self.rule_at(row.fields.ship_date)
        t, flag, flag_tpp = self._count(row, rule, self.treatments[row.key])
        if flag is not None:
            self.flagged[flag.value][0] += 1
            self.flagged[flag.value][1] += flag_tpp
        if t.bucket is not Bucket.NONE:
            self.counted += 1
        delta = self.committed - committed_before
        if self.explain:
            f = row.fields
            self.contributions.append(Contribution(
                kind="shipment", identity=f"{row.exporter_id}/{row.shipment_ref}",
                date=f.ship_date, position=row.position, exporter_id=row.exporter_id,
                consignee_id=f.consignee_id, tpp=row.tpp, committed_delta=delta,
                bucket=t.bucket.value, flag=flag.value if flag else None,
                clause=t.clause, citation=_citation(rule, t.clause), detail=t.detail,
                instrument=_instrument(rule, t.clause),
            ))
        breach = self._over()
        if breach:
            cap = self.cap()
            assert cap is not None
            self.first_breach = BreachRef(
                type="shipment", date=row.fields.ship_date, position=row.position,
                exporter_id=row.exporter_id, shipment_ref=row.shipment_ref,
                committed_tpp=self.committed, cap_tpp=cap)
        if self.outcomes is not None:
            self.outcomes.append(ShipmentOutcome(row, rule, t, flag, flag_tpp, delta,
                                                 self.committed, breach))

    def _count(self, row: ShipmentRow, rule: RuleBook | None, t: Treatment
               ) -> tuple[Treatment, Flag | None, int]:
        """Count one shipment into the totals: (treatment after the cap-period check,
        flag, flagged TPP)."""
        tpp = row.tpp
        flag: Flag | None = t.flag
        flag_tpp = tpp if flag is not None else 0
        outside_period = self._outside_period(row, rule)
        if outside_period is not None and t.bucket in (Bucket.CAP, Bucket.LICENSE):
            if t.bucket is Bucket.LICENSE:
                self._license_shipment(row, tpp, counts=False)
            return (Treatment(Bucket.NONE, None, t.clause, outside_period), None, 0)
        if t.bucket is Bucket.CAP:
            self.outside += tpp
            self.breakdown["outside_licenses_tpp"] += tpp
        elif t.bucket is Bucket.LICENSE:
            excess = self._license_shipment(row, tpp, counts=True)
            self.breakdown["shipped_under_licenses_tpp"] += tpp
            if excess:
                flag, flag_tpp = Flag.LICENSE_EXCESS, excess
        elif t.bucket is Bucket.LPP:
            excess = self.lpp_excess_by_key.get(row.key, 0)
            self.breakdown["lpp_tpp"] += tpp
            if excess and outside_period is None:
                self.outside += excess
                self.breakdown["lpp_excess_tpp"] += excess
                flag, flag_tpp = Flag.LPP_EXCESS, excess
        elif t.bucket is Bucket.VEU:
            self.breakdown["veu_tpp"] += tpp
        else:
            self.breakdown["not_counted_tpp"] += tpp
        return t, flag, flag_tpp

    def _tier(self, rule: RuleBook, country: str, as_of: dt.date) -> int | None:
        """``rule.tier_of``, memoized (``position_days`` asks it once per day)."""
        key = (id(rule), country, as_of)
        if key not in self.tiers:
            self.tiers[key] = rule.tier_of(country, as_of)
        return self.tiers[key]

    def _cap_period(self, rule: RuleBook | None, country: str, as_of: dt.date
                    ) -> Period | None:
        """``cap_period_of``, memoized like ``_tier``."""
        key = (id(rule), country, as_of)
        if key not in self.cap_periods:
            self.cap_periods[key] = cap_period_of(rule, country, as_of)
        return self.cap_periods[key]

    def _outside_period(self, row: ShipmentRow, rule: RuleBook | None) -> str | None:
        """``_outside_cap_period``, memoized: it reads only the destination's tier on
        the ship date and the revision's period."""
        f = row.fields
        key = (id(rule), f.destination, f.ship_date)
        if key not in self.periods:
            self.periods[key] = _outside_cap_period(row, rule)
        return self.periods[key]

    def _license_shipment(self, row: ShipmentRow, tpp: int, *, counts: bool) -> int:
        """Ship ``tpp`` under the row's license; ``counts``: inside the cap period.
        Returns the part beyond the license's amount."""
        ref = row.fields.authorization.ref
        assert ref is not None
        lic = self.licenses.get(ref)
        if lic is None:  # cannot happen: a valid license started by the ship date
            a = self.state.allocations[ref]
            day = row.fields.ship_date
            lic = self.licenses[ref] = _License(a.amount_on(day), a.in_force_on(day))
            self.license_total += lic.committed
        excess = license_excess(lic.shipped, tpp, lic.amount if lic.active else 0)
        self.license_total -= lic.committed
        lic.shipped += tpp
        if counts:
            lic.counted += tpp
        self.license_total += lic.committed
        return excess

    # --- the answer

    def position(self, country: str, as_of: dt.date, *, known_at: int | None,
                 cap_rule: RuleBook | None, rule_label: str | None) -> Position:
        cap = self.cap()
        committed = self.committed
        breakdown = self.breakdown
        breakdown["licenses_committed_tpp"] = self.license_total
        breakdown["country_allocations_tpp"] = self.cap_extra
        if self.base_cap is not None:
            breakdown["rule_cap_tpp"] = self.base_cap
        period = self._cap_period(cap_rule, country, as_of) if cap is not None else None
        status, cap, remaining = cap_standing(cap, period, as_of, committed)
        state = self.state
        return Position(
            country=country, as_of=as_of, known_at=known_at,
            computed_at_position=(state.position if known_at is None
                                  else min(known_at, state.position)),
            rule=rule_label if rule_label is not None else (None if cap_rule is None
                                                            else cap_rule.id),
            tier=None if cap_rule is None else self._tier(cap_rule, country, as_of),
            cap_tpp=cap,
            committed_tpp=committed, remaining_tpp=remaining, status=status,
            cap_period=period, first_breach=self.first_breach,
            flagged={k: FlagTotal(count=v[0], tpp=v[1])
                     for k, v in sorted(self.flagged.items())},
            breakdown=dict(sorted(breakdown.items())), shipments_counted=self.counted,
            contributions=self.contributions if self.explain else None,
        )


def cap_standing(cap: int | None, period: Period | None, day: dt.date, committed: int
                 ) -> tuple[Status, int | None, int | None]:
    """Status, cap and remaining of a position on ``day``. Before its period began or
    after it ended a cap does not apply: showing it whole (before) or spent (after)
    would be an answer the rule does not give. Landing exactly on the cap is within it."""
    if cap is None:
        return "no-cap", None, None
    if period is not None and not period.contains(day):
        return "outside-cap-period", None, None
    return ("over-cap" if committed > cap else "within-cap"), cap, cap - committed


def cap_period_of(rule: RuleBook | None, country: str, day: dt.date | None = None
                  ) -> Period | None:
    """The period over which ``rule`` caps ``country`` on ``day`` (only the tier-2 cap
    has one; the tier-3 cap of 0 applies whatever the date)."""
    if rule is None or rule.tier_of(country, day) != 2:
        return None
    return rule.cap_period()


def _outside_cap_period(row: ShipmentRow, rule: RuleBook | None) -> str | None:
    """Why a shipment is dated outside its revision's tier-2 cap period, or None.

    The tier-2 cap is cumulative over its period: a tier-2 shipment dated outside it
    counts against nothing, whichever way it would reach the cap (directly, under a
    license, as LPP excess). The tier-3 cap of 0 has no period."""
    f = row.fields
    if rule is None or rule.tier_of(f.destination, f.ship_date) != 2:
        return None
    period = rule.cap_period()
    if period is None or period.contains(f.ship_date):
        return None
    return f"shipped {f.ship_date}, outside the cap period {period.start}..{period.end}"


def _allocation_detail(kind: str, a: AllocationRow) -> str:
    what = f"license held by {a.holder}" if a.is_license else "country-level allocation"
    return {"grant": f"{what} granted", "adjust": f"{what} adjusted",
            "end": f"{what} ended (expired or revoked)"}[kind]


def _no_rule_position(state: LedgerState, country: str, as_of: dt.date,
                      known_at: int | None) -> Position:
    return Position(
        country=country, as_of=as_of, known_at=known_at,
        computed_at_position=state.position if known_at is None else min(known_at, state.position),
        rule=None, tier=None, cap_tpp=None, committed_tpp=0, remaining_tpp=None,
        status="no-cap", first_breach=None, flagged={}, breakdown={}, shipments_counted=0,
    )
