"""``ledger.counting.classify``, branch by branch: the whole Treatment (bucket, flag,
clause id, detail) of one shipment under one revision, for every outcome of the
destination step (tier, cap, license requirement, authorization), the dated group
change of Cambodia on its day, revisions without a tier-3 cap or an LPP exception,
and the catalog facts (density from a die area). Pure: no ledger, no I/O beyond the
bundled rule books and catalog (and one catalog text written to a temporary folder).

The clause id is what ``--explain`` cites and the replay compares, so it is checked
exactly, not only the bucket (mutation testing found the clause ids of several
branches unchecked; tests/MUTATION.md)."""

from __future__ import annotations

import datetime as dt
import importlib.resources
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import counting
from ledger.counting import (
    AuthorizationCheck,
    Bucket,
    Flag,
    ProductFacts,
    Treatment,
    _facts_from_toml,
    classify,
)
from ledger.events import ShipmentFields
from ledger.rulebook import RuleBook, bundled_rulebooks

BOOKS = {b.id: b for b in bundled_rulebooks()}
DIFFUSION = BOOKS["ai-diffusion-2025"]
NONENFORCEMENT = BOOKS["diffusion-nonenforcement-2025"]
BASELINE = BOOKS["baseline-2023"]
#: the Diffusion rule as a revision that caps tier 2 but sets no tier-3 cap
NO_TIER3_CAP = DIFFUSION.model_copy(update={
    "id": "no-tier3-cap",
    "caps": DIFFUSION.caps.model_copy(update={"tier3_tpp": None})})
#: the Diffusion rule as a revision with tiers and caps but no LPP exception
NO_LPP = DIFFUSION.model_copy(update={
    "id": "no-lpp",
    "exceptions": DIFFUSION.exceptions.model_copy(update={"lpp": None})})

GOOD_L = AuthorizationCheck("L1", True)
BAD_L = AuthorizationCheck("L1", False, "license 'L1' is for BR, not MX")
GOOD_V = AuthorizationCheck("V1", True)
BAD_V = AuthorizationCheck("V1", False, "VEU 'V1' does not cover MX")


def shipment(dest: str, day: str = "2025-06-01", kind: str = "none", *,
             product: str = "nvidia-h100-sxm", tpp: int = 15_832,
             die_area: str | None = None) -> ShipmentFields:
    ref = {"license": "L1", "veu": "V1"}.get(kind)
    return ShipmentFields(
        ship_date=dt.date.fromisoformat(day), destination=dest, consignee_id="c1",
        product_id=product, quantity=10, tpp_per_unit=tpp,
        authorization={"kind": kind, "ref": ref},
        die_area_mm2=None if die_area is None else Decimal(die_area))


def T(bucket: Bucket, flag: Flag | None, clause: str, detail: str) -> Treatment:
    return Treatment(bucket, flag, clause, detail)


@pytest.mark.parametrize(("rule", "ship", "lic", "veu", "want"), [
    # tier 1
    (DIFFUSION, shipment("FR"), None, None,
     T(Bucket.NONE, None, "tier1", "FR is tier 1: counts against nothing")),
    # no cap under the revision: a valid license, a license required, neither
    (NONENFORCEMENT, shipment("MX", kind="license"), GOOD_L, None,
     T(Bucket.LICENSE, None, "license-required", "under license L1")),
    (NONENFORCEMENT, shipment("CN", kind="license"), BAD_L, None,
     T(Bucket.NONE, Flag.UNLICENSED, "license-required",
       "CN needs a license for this item (license 'L1' is for BR, not MX)")),
    (NONENFORCEMENT, shipment("CN", kind="veu"), None, BAD_V,
     T(Bucket.NONE, Flag.UNLICENSED, "license-required",
       "CN needs a license for this item (VEU 'V1' does not cover MX)")),
    (BASELINE, shipment("CN"), None, None,
     T(Bucket.NONE, Flag.UNLICENSED, "license-required",
       "CN needs a license for this item")),
    (NONENFORCEMENT, shipment("MX"), None, None,
     T(Bucket.NONE, None, "no-cap", "diffusion-nonenforcement-2025 sets no cap for MX")),
    # tier 3
    (DIFFUSION, shipment("CN", kind="license"), GOOD_L, None,
     T(Bucket.LICENSE, None, "tier3",
       "tier 3 under license L1: depletes it, counts against the tier-3 cap")),
    (DIFFUSION, shipment("CN", kind="license"), BAD_L, None,
     T(Bucket.CAP, Flag.PROHIBITED, "tier3",
       "CN is tier 3: prohibited without a license (license 'L1' is for BR, not MX)")),
    (DIFFUSION, shipment("CN"), None, None,
     T(Bucket.CAP, Flag.PROHIBITED, "tier3", "CN is tier 3: prohibited without a license")),
    # tier 2 with a cap: VEU, LPP, license, none
    (DIFFUSION, shipment("MX", kind="veu"), None, GOOD_V,
     T(Bucket.VEU, None, "tier2-veu", "under VEU V1: counts against the VEU's limits")),
    (DIFFUSION, shipment("MX", kind="veu"), None, BAD_V,
     T(Bucket.CAP, Flag.VEU_INVALID, "tier2-unlicensed",
       "VEU not valid (VEU 'V1' does not cover MX): counts against the country cap")),
    (DIFFUSION, shipment("MX", kind="lpp"), None, None,
     T(Bucket.LPP, None, "tier2-lpp",
       "LPP: counts against the consignee's calendar-year limit")),
    (NO_LPP, shipment("MX", kind="lpp"), None, None,
     T(Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
       "no-lpp has no LPP exception: counts against the country cap")),
    (DIFFUSION, shipment("MX", kind="license"), GOOD_L, None,
     T(Bucket.LICENSE, None, "tier2-license", "under license L1: depletes the allocation")),
    (DIFFUSION, shipment("MX", kind="license"), BAD_L, None,
     T(Bucket.CAP, Flag.LICENSE_INVALID, "tier2-unlicensed",
       "license not valid (license 'L1' is for BR, not MX): counts against the country cap")),
    (DIFFUSION, shipment("MX"), None, None,
     T(Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
       "no authorization: counts against the country cap")),
])
def test_each_outcome_of_the_destination_step(
        rule: RuleBook, ship: ShipmentFields, lic: AuthorizationCheck | None,
        veu: AuthorizationCheck | None, want: Treatment) -> None:
    assert classify(ship, rule, license=lic, veu=veu) == want


def test_cambodia_is_tier_3_until_it_leaves_d5_on_2026_02_03() -> None:
    """The tier is the one of the ship date (country groups are dated), not the one
    after every dated change."""
    assert classify(shipment("KH", "2026-02-02"), DIFFUSION) == T(
        Bucket.CAP, Flag.PROHIBITED, "tier3", "KH is tier 3: prohibited without a license")
    assert classify(shipment("KH", "2026-02-03"), DIFFUSION) == T(
        Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
        "no authorization: counts against the country cap")


def test_a_revision_without_a_tier3_cap_requires_a_license_instead() -> None:
    """No tier-3 cap: a tier-3 destination is not capped, so the license requirement
    decides (the cap of the ship date: Cambodia while in D:5)."""
    assert NO_TIER3_CAP.cap_for("CN") is None and NO_TIER3_CAP.cap_for("MX") == 790_000_000
    assert classify(shipment("CN"), NO_TIER3_CAP) == T(
        Bucket.NONE, Flag.UNLICENSED, "license-required", "CN needs a license for this item")
    assert classify(shipment("KH", "2025-06-01"), NO_TIER3_CAP) == T(
        Bucket.NONE, Flag.UNLICENSED, "license-required", "KH needs a license for this item")
    assert classify(shipment("CN", kind="license"), NO_TIER3_CAP, license=GOOD_L) == T(
        Bucket.LICENSE, None, "license-required", "under license L1")


def test_a_catalog_product_below_the_thresholds_says_its_density_and_nothing_else() -> None:
    """The H20's catalog density (2.9, a sourced statement) puts it below the 3A090.a
    density threshold: the detail gives TPP and density, no declared die area."""
    assert classify(shipment("MX", product="nvidia-h20", tpp=2_368), DIFFUSION) == T(
        Bucket.NONE, None, "uncontrolled",
        "2368 TPP per unit, performance density 2.9: below the control thresholds")


def test_a_controlled_catalog_product_with_a_density_adds_no_note() -> None:
    assert classify(shipment("MX", product="nvidia-a100", tpp=4_992), DIFFUSION) == T(
        Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
        "no authorization: counts against the country cap")


@pytest.mark.parametrize(("tpp", "die", "want"), [
    (5_000, "800", T(Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
                     "no authorization: counts against the country cap [5000 TPP per unit, "
                     "performance density 6.25 (declared die area 800 mm²; 3A090.a)]")),
    (2_000, "400", T(Bucket.NONE, None, "uncontrolled",
                     "2000 TPP per unit, performance density 5 (declared die area 400 mm²; "
                     "3A090.b): below the control thresholds")),
    (2_000, "1000", T(Bucket.NONE, None, "uncontrolled",
                      "2000 TPP per unit, performance density 2 (declared die area 1000 mm²; "
                      "below 3A090.a and 3A090.b): below the control thresholds")),
])
def test_a_declared_die_area_names_its_3a090_paragraph(tpp: int, die: str,
                                                       want: Treatment) -> None:
    ship = shipment("MX", product="custom-asic", tpp=tpp, die_area=die)
    assert classify(ship, DIFFUSION) == want


def test_a_catalog_die_area_gives_the_density(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No bundled product has a die area yet (rules-facts.md gives none); one that gets
    one is read as TPP / die area, exactly, before any density statement."""
    (tmp_path / "products.toml").write_text(
        '[[products]]\nid = "die-chip"\ntpp_per_unit = 4000\ndie_area_mm2 = 640\n'
        '[products.density]\nperformance_density = "1.5"\n'
        '[[products]]\nid = "stated-chip"\ntpp_per_unit = 4000\norigin = "non-us"\n'
        '[products.density]\nperformance_density = "1.5"\n'
        '[[products]]\nid = "bare-chip"\ntpp_per_unit = 4000\n', encoding="utf-8")
    monkeypatch.setattr(importlib.resources, "files", lambda _package: tmp_path)
    assert _facts_from_toml() == {
        "die-chip": ProductFacts(Decimal("6.25"), True),
        "stated-chip": ProductFacts(Decimal("1.5"), False),
        "bare-chip": ProductFacts(None, True),
    }


def test_gp10_names_the_instrument_of_the_guidance_not_the_revision() -> None:
    """Under a later revision composed with the 2025-05-13 guidance, the detail names
    the instrument the product rule comes from."""
    ship = shipment("MX", "2026-03-01", product="huawei-ascend-910b", tpp=5_120)
    assert classify(ship, BOOKS["h200-china-2026"]) == T(
        Bucket.NONE, Flag.GP10_ASCEND, "gp10-ascend",
        "huawei-ascend-910b is named by the guidance of diffusion-nonenforcement-2025: "
        "dealing in it may violate General Prohibition 10; never counted against a cap")


def test_a_product_not_of_us_origin_counts_against_no_cap() -> None:
    ship = shipment("MX", "2025-03-01", product="huawei-ascend-910b", tpp=5_120)
    assert classify(ship, DIFFUSION) == T(
        Bucket.NONE, None, "not-us-origin",
        "huawei-ascend-910b is not US-origin: counts against no US country cap")


def test_an_unknown_product_below_every_threshold_gives_no_density() -> None:
    assert classify(shipment("MX", product="custom-asic", tpp=1_000), DIFFUSION) == T(
        Bucket.NONE, None, "uncontrolled",
        "1000 TPP per unit: below the control thresholds")


def test_unknown_density_between_the_thresholds_counts_as_controlled_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not in the catalog: 'no die area declared'; in the catalog without a density
    (no bundled chip is, so one is added to the loaded facts): no such words."""
    unknown = "no authorization: counts against the country cap [2000 TPP per unit, " \
              "performance density unknown: treated as controlled"
    assert classify(shipment("MX", product="custom-asic", tpp=2_000), DIFFUSION) == T(
        Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed", unknown + "; no die area declared]")
    assert counting.product_facts("nvidia-h100-sxm") is not None  # the facts are loaded
    monkeypatch.setitem(counting._FACTS, "mid-chip", ProductFacts(None, True))
    monkeypatch.setitem(counting._FACTS, "dense-chip", ProductFacts(Decimal("8"), True))
    assert classify(shipment("MX", product="mid-chip", tpp=2_000), DIFFUSION) == T(
        Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed", unknown + "]")
    # a catalog density above the threshold: controlled, nothing to add
    assert classify(shipment("MX", product="dense-chip", tpp=2_000), DIFFUSION) == T(
        Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
        "no authorization: counts against the country cap")


def test_unknown_density_is_judged_at_the_lowest_density_zero() -> None:
    """A revision whose density threshold is 0.5: a chip of unknown density is
    controlled anyway, but the note says so only if it would not be at density 0."""
    low = DIFFUSION.model_copy(update={"control": DIFFUSION.control.model_copy(update={
        "thresholds": [DIFFUSION.control.thresholds[1].model_copy(
            update={"min_performance_density": Decimal("0.5")})]})})
    assert classify(shipment("MX", product="custom-asic", tpp=2_000), low) == T(
        Bucket.CAP, Flag.UNLICENSED, "tier2-unlicensed",
        "no authorization: counts against the country cap [2000 TPP per unit, performance "
        "density unknown: treated as controlled; no die area declared]")


def test_a_product_rule_naming_a_destination_requires_a_license_there() -> None:
    """The rule names the H20 for Mexico, outside every license-required group: the
    H20 (below the thresholds by its density) needs a license there all the same."""
    book = BOOKS["h20-license-2025"]
    named = book.control.product_rules[0].model_copy(
        update={"destinations": ["MX"], "destination_groups": []})
    book = book.model_copy(update={"control": book.control.model_copy(
        update={"product_rules": [named]})})
    ship = shipment("MX", "2025-06-01", product="nvidia-h20", tpp=2_368)
    assert classify(ship, book) == T(Bucket.NONE, Flag.UNLICENSED, "license-required",
                                     "MX needs a license for this item")


def test_tier3_with_an_invalid_veu_gives_the_veus_reason() -> None:
    assert classify(shipment("CN", kind="veu"), DIFFUSION, veu=BAD_V) == T(
        Bucket.CAP, Flag.PROHIBITED, "tier3",
        "CN is tier 3: prohibited without a license (VEU 'V1' does not cover MX)")


def test_the_catalog_facts_are_read_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "_FACTS", {})
    assert counting.product_facts("nvidia-h20") == ProductFacts(Decimal("2.9"), True)
    assert counting.product_facts("huawei-ascend-910c") == ProductFacts(None, False)
    assert counting.product_facts("custom-asic") is None
