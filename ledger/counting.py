"""Counting a shipment under a rule revision (BRIEF.md, Jan 2025 rule semantics).

Pure functions: given a shipment, the rule book, and what the named license or VEU
looked like on the ship date, say which bucket the shipment counts in, which flag it
raises, and which clause of the rule book decided it.

The order of the steps (README, "How a shipment counts"):

1. a product rule of the ``gp10`` kind (Huawei Ascend, from the 2025-05-13 guidance):
   flagged ``gp10-ascend``, counted against nothing;
2. a product that is not US-origin (catalog ``origin: non-us``): counted against no
   US cap;
3. classification: a product not named by a license-required product rule is
   controlled only if its TPP and performance density (catalog: die area or a
   sourced density statement; a product not in the catalog: the die area the
   shipment declares with its TPP) meet a threshold of the rule book; unknown density
   between 1,600 and 4,800 TPP counts as controlled, and the detail says so;
4. the destination's tier, cap and license requirement on the ship date (country
   groups are dated: Cambodia leaves D:5 on 2026-02-03), then the authorization.

Amount-dependent outcomes (LPP over the consignee's yearly limit, a license shipped
past its amount) are settled by the fold in ``projections.positions``, which sees the
running totals.

Buckets:
    none     counts against nothing (tier 1, uncontrolled, no cap under the revision)
    cap      counts against the country cap directly
    license  depletes a license allocation (itself carved out of the cap)
    lpp      counts against the consignee's calendar-year LPP limit
    veu      counts against the VEU's own limits
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ledger.classification import classify_3a090, performance_density, shown_density
from ledger.events import ShipmentFields
from ledger.rulebook import RuleBook


class Bucket(StrEnum):
    NONE = "none"
    CAP = "cap"
    LICENSE = "license"
    LPP = "lpp"
    VEU = "veu"


class Flag(StrEnum):
    UNLICENSED = "unlicensed"
    PROHIBITED = "prohibited"
    LPP_EXCESS = "lpp-excess"
    LICENSE_EXCESS = "license-excess"
    LICENSE_INVALID = "license-invalid"
    VEU_INVALID = "veu-invalid"
    GP10_ASCEND = "gp10-ascend"


@dataclass(frozen=True)
class AuthorizationCheck:
    """Whether the license or VEU a shipment names was usable on its ship date."""

    ref: str
    valid: bool
    reason: str = ""


@dataclass(frozen=True)
class Treatment:
    bucket: Bucket
    flag: Flag | None
    clause: str
    detail: str


def license_check(
    ref: str,
    *,
    exists: bool,
    country: str | None,
    holder: str | None,
    valid_from: dt.date | None,
    valid_to: dt.date | None,
    revoked_on: dt.date | None,
    exporter_id: str,
    destination: str,
    ship_date: dt.date,
) -> AuthorizationCheck:
    """Is allocation ``ref`` a license the exporter may ship under to this destination
    on this date? Returns the check with the first reason it fails."""
    if not exists:
        return AuthorizationCheck(ref, False, f"allocation {ref!r} is not known to the ledger")
    if holder is None:
        return AuthorizationCheck(ref, False, f"allocation {ref!r} is a country-level "
                                              "allocation, not a license")
    if holder != exporter_id:
        return AuthorizationCheck(ref, False, f"license {ref!r} is held by {holder!r}, "
                                              f"not {exporter_id!r}")
    if country != destination:
        return AuthorizationCheck(ref, False, f"license {ref!r} is for {country}, "
                                              f"not {destination}")
    assert valid_from is not None
    if ship_date < valid_from:
        return AuthorizationCheck(ref, False, f"license {ref!r} starts {valid_from}, "
                                              f"after the ship date {ship_date}")
    if valid_to is not None and ship_date > valid_to:
        return AuthorizationCheck(ref, False, f"license {ref!r} expired {valid_to}, "
                                              f"before the ship date {ship_date}")
    if revoked_on is not None and ship_date >= revoked_on:
        return AuthorizationCheck(ref, False, f"license {ref!r} was revoked from {revoked_on}")
    return AuthorizationCheck(ref, True)


def veu_check(
    ref: str,
    *,
    exists: bool,
    covered_countries: list[str] | None,
    valid_from: dt.date | None,
    valid_to: dt.date | None,
    revoked_on: dt.date | None,
    destination: str,
    ship_date: dt.date,
) -> AuthorizationCheck:
    """Is VEU ``ref`` valid for this destination on this date (as amended by then)?"""
    if not exists:
        return AuthorizationCheck(ref, False, f"VEU {ref!r} is not known to the ledger")
    assert valid_from is not None and covered_countries is not None
    if destination not in covered_countries:
        return AuthorizationCheck(ref, False, f"VEU {ref!r} does not cover {destination}")
    if ship_date < valid_from:
        return AuthorizationCheck(ref, False, f"VEU {ref!r} starts {valid_from}, "
                                              f"after the ship date {ship_date}")
    if valid_to is not None and ship_date > valid_to:
        return AuthorizationCheck(ref, False, f"VEU {ref!r} ended {valid_to}, "
                                              f"before the ship date {ship_date}")
    if revoked_on is not None and ship_date >= revoked_on:
        return AuthorizationCheck(ref, False, f"VEU {ref!r} was revoked from {revoked_on}")
    return AuthorizationCheck(ref, True)


@dataclass(frozen=True)
class ProductFacts:
    """What counting needs to know about a product beyond its TPP."""

    #: performance density (TPP / die area), None: unknown
    density: Decimal | None
    us_origin: bool = True


_FACTS: dict[str, ProductFacts | None] = {}


def product_facts(product_id: str) -> ProductFacts | None:
    """The catalog's facts about ``product_id`` (None: not in the catalog).

    Read straight from ``ledger/data/products.toml`` with the standard library, not
    through the validated ``ledger.catalog`` models: a quota answer pays for one small
    TOML parse, not for the catalog's models (a test checks both agree)."""
    if not _FACTS:
        _FACTS.update(_facts_from_toml())
    return _FACTS.get(product_id)


def _facts_from_toml() -> dict[str, ProductFacts | None]:
    import tomllib
    from importlib import resources

    text = (resources.files("ledger.data") / "products.toml").read_text(encoding="utf-8")
    out: dict[str, ProductFacts | None] = {}
    for p in tomllib.loads(text)["products"]:
        density = None
        if p.get("die_area_mm2") is not None:
            density = performance_density(p["tpp_per_unit"], Decimal(str(p["die_area_mm2"])))
        elif p.get("density") is not None:
            density = Decimal(str(p["density"]["performance_density"]))
        out[p["id"]] = ProductFacts(density, p.get("origin", "us") == "us")
    return out


def classify(
    shipment: ShipmentFields,
    rule: RuleBook,
    *,
    license: AuthorizationCheck | None = None,
    veu: AuthorizationCheck | None = None,
) -> Treatment:
    """How one shipment counts under ``rule``, on its ship date.

    ``license``/``veu`` are the checks of the authorization the shipment names (pass
    the one matching ``shipment.authorization.kind``).
    """
    dest = shipment.destination
    day = shipment.ship_date
    product_rule = rule.product_rule_for(shipment.product_id, dest, day)
    if product_rule is not None and product_rule.treatment == "gp10":
        return Treatment(Bucket.NONE, Flag.GP10_ASCEND, "gp10-ascend",
                         f"{shipment.product_id} is named by the guidance of "
                         f"{product_rule.instrument or rule.id}: dealing in it may violate "
                         "General Prohibition 10; never counted against a cap")
    facts = product_facts(shipment.product_id)
    if facts is not None and not facts.us_origin:
        return Treatment(Bucket.NONE, None, "not-us-origin",
                         f"{shipment.product_id} is not US-origin: counts against no "
                         "US country cap")
    density, declared = _density(shipment, facts)
    note = ""
    if product_rule is None:
        if not rule.is_controlled(shipment.tpp_per_unit, density):
            pd = "" if density is None else f", performance density {shown_density(density)}"
            return Treatment(Bucket.NONE, None, "uncontrolled",
                             f"{shipment.tpp_per_unit} TPP per unit{pd}{declared}: below the "
                             "control thresholds")
        if density is None and not rule.is_controlled(shipment.tpp_per_unit, Decimal(0)):
            note = (f" [{shipment.tpp_per_unit} TPP per unit, performance density "
                    "unknown: treated as controlled"
                    + ("; no die area declared" if facts is None else "") + "]")
        elif declared and density is not None:
            note = (f" [{shipment.tpp_per_unit} TPP per unit, performance density "
                    f"{shown_density(density)}{declared}]")
    treatment = _by_destination(shipment, rule, product_rule is not None, license, veu)
    if note:
        return Treatment(treatment.bucket, treatment.flag, treatment.clause,
                         treatment.detail + note)
    return treatment


def _density(shipment: ShipmentFields, facts: ProductFacts | None
             ) -> tuple[Decimal | None, str]:
    """The product's performance density (None: unknown), and, when it comes from the
    shipment's declared die area, the words saying so with its 3A090 paragraph.

    A catalog product's density is the catalog's; a product not in the catalog has
    one only if the shipment declares its die area (validation refuses a die area for
    a catalog product; should one be stored anyway, the catalog still decides). The
    density and the paragraph come from ``ledger.classification``, the code ``ledger
    products show --tpp N --die-area MM2`` uses, so both say the same of one chip."""
    if facts is not None or shipment.die_area_mm2 is None:
        return (None if facts is None else facts.density), ""
    density = performance_density(shipment.tpp_per_unit, shipment.die_area_mm2)
    paragraph = classify_3a090(shipment.tpp_per_unit, density).paragraph
    return density, (f" (declared die area {shipment.die_area_mm2} mm²; "
                     f"{paragraph or 'below 3A090.a and 3A090.b'})")


def _by_destination(shipment: ShipmentFields, rule: RuleBook, named: bool,
                    license: AuthorizationCheck | None,
                    veu: AuthorizationCheck | None) -> Treatment:
    """Step 4: a controlled (or product-rule-named) shipment by tier, cap, license
    requirement and authorization on its ship date."""
    dest = shipment.destination
    day = shipment.ship_date
    kind = shipment.authorization.kind
    licensed = kind == "license" and license is not None and license.valid
    tier = rule.tier_of(dest, day)
    cap = rule.cap_for(dest, day)

    if tier == 1:
        return Treatment(Bucket.NONE, None, "tier1", f"{dest} is tier 1: counts against nothing")

    if cap is None:
        # No cap for this destination under the revision (no tiers, or caps not set).
        if licensed:
            return Treatment(Bucket.LICENSE, None, "license-required",
                             f"under license {license.ref}")  # type: ignore[union-attr]
        needs_license = rule.license_required_on(dest, day) or named
        if needs_license:
            why = _invalid_reason(kind, license, veu)
            return Treatment(Bucket.NONE, Flag.UNLICENSED, "license-required",
                             f"{dest} needs a license for this item{why}")
        return Treatment(Bucket.NONE, None, "no-cap",
                         f"{rule.id} sets no cap for {dest}")

    if tier == 3:
        if licensed:
            return Treatment(Bucket.LICENSE, None, "tier3",
                             f"tier 3 under license {license.ref}: depletes it, "  # type: ignore[union-attr]
                             "counts against the tier-3 cap")
        return Treatment(Bucket.CAP, Flag.PROHIBITED, "tier3",
                         f"{dest} is tier 3: prohibited without a license"
                         f"{_invalid_reason(kind, license, veu)}")

    # tier 2 with a cap
    if kind == "veu":
        if veu is not None and veu.valid:
            return Treatment(Bucket.VEU, None, "tier2-veu",
                             f"under VEU {veu.ref}: counts against the VEU's limits")
        return Treatment(Bucket.CAP, Flag.VEU_INVALID, "tier2-unlicensed",
                         f"VEU not valid{_invalid_reason(kind, license, veu)}: "
                         "counts against the country cap")
    if kind == "lpp":
        if rule.lpp_limit() is not None:
            return Treatment(Bucket.LPP, None, "tier2-lpp",
                             "LPP: counts against the consignee's calendar-year limit")
        return Treatment(Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
                         f"{rule.id} has no LPP exception: counts against the country cap")
    if kind == "license":
        if licensed:
            return Treatment(Bucket.LICENSE, None, "tier2-license",
                             f"under license {license.ref}: depletes the allocation")  # type: ignore[union-attr]
        return Treatment(Bucket.CAP, Flag.LICENSE_INVALID, "tier2-unlicensed",
                         f"license not valid{_invalid_reason(kind, license, veu)}: "
                         "counts against the country cap")
    return Treatment(Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
                     "no authorization: counts against the country cap")


def _invalid_reason(kind: str, license: AuthorizationCheck | None,
                    veu: AuthorizationCheck | None) -> str:
    check = license if kind == "license" else veu if kind == "veu" else None
    if check is not None and not check.valid:
        return f" ({check.reason})"
    return ""


def lpp_excess(previous_total: int, amount: int, limit: int) -> int:
    """The part of ``amount`` that takes a consignee's year total over ``limit``."""
    return max(0, min(amount, previous_total + amount - limit))


def license_excess(previous_shipped: int, amount: int, allocation_amount: int) -> int:
    """The part of a license shipment beyond what the license holds."""
    return max(0, min(amount, previous_shipped + amount - allocation_amount))
