"""Pre-shipment check: what a proposed shipment would do, without recording it.

The proposed shipment is put beside the ledger's shipments (as if recorded next) and
the country's quota fold runs twice, without and with it, under one rule revision
(the one in force on its ship date, or a named one). The difference answers, with
the very numbers ``ledger quota`` would give once it is recorded:

- how it counts: bucket, flag, clause and citation, what it adds to committed;
- what it draws on and what is left afterwards: the license (amount, shipped,
  remaining), the consignee's LPP calendar year, the VEU's limits, the country cap;
- whether it would breach anything. Problems (the check fails): prohibited (tier 3
  without a valid license), a license required and missing, shipping past a
  license's amount, over the consignee's LPP limit, a VEU limit breached, the country
  cap exceeded (or an exceeded cap made worse). Warnings (the check passes): a
  license or VEU that is not valid for it, so it counts against the country cap.

Positions are taken as of the later of the ship date and the latest ship date the
ledger knows for the country, so a backdated shipment that would push a later
position over the cap is caught too.

Pure: no I/O. The state is left as it was found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict

from ledger.counting import Bucket
from ledger.events import ShipmentFields
from ledger.rulebook import RuleBook
from projections.lookups import license_summary
from projections.positions import BreachRef, Position, country_position, lpp_excesses, treat
from projections.state import LedgerState, ShipmentRow
from projections.veu import LimitUsage, veu_status


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Problem(_Out):
    kind: str
    message: str


class CapUse(_Out):
    country: str
    tier: int | None
    cap_tpp: int | None
    committed_before_tpp: int
    committed_after_tpp: int
    remaining_before_tpp: int | None
    remaining_after_tpp: int | None
    status_before: str
    status_after: str
    first_breach_after: BreachRef | None


class LicenseUse(_Out):
    allocation_id: str
    valid: bool
    reason: str
    amount_tpp: int | None
    shipped_before_tpp: int
    shipped_after_tpp: int
    remaining_after_tpp: int | None


class LppUse(_Out):
    consignee_id: str
    year: int
    limit_tpp: int
    used_before_tpp: int
    used_after_tpp: int
    remaining_after_tpp: int
    excess_tpp: int


class VeuUse(_Out):
    veu_id: str
    valid: bool
    reason: str
    limits_after: list[LimitUsage]
    breaches_after: list[str]


class CheckResult(_Out):
    exporter_id: str
    shipment_ref: str
    shipment: dict[str, Any]
    tpp: int
    rule: str | None
    as_of: dt.date
    bucket: str
    flag: str | None
    clause: str
    citation: str
    detail: str
    committed_delta_tpp: int
    cap: CapUse
    license: LicenseUse | None
    lpp: LppUse | None
    veu: VeuUse | None
    fits: bool
    problems: list[Problem]
    warnings: list[Problem]
    computed_at_position: int


@contextmanager
def _proposed(state: LedgerState, row: ShipmentRow) -> Iterator[None]:
    """``state`` with ``row`` among its shipments for the length of the block."""
    state.shipments[row.key] = row
    state.by_country[row.fields.destination].add(row.key)
    state.by_consignee[row.fields.consignee_id].add(row.key)
    try:
        yield
    finally:
        del state.shipments[row.key]
        state.by_country[row.fields.destination].discard(row.key)
        state.by_consignee[row.fields.consignee_id].discard(row.key)


def horizon(state: LedgerState, country: str, ship_date: dt.date) -> dt.date:
    """The later of the ship date and the latest live ship date known for the country."""
    days = [state.shipments[k].fields.ship_date for k in state.by_country.get(country, ())
            if not state.shipments[k].voided]
    return max([ship_date, *days])


def check_shipment(state: LedgerState, exporter_id: str, shipment_ref: str,
                   fields: ShipmentFields, rule: RuleBook | None) -> CheckResult:
    """What recording this shipment would do under ``rule`` (see the module doc)."""
    country = fields.destination
    as_of = horizon(state, country, fields.ship_date)
    row = ShipmentRow(exporter_id, shipment_ref, fields, state.position + 1,
                      state.position + 1)
    before = country_position(state, country, as_of, rule)
    lic_before = _license_shipped(state, fields, as_of)
    veu_before = _veu(state, fields, as_of, rule)
    with _proposed(state, row):
        after = country_position(state, country, as_of, rule, explain=True)
        mine = next((c for c in after.contributions or []
                     if c.kind == "shipment" and c.position == row.position), None)
        license_use = _license_use(state, row, as_of, lic_before)
        lpp_use = _lpp_use(state, row, rule, as_of)
        veu_after = _veu(state, fields, as_of, rule)
        veu_use = _veu_use(state, row, veu_after)
    if mine is not None:
        bucket, flag, clause = mine.bucket, mine.flag, mine.clause
        citation, detail, delta = mine.citation, mine.detail, mine.committed_delta
    else:  # no rule revision applies: it counts against nothing
        bucket, flag, clause = "none", None, "no-rule"
        citation, detail, delta = "no rule revision in force", f"no rule revision in force " \
            f"on {fields.ship_date}", 0
    cap = _cap_use(before, after)
    problems, warnings = _judge(bucket, flag, clause, detail, delta, cap, license_use,
                                lpp_use, veu_before, veu_use)
    shipment = fields.model_dump(mode="json")
    return CheckResult(
        exporter_id=exporter_id, shipment_ref=shipment_ref, shipment=shipment,
        tpp=fields.tpp, rule=None if rule is None else rule.id, as_of=as_of, bucket=bucket,
        flag=flag, clause=clause, citation=citation, detail=detail,
        committed_delta_tpp=delta, cap=cap, license=license_use, lpp=lpp_use, veu=veu_use,
        fits=not problems, problems=problems, warnings=warnings,
        computed_at_position=state.position)


def _cap_use(before: Position, after: Position) -> CapUse:
    return CapUse(country=after.country, tier=after.tier, cap_tpp=after.cap_tpp,
                  committed_before_tpp=before.committed_tpp,
                  committed_after_tpp=after.committed_tpp,
                  remaining_before_tpp=before.remaining_tpp,
                  remaining_after_tpp=after.remaining_tpp, status_before=before.status,
                  status_after=after.status, first_breach_after=after.first_breach)


def _license_shipped(state: LedgerState, fields: ShipmentFields, as_of: dt.date) -> int:
    ref = fields.authorization.ref
    a = state.allocations.get(ref or "") if fields.authorization.kind == "license" else None
    return 0 if a is None else license_summary(state, a, as_of).shipped_tpp


def _license_use(state: LedgerState, row: ShipmentRow, as_of: dt.date, shipped_before: int
                 ) -> LicenseUse | None:
    from projections.positions import authorization_checks

    auth = row.fields.authorization
    if auth.kind != "license" or auth.ref is None:
        return None
    check, _ = authorization_checks(state, row)
    assert check is not None
    a = state.allocations.get(auth.ref)
    if a is None:
        return LicenseUse(allocation_id=auth.ref, valid=False, reason=check.reason,
                          amount_tpp=None, shipped_before_tpp=0, shipped_after_tpp=0,
                          remaining_after_tpp=None)
    summary = license_summary(state, a, as_of)
    amount = a.amount_on(row.fields.ship_date) if row.fields.ship_date >= a.valid_from \
        else summary.amount_tpp
    return LicenseUse(allocation_id=auth.ref, valid=check.valid, reason=check.reason,
                      amount_tpp=amount, shipped_before_tpp=shipped_before,
                      shipped_after_tpp=summary.shipped_tpp,
                      remaining_after_tpp=amount - summary.shipped_tpp)


def _lpp_use(state: LedgerState, row: ShipmentRow, rule: RuleBook | None, as_of: dt.date
             ) -> LppUse | None:
    if rule is None or row.fields.authorization.kind != "lpp":
        return None
    limit = rule.lpp_limit()
    if limit is None or treat(state, row, rule).bucket is not Bucket.LPP:
        return None
    consignee, year = row.fields.consignee_id, row.fields.ship_date.year
    used_after = 0
    for key in state.by_consignee.get(consignee, ()):
        other = state.shipments[key]
        f = other.fields
        if other.voided or f.ship_date.year != year or f.ship_date > as_of:
            continue
        if f.authorization.kind == "lpp" and treat(state, other, rule).bucket is Bucket.LPP:
            used_after += other.tpp
    excess = lpp_excesses(state, rule, [consignee], as_of).get(row.key, 0)
    return LppUse(consignee_id=consignee, year=year, limit_tpp=limit,
                  used_before_tpp=used_after - row.tpp, used_after_tpp=used_after,
                  remaining_after_tpp=limit - used_after, excess_tpp=excess)


def _veu(state: LedgerState, fields: ShipmentFields, as_of: dt.date, rule: RuleBook | None
         ) -> Any:
    ref = fields.authorization.ref
    if fields.authorization.kind != "veu" or ref is None or ref not in state.veus:
        return None
    return veu_status(state, ref, as_of, rule)


def _veu_use(state: LedgerState, row: ShipmentRow, status: Any) -> VeuUse | None:
    from projections.positions import authorization_checks

    auth = row.fields.authorization
    if auth.kind != "veu" or auth.ref is None:
        return None
    _, check = authorization_checks(state, row)
    assert check is not None
    return VeuUse(veu_id=auth.ref, valid=check.valid, reason=check.reason,
                  limits_after=[] if status is None else list(status.limits),
                  breaches_after=[] if status is None else list(status.breaches))


def _judge(bucket: str, flag: str | None, clause: str, detail: str, delta: int, cap: CapUse,
           license_use: LicenseUse | None, lpp_use: LppUse | None, veu_before: Any,
           veu_use: VeuUse | None) -> tuple[list[Problem], list[Problem]]:
    """(problems: the check fails, warnings: it passes but says so)."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if flag == "prohibited":
        problems.append(Problem(kind="prohibited", message=detail))
    if flag == "unlicensed" and bucket == "none" and clause == "license-required":
        problems.append(Problem(kind="license-required", message=detail))
    if flag == "license-excess" and license_use is not None:
        over = -(license_use.remaining_after_tpp or 0)
        problems.append(Problem(
            kind="license-excess",
            message=f"ships {over:,} TPP past license {license_use.allocation_id}'s amount "
                    f"of {license_use.amount_tpp or 0:,}; the excess counts against the cap"))
    if flag == "lpp-excess" and lpp_use is not None:
        problems.append(Problem(
            kind="lpp-excess",
            message=f"takes consignee {lpp_use.consignee_id} to {lpp_use.used_after_tpp:,} "
                    f"TPP in {lpp_use.year}, over the LPP limit of {lpp_use.limit_tpp:,} by "
                    f"{lpp_use.used_after_tpp - lpp_use.limit_tpp:,}"))
    if veu_use is not None:
        was = set(veu_before.breaches) if veu_before is not None else set()
        used_before = {lim.limit: lim.used_tpp for lim in
                       (veu_before.limits if veu_before is not None else [])}
        for lim in veu_use.limits_after:
            if lim.breach and (lim.limit not in was
                               or lim.used_tpp > used_before.get(lim.limit, 0)):
                problems.append(Problem(kind="veu-limit", message=f"VEU {veu_use.veu_id}: "
                                        f"breaches {lim.limit} ({lim.scope})"))
    if cap.status_after == "over-cap" and delta > 0:
        assert cap.cap_tpp is not None
        already = cap.status_before == "over-cap"
        problems.append(Problem(
            kind="over-cap",
            message=(f"{cap.country} is already over its cap; this adds {delta:,} TPP"
                     if already else
                     f"takes {cap.country}'s committed to {cap.committed_after_tpp:,} TPP, "
                     f"over the cap of {cap.cap_tpp:,} by "
                     f"{cap.committed_after_tpp - cap.cap_tpp:,}")))
    if flag in ("license-invalid", "veu-invalid"):
        warnings.append(Problem(kind=flag, message=detail))
    if flag == "unlicensed" and bucket == "cap":
        warnings.append(Problem(kind="unlicensed", message=detail))
    return problems, warnings
