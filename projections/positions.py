"""A country's quota position on a date under a rule revision: the quota fold.

The position is a fold over the country's dated items in effective-date order (ties
in recorded order): allocations starting, changing and ending, and shipments. Each
shipment is classified by ``ledger.counting``; running totals settle the
amount-dependent parts (LPP over the consignee's yearly limit, license past its
amount). The fold yields cap, committed, remaining, status, the first breach, the
flags, and, on request, every contribution with the clause that made it count.

    cap       = the revision's cap for the country + country-level allocations in force
    committed = licenses in force, each at max(amount, shipped under it)
              + expired or revoked licenses at what shipped under them
              + shipments counted against the cap outside licenses (incl. LPP excess)
    remaining = cap - committed

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
from projections.state import LedgerState, ShipmentRow

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


def lpp_excesses(state: LedgerState, rule: RuleBook, consignees: Iterable[str],
                 as_of: dt.date) -> dict[tuple[str, str], int]:
    """Per LPP shipment of these consignees, the part over the calendar-year limit.

    The excess of a shipment depends only on the consignee's earlier-dated LPP
    shipments of the same year (ties in recorded order), so it is the same for every
    as-of date on which the shipment is counted."""
    limit = rule.lpp_limit()
    out: dict[tuple[str, str], int] = {}
    if limit is None:
        return out
    for consignee in consignees:
        per_year: dict[int, list[ShipmentRow]] = defaultdict(list)
        for key in state.by_consignee.get(consignee, ()):
            row = state.shipments[key]
            if row.voided or row.fields.ship_date > as_of:
                continue
            if row.fields.authorization.kind != "lpp":
                continue
            if treat(state, row, rule).bucket is not Bucket.LPP:
                continue
            per_year[row.fields.ship_date.year].append(row)
        for rows in per_year.values():
            total = 0
            for row in sorted(rows, key=lambda r: (r.fields.ship_date, r.position)):
                out[row.key] = lpp_excess(total, row.tpp, limit)
                total += row.tpp
    return out


# --- the fold ------------------------------------------------------------------------------


@dataclass
class _License:
    amount: int
    shipped: int = 0
    active: bool = True

    @property
    def committed(self) -> int:
        return max(self.amount, self.shipped) if self.active else self.shipped


@dataclass(order=True)
class _Item:
    """One dated item of the fold, sorted by effective date, ties in recorded order."""

    date: dt.date
    position: int
    seq: int
    kind: str = field(compare=False)
    ref: Any = field(compare=False)
    amount: int = field(default=0, compare=False)


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


def _item_order(item: _Item) -> tuple[dt.date, int, int]:
    return (item.date, item.position, item.seq)


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
    rows = [state.shipments[k] for k in state.by_country.get(country, ())]
    rows = [r for r in rows if not r.voided and r.fields.ship_date <= as_of]
    treatments = {row.key: treat(state, row, rule) for row in rows}
    lpp_consignees = {r.fields.consignee_id for r in rows
                      if treatments[r.key].bucket is Bucket.LPP}
    lpp_excess_by_key = lpp_excesses(state, rule, lpp_consignees, as_of)
    return fold_country(state, country, as_of, rule_at=lambda _day: rule, cap_rule=rule,
                        treatments=treatments, lpp_excess_by_key=lpp_excess_by_key,
                        known_at=known_at, explain=explain)


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
    """
    base_cap = None if cap_rule is None else cap_rule.cap_for(country, as_of)
    items: list[_Item] = []
    seq = 0
    for alloc_id in state.allocations_by_country.get(country, ()):
        a = state.allocations[alloc_id]
        if a.valid_from > as_of:
            continue
        items.append(_Item(a.valid_from, a.position, seq, "grant", a, a.amounts[0][2]))
        seq += 1
        for eff, pos, amount in a.amounts[1:]:
            if eff <= as_of:
                items.append(_Item(max(eff, a.valid_from), pos, seq, "adjust", a, amount))
                seq += 1
        ends = []
        if a.valid_to is not None:
            ends.append((a.valid_to + dt.timedelta(days=1), a.position))
        if a.revoked is not None:
            ends.append(a.revoked)
        if ends:
            end_day, end_pos = min(ends)
            if end_day <= as_of:
                items.append(_Item(max(end_day, a.valid_from), end_pos, seq, "end", a))
                seq += 1
    rows: list[ShipmentRow] = [state.shipments[k] for k in state.by_country.get(country, ())]
    rows = [r for r in rows if not r.voided and r.fields.ship_date <= as_of]
    for row in rows:
        items.append(_Item(row.fields.ship_date, row.position, seq, "shipment", row))
        seq += 1
    # a key of plain tuples sorts far faster than the dataclass's generated __lt__
    # (the same order: date, recorded position, sequence)
    items.sort(key=_item_order)

    licenses: dict[str, _License] = {}
    country_allocs: dict[str, int] = {}
    cap_extra = 0
    outside = 0
    license_total = 0
    committed = 0
    flagged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    breakdown: dict[str, int] = defaultdict(int)
    first_breach: BreachRef | None = None
    contributions: list[Contribution] = []
    counted = 0

    def cap_now() -> int | None:
        return None if base_cap is None else base_cap + cap_extra

    for item in items:
        committed_before = committed
        cap_delta = 0
        if item.kind == "shipment":
            row = item.ref
            rule = rule_at(row.fields.ship_date)
            key = row.key
            t = treatments[key]
            tpp = row.tpp
            flag: Flag | None = t.flag
            flag_tpp = tpp if flag is not None else 0
            # the tier-2 cap is cumulative over its period: a tier-2 shipment dated
            # outside it does not count against it (the tier-3 cap of 0 has no period)
            period = None
            if rule is not None and rule.tier_of(row.fields.destination,
                                                 row.fields.ship_date) == 2:
                period = rule.cap_period()
            outside_period = period is not None and not period.contains(row.fields.ship_date)
            if t.bucket is Bucket.CAP:
                if outside_period:
                    assert period is not None
                    t = Treatment(Bucket.NONE, None, t.clause,
                                  f"shipped {row.fields.ship_date}, outside the cap period "
                                  f"{period.start}..{period.end}")
                    flag, flag_tpp = None, 0
                else:
                    outside += tpp
                    breakdown["outside_licenses_tpp"] += tpp
            elif t.bucket is Bucket.LICENSE:
                ref = row.fields.authorization.ref
                assert ref is not None
                lic = licenses.get(ref)
                if lic is None:
                    # the license was granted on this same day but recorded after the
                    # shipment (ties go in recorded order): it is valid on the ship date,
                    # so it is carved out of the cap from here on
                    lic = licenses[ref] = _License(state.allocations[ref].amount_on(item.date))
                    license_total += lic.committed
                excess = license_excess(lic.shipped, tpp, lic.amount if lic.active else 0)
                license_total -= lic.committed
                lic.shipped += tpp
                license_total += lic.committed
                breakdown["shipped_under_licenses_tpp"] += tpp
                if excess:
                    flag, flag_tpp = Flag.LICENSE_EXCESS, excess
            elif t.bucket is Bucket.LPP:
                excess = lpp_excess_by_key.get(key, 0)
                breakdown["lpp_tpp"] += tpp
                if excess and outside_period:
                    # like an unlicensed shipment dated outside the cap period
                    excess = 0
                if excess:
                    outside += excess
                    breakdown["lpp_excess_tpp"] += excess
                    flag, flag_tpp = Flag.LPP_EXCESS, excess
            elif t.bucket is Bucket.VEU:
                breakdown["veu_tpp"] += tpp
            else:
                breakdown["not_counted_tpp"] += tpp
            if flag is not None:
                flagged[flag.value][0] += 1
                flagged[flag.value][1] += flag_tpp
            if t.bucket is not Bucket.NONE:
                counted += 1
            committed = outside + license_total
            if explain:
                contributions.append(Contribution(
                    kind="shipment", identity=f"{row.exporter_id}/{row.shipment_ref}",
                    date=row.fields.ship_date, position=row.position,
                    exporter_id=row.exporter_id, consignee_id=row.fields.consignee_id,
                    tpp=tpp, committed_delta=committed - committed_before,
                    bucket=t.bucket.value, flag=flag.value if flag else None,
                    clause=t.clause, citation=_citation(rule, t.clause), detail=t.detail,
                    instrument=_instrument(rule, t.clause),
                ))
            cap = cap_now()
            breach = first_breach is None and cap is not None and committed > cap
            if outcomes is not None:
                outcomes.append(ShipmentOutcome(row, rule, t, flag, flag_tpp,
                                                committed - committed_before, committed,
                                                breach))
        else:
            a = item.ref
            if a.is_license:
                lic = licenses.setdefault(a.allocation_id, _License(0))
                license_total -= lic.committed
                if item.kind == "grant":
                    lic.amount, lic.active = item.amount, True
                elif item.kind == "adjust":
                    lic.amount = item.amount
                else:
                    lic.active = False
                license_total += lic.committed
                committed = outside + license_total
            else:
                before = country_allocs.get(a.allocation_id, 0)
                after = {"grant": item.amount, "adjust": item.amount, "end": 0}[item.kind]
                country_allocs[a.allocation_id] = after
                cap_delta = after - before
                if base_cap is not None:
                    cap_extra += cap_delta
            if explain:
                clause = "tier2-license" if a.is_license else "tier2-unlicensed"
                contributions.append(Contribution(
                    kind="license" if a.is_license else "country-allocation",
                    identity=a.allocation_id, date=item.date, position=item.position,
                    exporter_id=a.holder, tpp=item.amount,
                    committed_delta=committed - committed_before,
                    cap_delta=cap_delta if base_cap is not None else 0,
                    bucket="license" if a.is_license else "cap", clause=clause,
                    citation=_citation(rule_at(item.date), clause),
                    detail=_allocation_detail(item.kind, a),
                    instrument=_instrument(rule_at(item.date), clause),
                ))
        cap = cap_now()
        if first_breach is None and cap is not None and committed > cap:
            first_breach = _breach(item, committed, cap)

    cap = cap_now()
    breakdown["licenses_committed_tpp"] = license_total
    breakdown["country_allocations_tpp"] = cap_extra
    if base_cap is not None:
        breakdown["rule_cap_tpp"] = base_cap
    period = cap_period_of(cap_rule, country, as_of) if cap is not None else None
    if cap is None:
        status: Status = "no-cap"
        remaining = None
    elif period is not None and not period.contains(as_of):
        # before the period began or after it ended the cap does not apply: showing it
        # whole (before) or spent (after) would be an answer the rule does not give
        status, cap, remaining = "outside-cap-period", None, None
    else:
        remaining = cap - committed
        status = "over-cap" if committed > cap else "within-cap"
    return Position(
        country=country, as_of=as_of, known_at=known_at,
        computed_at_position=state.position if known_at is None else min(known_at, state.position),
        rule=rule_label if rule_label is not None else (None if cap_rule is None
                                                        else cap_rule.id),
        tier=None if cap_rule is None else cap_rule.tier_of(country, as_of), cap_tpp=cap,
        committed_tpp=committed,
        remaining_tpp=remaining, status=status, cap_period=period, first_breach=first_breach,
        flagged={k: FlagTotal(count=v[0], tpp=v[1]) for k, v in sorted(flagged.items())},
        breakdown=dict(sorted(breakdown.items())), shipments_counted=counted,
        contributions=contributions if explain else None,
    )


def cap_period_of(rule: RuleBook | None, country: str, day: dt.date | None = None
                  ) -> Period | None:
    """The period over which ``rule`` caps ``country`` (only the tier-2 cap has one;
    the tier-3 cap of 0 applies whatever the date)."""
    if rule is None or rule.tier_of(country, day) != 2:
        return None
    return rule.cap_period()


def _allocation_detail(kind: str, a: Any) -> str:
    what = f"license held by {a.holder}" if a.is_license else "country-level allocation"
    return {"grant": f"{what} granted", "adjust": f"{what} adjusted",
            "end": f"{what} ended (expired or revoked)"}[kind]


def _breach(item: _Item, committed: int, cap: int) -> BreachRef:
    if item.kind == "shipment":
        row: ShipmentRow = item.ref
        return BreachRef(type="shipment", date=item.date, position=item.position,
                         exporter_id=row.exporter_id, shipment_ref=row.shipment_ref,
                         committed_tpp=committed, cap_tpp=cap)
    kind = {"grant": "allocation", "adjust": "allocation-adjusted",
            "end": "allocation-ended"}[item.kind]
    return BreachRef(type=kind, date=item.date, position=item.position,
                     allocation_id=item.ref.allocation_id, committed_tpp=committed, cap_tpp=cap)


def _no_rule_position(state: LedgerState, country: str, as_of: dt.date,
                      known_at: int | None) -> Position:
    return Position(
        country=country, as_of=as_of, known_at=known_at,
        computed_at_position=state.position if known_at is None else min(known_at, state.position),
        rule=None, tier=None, cap_tpp=None, committed_tpp=0, remaining_tpp=None,
        status="no-cap", first_breach=None, flagged={}, breakdown={}, shipments_counted=0,
    )
