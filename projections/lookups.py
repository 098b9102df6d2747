"""Lookups: licenses, VEUs and one shipment's versions, as an analyst asks for them.

- ``license_rows`` / ``license_detail``: every allocation (licenses and country-level
  allocations) with its amount on a date, what shipped under it, what is left, its
  expiry and revocation, and each shipment that names it;
- ``veu_rows``: every verified end user with its terms on a date and what shipped
  under it;
- ``shipment_versions``: one shipment's recorded, corrected and voided versions, each
  with its position, recorded time, reason and the fields it changed (old → new).

"Shipped under a license" counts the live (not voided) shipments that name it, are
dated on or before the as-of date and for which it was a valid license on their ship
date (holder, country, dates, revocation: ``ledger.counting.license_check``), the
same draws the quota fold depletes it with. A shipment naming it while it was not
valid is listed with the reason, and counts against the country cap instead
(``license-invalid``). Remaining = amount on the as-of date − shipped; below zero,
the license was shipped past its amount (``license-excess``).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ledger.events import (
    LedgerEvent,
    ShipmentCorrected,
    ShipmentFields,
    ShipmentRecorded,
    ShipmentVoided,
)
from ledger.rulebook import RuleBook
from projections.positions import authorization_checks, country_position, treat
from projections.state import AllocationRow, LedgerState, ShipmentRow, VeuRow

AllocationStatus = Literal["not-started", "active", "expired", "revoked"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Draw(_Out):
    """One shipment that names a license or a VEU."""

    date: dt.date
    exporter_id: str
    shipment_ref: str
    consignee_id: str
    destination: str
    product_id: str
    quantity: int
    tpp: int
    position: int
    voided: bool
    #: whether the authorization was valid for this shipment on its ship date
    valid: bool
    reason: str
    #: what had shipped under it after this shipment (valid, live draws only)
    shipped_after_tpp: int
    #: the part of this shipment beyond the license's amount (licenses only)
    excess_tpp: int = 0


class LicenseSummary(_Out):
    allocation_id: str
    kind: Literal["license", "country-allocation"]
    country: str
    holder: str | None
    reference: str | None
    as_of: dt.date
    valid_from: dt.date
    valid_to: dt.date | None
    revoked_on: dt.date | None
    status: AllocationStatus
    amount_tpp: int
    shipped_tpp: int
    remaining_tpp: int
    shipments: int
    recorded_at_position: int


class LicenseDetail(_Out):
    license: LicenseSummary
    #: (effective date, recorded position, amount): the grant, then each adjustment
    amounts: list[tuple[dt.date, int, int]]
    draws: list[Draw]
    computed_at_position: int


class VeuSummary(_Out):
    veu_id: str
    entity: str
    kind: str
    headquarters_country: str
    as_of: dt.date
    covered_countries: list[str]
    valid_from: dt.date
    valid_to: dt.date | None
    revoked_on: dt.date | None
    status: AllocationStatus
    total_compute_tpp: int | None
    cap_tpp: int | None
    shipments: int
    shipped_tpp: int
    recorded_at_position: int


def _status(valid_from: dt.date, valid_to: dt.date | None, revoked_on: dt.date | None,
            as_of: dt.date) -> AllocationStatus:
    if revoked_on is not None and as_of >= revoked_on:
        return "revoked"
    if as_of < valid_from:
        return "not-started"
    if valid_to is not None and as_of > valid_to:
        return "expired"
    return "active"


def _naming(state: LedgerState, kind: str, ref: str) -> list[ShipmentRow]:
    rows = [r for r in state.shipments.values()
            if r.fields.authorization.kind == kind and r.fields.authorization.ref == ref]
    return sorted(rows, key=lambda r: (r.fields.ship_date, r.position))


def license_draws(state: LedgerState, a: AllocationRow, as_of: dt.date) -> list[Draw]:
    """Every shipment naming allocation ``a``, in ship-date order (ties in recorded
    order), with whether the license was valid for it and the running shipped total."""
    draws: list[Draw] = []
    shipped = 0
    for row in _naming(state, "license", a.allocation_id):
        if row.fields.ship_date > as_of:
            continue
        check, _ = authorization_checks(state, row)
        valid = check is not None and check.valid
        excess = 0
        if valid and not row.voided:
            amount = a.amount_on(row.fields.ship_date)
            excess = max(0, min(row.tpp, shipped + row.tpp - amount))
            shipped += row.tpp
        draws.append(_draw(row, valid, "" if check is None or valid else check.reason,
                           shipped, excess))
    return draws


def _draw(row: ShipmentRow, valid: bool, reason: str, shipped: int, excess: int) -> Draw:
    f = row.fields
    return Draw(date=f.ship_date, exporter_id=row.exporter_id, shipment_ref=row.shipment_ref,
                consignee_id=f.consignee_id, destination=f.destination,
                product_id=f.product_id, quantity=f.quantity, tpp=row.tpp,
                position=row.position, voided=row.voided, valid=valid,
                reason="voided: counts for nothing" if row.voided else reason,
                shipped_after_tpp=shipped, excess_tpp=excess)


def license_summary(state: LedgerState, a: AllocationRow, as_of: dt.date,
                    draws: list[Draw] | None = None) -> LicenseSummary:
    draws = license_draws(state, a, as_of) if draws is None else draws
    live = [d for d in draws if d.valid and not d.voided]
    shipped = sum(d.tpp for d in live)
    amount = a.amount_on(as_of) if as_of >= a.valid_from else a.amounts[0][2]
    return LicenseSummary(
        allocation_id=a.allocation_id,
        kind="license" if a.is_license else "country-allocation", country=a.country,
        holder=a.holder, reference=a.reference, as_of=as_of, valid_from=a.valid_from,
        valid_to=a.valid_to, revoked_on=a.revoked_on,
        status=_status(a.valid_from, a.valid_to, a.revoked_on, as_of),
        amount_tpp=amount, shipped_tpp=shipped, remaining_tpp=amount - shipped,
        shipments=len(live), recorded_at_position=a.position)


def license_rows(state: LedgerState, as_of: dt.date, *, country: str | None = None,
                 holder: str | None = None) -> list[LicenseSummary]:
    """Every allocation (optionally of one country or one holder), by country and id."""
    rows = [a for a in state.allocations.values()
            if (country is None or a.country == country)
            and (holder is None or a.holder == holder)]
    return [license_summary(state, a, as_of)
            for a in sorted(rows, key=lambda a: (a.country, a.allocation_id))]


def license_detail(state: LedgerState, allocation_id: str, as_of: dt.date
                   ) -> LicenseDetail | None:
    """One allocation with each shipment naming it (None if unknown)."""
    a = state.allocations.get(allocation_id)
    if a is None:
        return None
    draws = license_draws(state, a, as_of)
    return LicenseDetail(license=license_summary(state, a, as_of, draws),
                         amounts=sorted(a.amounts), draws=draws,
                         computed_at_position=state.position)


def veu_summary(state: LedgerState, v: VeuRow, as_of: dt.date) -> VeuSummary:
    day = max(as_of, v.valid_from)
    terms = v.version_on(day)
    shipped = count = 0
    for row in _naming(state, "veu", v.veu_id):
        if row.voided or row.fields.ship_date > as_of:
            continue
        _, check = authorization_checks(state, row)
        if check is not None and check.valid:
            shipped += row.tpp
            count += 1
    return VeuSummary(
        veu_id=v.veu_id, entity=terms.entity, kind=v.kind,
        headquarters_country=v.headquarters_country, as_of=as_of,
        covered_countries=sorted(terms.covered_countries), valid_from=v.valid_from,
        valid_to=terms.valid_to, revoked_on=v.revoked_on,
        status=_status(v.valid_from, terms.valid_to, v.revoked_on, as_of),
        total_compute_tpp=terms.limits.total_compute_tpp, cap_tpp=terms.limits.cap_tpp,
        shipments=count, shipped_tpp=shipped, recorded_at_position=v.position)


def veu_rows(state: LedgerState, as_of: dt.date, *, country: str | None = None
             ) -> list[VeuSummary]:
    """Every VEU (optionally only those covering ``country`` on ``as_of``), by id."""
    out = [veu_summary(state, v, as_of) for v in state.veus.values()]
    if country is not None:
        out = [v for v in out if country in v.covered_countries]
    return sorted(out, key=lambda v: v.veu_id)


# --- one shipment's versions -------------------------------------------------------


class ShipmentVersion(_Out):
    version: int
    position: int
    recorded_at: str | None
    type: str
    actor: str
    reason: str | None
    #: field -> [old, new] for a correction; every field for the recording
    changes: dict[str, list[Any]]
    fields: dict[str, Any]
    voided: bool


class Counting(_Out):
    as_of: dt.date
    rule: str | None
    counts: bool
    bucket: str
    flag: str | None
    clause: str
    citation: str
    detail: str
    #: what it adds to the country's committed amount (0 under a license within its
    #: amount, or when it counts against nothing)
    committed_delta: int = 0


class ShipmentStory(_Out):
    exporter_id: str
    shipment_ref: str
    versions: list[ShipmentVersion]
    current: dict[str, Any]
    voided: bool
    tpp: int
    counting: Counting | None
    computed_at_position: int


def _field_values(fields: ShipmentFields) -> dict[str, Any]:
    data: dict[str, Any] = fields.model_dump(mode="json")
    data["tpp"] = fields.tpp
    return data


def shipment_versions(events: list[tuple[int, LedgerEvent]], recorded_at: dict[int, str]
                      ) -> list[ShipmentVersion]:
    """The versions of one shipment from its (position, event) pairs, in order."""
    out: list[ShipmentVersion] = []
    current: ShipmentFields | None = None
    voided = False
    for position, e in events:
        changes: dict[str, list[Any]] = {}
        reason: str | None = None
        if isinstance(e, ShipmentRecorded):
            current = e.shipment
            changes = {k: [None, v] for k, v in _field_values(current).items()}
        elif isinstance(e, ShipmentCorrected) and current is not None:
            before = _field_values(current)
            current = e.changes.apply(current)
            after = _field_values(current)
            changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
            reason = e.reason
        elif isinstance(e, ShipmentVoided):
            voided = True
            reason = e.reason
        assert current is not None
        out.append(ShipmentVersion(
            version=e.originator_version, position=position,
            recorded_at=recorded_at.get(position), type=e.type_name, actor=e.actor,
            reason=reason, changes=changes, fields=_field_values(current), voided=voided))
    return out


def shipment_counting(state: LedgerState, key: tuple[str, str], as_of: dt.date,
                      rule: RuleBook | None) -> Counting | None:
    """How the shipment counts under ``rule`` on ``as_of`` (None: not in ``state``)."""
    row = state.shipments.get(key)
    if row is None:
        return None
    label = None if rule is None else rule.id
    if row.voided:
        return Counting(as_of=as_of, rule=label, counts=False, bucket="none", flag=None,
                        clause="voided", citation="", detail="voided: counts for nothing")
    if row.fields.ship_date > as_of:
        return Counting(as_of=as_of, rule=label, counts=False, bucket="none", flag=None,
                        clause="not-yet-shipped", citation="",
                        detail=f"ships {row.fields.ship_date}, after {as_of}")
    if rule is None:
        return Counting(as_of=as_of, rule=None, counts=False, bucket="none", flag=None,
                        clause="no-rule", citation="no rule revision in force",
                        detail=f"no rule revision in force on {as_of}")
    # the quota fold's own item: the amount-dependent parts (LPP or license excess,
    # the cap period) settled exactly as 'ledger quota' settles them
    position = country_position(state, row.fields.destination, as_of, rule, explain=True)
    for c in position.contributions or []:
        if c.kind == "shipment" and c.position == row.position:
            return Counting(as_of=as_of, rule=rule.id, counts=c.bucket != "none",
                            bucket=c.bucket, flag=c.flag, clause=c.clause,
                            citation=c.citation, detail=c.detail,
                            committed_delta=c.committed_delta)
    t = treat(state, row, rule)
    return Counting(as_of=as_of, rule=rule.id, counts=t.bucket.value != "none",
                    bucket=t.bucket.value, flag=t.flag.value if t.flag else None,
                    clause=t.clause, citation=rule.clause(t.clause).citation, detail=t.detail)
