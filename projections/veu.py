"""A verified end user's usage against its limits on a date: ``ledger veu status``.

Universal VEU (rules-facts.md R1): shares of the entity's whole deployed AI compute,
at most 7% in any single non-tier-1 country, at most 25% outside tier 1, at least 50%
in the US for a US-headquartered entity (the figures come from the rule book). The
base of the shares is the ``total_compute_tpp`` on the VEU grant (as amended by the
date) when given, else everything shipped under the VEU, tier 1 and the US included.

National VEU: cumulative caps by period (the rule book's H100-equivalent caps, TPP
derived as x 15,832), or the ``cap_tpp`` on the grant when given.

Shipments count toward a VEU when they name it and it was valid for their destination
on their ship date (``ledger.counting.veu_check``); the ones that name it but were
not valid are reported apart. Shares are compared exactly (fractions), never as
floats. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ledger.counting import veu_check
from ledger.errors import NotFound
from ledger.rulebook import RuleBook
from projections.state import LedgerState, ShipmentRow


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ShipmentRef(_Out):
    date: dt.date
    exporter_id: str
    shipment_ref: str
    position: int


class LimitUsage(_Out):
    """One limit and how much of it is used."""

    limit: str
    kind: Literal["max-share", "min-share", "cap"]
    scope: str
    used_tpp: int
    #: the base of a share limit (the entity's whole deployed compute)
    base_tpp: int | None = None
    #: shares as exact decimal strings, e.g. "0.08"
    share: str | None = None
    limit_share: str | None = None
    cap_tpp: int | None = None
    through: dt.date | None = None
    remaining_tpp: int | None = None
    breach: bool
    #: False when the ledger lacks the data to judge the limit (breach is then False)
    assessable: bool = True
    first_breach: ShipmentRef | None = None
    source: str


class VeuStatus(_Out):
    veu_id: str
    entity: str
    kind: str
    headquarters_country: str
    as_of: dt.date
    rule: str | None
    known_at: int | None
    computed_at_position: int
    valid_on_as_of: bool
    shipments: int
    shipped_tpp: int
    by_country: dict[str, int]
    base_tpp: int | None
    base_source: str | None
    limits: list[LimitUsage]
    breaches: list[str]
    not_valid_shipments: int
    not_valid_tpp: int
    note: str | None = None


def _share(used: int, base: int) -> Fraction:
    return Fraction(used, base) if base else Fraction(0)


def _fmt(f: Fraction) -> str:
    """A share as a decimal string with 4 places (display; comparisons use fractions)."""
    return f"{float(f):.4f}"


def veu_status(state: LedgerState, veu_id: str, as_of: dt.date, rule: RuleBook | None, *,
               known_at: int | None = None) -> VeuStatus:
    """The VEU's usage against each limit on ``as_of`` under ``rule``.

    Raises NotFound when the VEU was never granted (as known)."""
    veu = state.veus.get(veu_id)
    if veu is None:
        known = ", ".join(sorted(state.veus)) or "none granted"
        raise NotFound(f"VEU {veu_id!r} was never granted (known: {known})")
    version = veu.version_on(as_of)
    valid_now = (veu.valid_from <= as_of
                 and (version.valid_to is None or as_of <= version.valid_to)
                 and (veu.revoked_on is None or as_of < veu.revoked_on))
    counted: list[ShipmentRow] = []
    not_valid: list[ShipmentRow] = []
    for row in state.shipments.values():
        f = row.fields
        if row.voided or f.ship_date > as_of:
            continue
        if f.authorization.kind != "veu" or f.authorization.ref != veu_id:
            continue
        v = veu.version_on(f.ship_date)
        check = veu_check(veu_id, exists=True, covered_countries=v.covered_countries,
                          valid_from=veu.valid_from, valid_to=v.valid_to,
                          revoked_on=veu.revoked_on, destination=f.destination,
                          ship_date=f.ship_date)
        (counted if check.valid else not_valid).append(row)
    counted.sort(key=lambda r: (r.fields.ship_date, r.position))
    by_country: dict[str, int] = {}
    for row in counted:
        by_country[row.fields.destination] = by_country.get(row.fields.destination, 0) + row.tpp
    shipped = sum(by_country.values())

    limits: list[LimitUsage] = []
    note: str | None = None
    base: int | None = None
    base_source: str | None = None
    rules = None if rule is None else rule.veu
    if veu.kind == "universal":
        if version.limits.total_compute_tpp is not None:
            base, base_source = version.limits.total_compute_tpp, "grant limits.total_compute_tpp"
        else:
            base, base_source = shipped, "shipments recorded under the VEU (incl. tier 1, US)"
        u = None if rules is None else rules.universal
        if rule is None or u is None or rule.tiers is None:
            note = (f"{'no rule revision' if rule is None else rule.id} sets no universal "
                    "VEU limits; try --rule ai-diffusion-2025 or --on-the-books")
        else:
            src = u.source
            single = Fraction(str(u.max_share_single_non_tier1))
            for country, used in sorted(by_country.items()):
                if rule.tier_of(country) == 1:
                    continue
                share = _share(used, base)
                limits.append(LimitUsage(
                    limit=f"max-share-single-non-tier1:{country}", kind="max-share",
                    scope=country, used_tpp=used, base_tpp=base, share=_fmt(share),
                    limit_share=str(u.max_share_single_non_tier1),
                    remaining_tpp=int(single * base) - used, breach=share > single,
                    source=src))
            outside = sum(t for c, t in by_country.items() if rule.tier_of(c) != 1)
            cap_out = Fraction(str(u.max_share_outside_tier1))
            share = _share(outside, base)
            limits.append(LimitUsage(
                limit="max-share-outside-tier1", kind="max-share", scope="outside tier 1",
                used_tpp=outside, base_tpp=base, share=_fmt(share),
                limit_share=str(u.max_share_outside_tier1),
                remaining_tpp=int(cap_out * base) - outside, breach=share > cap_out,
                source=src))
            if veu.headquarters_country == "US":
                us = by_country.get("US", 0)
                floor = Fraction(str(u.min_share_us_for_us_headquartered))
                share = _share(us, base)
                # With a declared whole-compute base, the entity's US compute is mostly
                # not shipped under the VEU, so the ledger cannot judge the US floor:
                # saying "breach" would be a false alarm.
                assessable = version.limits.total_compute_tpp is None
                limits.append(LimitUsage(
                    limit="min-share-us", kind="min-share", scope="US", used_tpp=us,
                    base_tpp=base, share=_fmt(share) if assessable else None,
                    limit_share=str(u.min_share_us_for_us_headquartered),
                    breach=assessable and base > 0 and share < floor, assessable=assessable,
                    source=src if assessable else src + "; not assessable: the entity's US "
                    "compute is not recorded in the ledger (only shipments under the VEU)"))
    else:
        caps: list[tuple[dt.date | None, int, str]] = []
        if version.limits.cap_tpp is not None:
            caps.append((version.valid_to, version.limits.cap_tpp, "grant limits.cap_tpp"))
        elif rules is not None and rules.national:
            caps = [(n.through, n.tpp, f"{rule.id if rule else ''}: about "  # TPP derived
                     f"{n.h100_equivalents:,} H100e x 15,832 (derived"
                     + (", secondary)" if n.secondary else ")")) for n in rules.national]
        else:
            note = (f"{'no rule revision' if rule is None else rule.id} sets no national "
                    "VEU caps and the grant has no cap_tpp; try --rule ai-diffusion-2025")
        for through, cap, src in caps:
            total, first = 0, None
            for row in counted:
                if through is not None and row.fields.ship_date > through:
                    break
                total += row.tpp
                if first is None and total > cap:
                    first = ShipmentRef(date=row.fields.ship_date, exporter_id=row.exporter_id,
                                        shipment_ref=row.shipment_ref, position=row.position)
            limits.append(LimitUsage(
                limit=f"cumulative-cap-through:{through or 'end'}", kind="cap",
                scope=f"through {through}" if through else "whole authorization",
                used_tpp=total, cap_tpp=cap, through=through, remaining_tpp=cap - total,
                breach=total > cap, first_breach=first, source=src))
    return VeuStatus(
        veu_id=veu_id, entity=version.entity, kind=veu.kind,
        headquarters_country=veu.headquarters_country, as_of=as_of,
        rule=None if rule is None else rule.id, known_at=known_at,
        computed_at_position=state.position if known_at is None else min(known_at,
                                                                          state.position),
        valid_on_as_of=valid_now, shipments=len(counted), shipped_tpp=shipped,
        by_country=dict(sorted(by_country.items())), base_tpp=base, base_source=base_source,
        limits=limits, breaches=[lim.limit for lim in limits if lim.breach],
        not_valid_shipments=len(not_valid), not_valid_tpp=sum(r.tpp for r in not_valid),
        note=note,
    )
