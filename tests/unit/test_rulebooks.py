"""The bundled rule books and product catalog: they load, validate, and carry the
figures of shared/domain/rules-facts.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pydantic
import pytest
import yaml

from ledger import errors
from ledger.catalog import bundled_catalog
from ledger.rulebook import (
    CLAUSE_IDS,
    RuleBook,
    bundled_rulebook,
    bundled_rulebooks,
    in_force,
    on_the_books,
    parse_rulebook,
)

IDS = {
    "baseline-2023",
    "ai-diffusion-2025",
    "h20-license-2025",
    "diffusion-nonenforcement-2025",
    "h200-china-2026",
}

# rules-facts.md R1: the US and 18 destinations (Supp. No. 5 to Part 740 (a))
TIER1 = {
    "US", "AU", "BE", "CA", "DK", "FI", "FR", "DE", "IE", "IT",
    "JP", "NL", "NZ", "NO", "KR", "ES", "SE", "TW", "GB",
}  # fmt: skip
# rules-facts.md R1 (D:5 members named, plus Macau) and Cambodia (D:5 until 2026-02-03)
D5_NAMED = {"CN", "HK", "MO", "RU", "IR", "KP", "BY", "VE", "NI", "SY", "CU", "AF", "MM", "KH"}

D = dt.date


def book(rule_id: str) -> RuleBook:
    return bundled_rulebook(rule_id)


def as_dict(rule_id: str) -> dict[str, Any]:
    return book(rule_id).model_dump(mode="json")


# --- loading --------------------------------------------------------------------------


def test_all_five_load_with_exact_ids() -> None:
    books = bundled_rulebooks()
    assert len(books) == 5
    assert {b.id for b in books} == IDS


def test_bundled_books_are_ordered_by_effective_date() -> None:
    effective = [b.effective for b in bundled_rulebooks()]
    assert effective == sorted(effective)
    assert next(b.id for b in bundled_rulebooks()) == "baseline-2023"


@pytest.mark.parametrize("rule_id", sorted(IDS))
def test_every_clause_id_is_cited(rule_id: str) -> None:
    b = book(rule_id)
    # gp10-ascend is cited by the books that carry the 2025-05-13 guidance
    gp10 = any(r.treatment == "gp10" for r in b.control.product_rules)
    wanted = set(CLAUSE_IDS) - (set() if gp10 else {"gp10-ascend"})
    assert set(b.clauses) == wanted
    for clause_id in wanted:
        clause = b.clauses[clause_id]
        assert clause.text.strip(), clause_id
        assert clause.citation.strip(), clause_id


@pytest.mark.parametrize("rule_id", sorted(IDS))
def test_every_book_has_sources_citation_and_thresholds(rule_id: str) -> None:
    b = book(rule_id)
    assert b.citation.strip()
    assert b.sources
    assert b.control.source.strip()
    assert b.notes


@pytest.mark.parametrize("rule_id", sorted(IDS))
def test_dump_and_revalidate_round_trips(rule_id: str) -> None:
    b = book(rule_id)
    assert RuleBook.model_validate(b.model_dump(mode="json")) == b
    assert parse_rulebook(yaml.safe_dump(b.model_dump(mode="json"))) == b


def test_supersedes_point_at_earlier_bundled_books() -> None:
    by_id = {b.id: b for b in bundled_rulebooks()}
    assert by_id["baseline-2023"].supersedes == []
    for b in by_id.values():
        for old in b.supersedes:
            assert old in by_id
            assert by_id[old].effective <= b.effective
    assert by_id["ai-diffusion-2025"].supersedes == ["baseline-2023"]
    assert "ai-diffusion-2025" in by_id["diffusion-nonenforcement-2025"].supersedes
    assert by_id["h200-china-2026"].supersedes == ["diffusion-nonenforcement-2025"]


# --- figures of rules-facts.md ---------------------------------------------------------


def test_ai_diffusion_figures() -> None:
    b = book("ai-diffusion-2025")
    assert b.citation.startswith("90 FR 4544")
    assert "2025-00636" in b.citation and "0694-AJ90" in b.citation
    assert (b.published, b.effective) == (D(2025, 1, 15), D(2025, 1, 13))
    assert b.enforcement.begins == D(2025, 5, 15)
    assert b.enforcement.suspended == D(2025, 5, 13)
    assert b.enforcement.rescinded is None
    cap = b.caps.tier2
    assert cap is not None
    assert cap.tpp == 790_000_000
    assert cap.cumulative is True
    assert (cap.period.start, cap.period.end) == (D(2025, 1, 1), D(2027, 12, 31))
    assert cap.source
    assert b.caps.tier3_tpp == 0
    assert b.caps.tier3_source
    assert b.lpp_limit() == 26_900_000
    assert b.exceptions.lpp is not None and "740.29" in b.exceptions.lpp.source


def test_ai_diffusion_veu_limits() -> None:
    veu = book("ai-diffusion-2025").veu
    assert veu is not None and veu.universal is not None
    u = veu.universal
    assert u.max_share_single_non_tier1 == Decimal("0.07")
    assert u.max_share_outside_tier1 == Decimal("0.25")
    assert u.min_share_us_for_us_headquartered == Decimal("0.50")
    national = [(n.through, n.h100_equivalents) for n in veu.national]
    assert national == [
        (D(2025, 12, 31), 100_000),
        (D(2026, 12, 31), 270_000),
        (D(2027, 12, 31), 320_000),
    ]
    assert all(n.secondary for n in veu.national)
    assert "320,000 over two years" in (veu.national[-1].note or "")


def test_secondary_figures_are_listed_in_notes() -> None:
    notes = " ".join(book("ai-diffusion-2025").notes)
    assert "49,899" in notes and "49,901" in notes
    assert "1,580,000,000" in notes
    assert "SECONDARY" in notes


def test_tiers() -> None:
    from ledger.countries import COUNTRY_NAMES

    # the Diffusion rule's tiers, as on the books, in every composition that has it
    # (h200-china-2026 now shows them too: the Diffusion rule is on the books beside
    # the H200 rule, issue 13 defect 2); tier 3 is dated through the d5 group
    for rule_id in ("ai-diffusion-2025", "diffusion-nonenforcement-2025", "h200-china-2026"):
        b = book(rule_id)
        assert b.tiers is not None and b.tiers.default == 2
        assert {c for c in COUNTRY_NAMES if b.tier_of(c, D(2025, 6, 1)) == 1} == TIER1
        assert len(TIER1) == 19
        assert {c for c in COUNTRY_NAMES if b.tier_of(c, D(2025, 6, 1)) == 3} == D5_NAMED
        assert {c for c in COUNTRY_NAMES if b.tier_of(c, D(2026, 2, 3)) == 3} == D5_NAMED - {"KH"}
        assert b.tiers.note and "partial" in b.tiers.note.lower()
    for rule_id in ("baseline-2023", "h20-license-2025"):
        b = book(rule_id)
        assert b.tiers is None
    for rule_id in ("baseline-2023", "h20-license-2025", "h200-china-2026"):
        b = book(rule_id)
        assert b.caps.tier2 is None and b.caps.tier3_tpp is None


def test_nonenforcement_has_no_caps_no_lpp() -> None:
    b = book("diffusion-nonenforcement-2025")
    assert b.caps.tier2 is None and b.caps.tier3_tpp is None
    assert b.lpp_limit() is None
    assert (b.published, b.effective, b.enforcement.begins) == (D(2025, 5, 13),) * 3
    notes = " ".join(b.notes)
    assert "General Prohibition 10" in notes
    assert "B-337935" in notes


@pytest.mark.parametrize("rule_id", sorted(IDS))
def test_control_thresholds(rule_id: str) -> None:
    t = [(x.eccn, x.min_tpp, x.min_performance_density) for x in book(rule_id).control.thresholds]
    assert t == [("3A090.a", 4800, None), ("3A090.a", 1600, Decimal("5.92"))]
    assert "CSET" in book(rule_id).control.source
    assert any("3A090.b" in n for n in book(rule_id).notes)


@pytest.mark.parametrize("rule_id", sorted(IDS))
def test_license_required_for_china_macau_and_d5(rule_id: str) -> None:
    from ledger.countries import COUNTRY_NAMES

    b = book(rule_id)
    assert {c for c in COUNTRY_NAMES if b.license_required_on(c, D(2025, 6, 1))} == D5_NAMED
    # Cambodia left D:5 on 2026-02-03 (issue 13 defect 3)
    assert {c for c in COUNTRY_NAMES
            if b.license_required_on(c, D(2026, 2, 3))} == D5_NAMED - {"KH"}


def test_baseline_dates_and_unverified_citation() -> None:
    b = book("baseline-2023")
    assert (b.published, b.effective, b.enforcement.begins) == (
        D(2023, 10, 25), D(2023, 11, 17), D(2023, 11, 17),
    )  # fmt: skip
    assert "88 FR 73458" in b.citation
    assert any("UNVERIFIED" in n for n in b.notes)


def test_h200_figures() -> None:
    b = book("h200-china-2026")
    assert "91 FR 1684" in b.citation
    assert "2026-00789" in b.citation and "0694-AK43" in b.citation
    assert (b.published, b.effective, b.enforcement.begins) == (D(2026, 1, 15),) * 3
    notes = " ".join(b.notes)
    for needle in ("21,000", "6,500", "50%", "25%", "2026-01-14", "third-party testing"):
        assert needle in notes, needle


def test_h20_book() -> None:
    b = book("h20-license-2025")
    assert b.enforcement.begins == D(2025, 4, 9)
    assert "SEC filing" in b.citation


# --- in force -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2024, 6, 1), "baseline-2023"),
        (D(2025, 2, 1), "baseline-2023"),
        (D(2025, 4, 20), "h20-license-2025"),
        (D(2025, 5, 14), "diffusion-nonenforcement-2025"),
        (D(2025, 6, 30), "diffusion-nonenforcement-2025"),
        (D(2025, 12, 31), "diffusion-nonenforcement-2025"),
        (D(2026, 2, 1), "h200-china-2026"),
    ],
)
def test_in_force(day: dt.date, expected: str) -> None:
    found = in_force(bundled_rulebooks(), day)
    assert found is not None and found.id == expected


def test_nothing_in_force_before_baseline() -> None:
    assert in_force(bundled_rulebooks(), D(2023, 11, 16)) is None


def test_ai_diffusion_never_in_force_2025_to_2027() -> None:
    books = bundled_rulebooks()
    diffusion = book("ai-diffusion-2025")
    day = D(2025, 1, 1)
    while day <= D(2027, 12, 31):
        assert not diffusion.enforcement.enforced_on(day), day
        found = in_force(books, day)
        assert found is not None and found.id != "ai-diffusion-2025", day
        day += dt.timedelta(days=1)


def test_ai_diffusion_stays_on_the_books_until_a_later_revision() -> None:
    found = on_the_books(bundled_rulebooks(), D(2025, 3, 1))
    assert found is not None
    assert [i.id for i in found.instruments] == ["oct-2023-rules", "ai-diffusion-2025"]


# --- rule evaluation ------------------------------------------------------------------


def test_cap_for_and_tier_of() -> None:
    diffusion = book("ai-diffusion-2025")
    assert diffusion.tier_of("MX") == 2 and diffusion.cap_for("MX") == 790_000_000
    assert diffusion.tier_of("CN") == 3 and diffusion.cap_for("CN") == 0
    assert diffusion.tier_of("FR") == 1 and diffusion.cap_for("FR") is None
    assert diffusion.tier_of("NO") == 1  # not YAML's boolean "NO"
    nonenf = book("diffusion-nonenforcement-2025")
    assert nonenf.tier_of("MX") == 2 and nonenf.cap_for("MX") is None
    assert nonenf.cap_for("CN") is None
    baseline = book("baseline-2023")
    assert baseline.tier_of("MX") is None and baseline.cap_for("MX") is None


@pytest.mark.parametrize("rule_id", sorted(IDS))
def test_is_controlled(rule_id: str) -> None:
    b = book(rule_id)
    assert b.is_controlled(15_832)  # H100
    assert not b.is_controlled(1_000)
    assert b.is_controlled(2_000)  # density unknown: treated as controlled
    assert not b.is_controlled(2_000, Decimal(3))
    assert b.is_controlled(2_000, Decimal("5.92"))
    assert b.is_controlled(4_800, Decimal(1))


def test_product_rule_for_h20() -> None:
    assert book("h20-license-2025").product_rule_for("nvidia-h20", "CN") is not None
    assert book("h20-license-2025").product_rule_for("nvidia-h20", "MX") is None
    assert book("h20-license-2025").product_rule_for("nvidia-h100-sxm", "CN") is None
    assert book("baseline-2023").product_rule_for("nvidia-h20", "CN") is None
    assert book("ai-diffusion-2025").product_rule_for("nvidia-h20", "CN") is None
    for rule_id in ("diffusion-nonenforcement-2025", "h200-china-2026"):
        for dest in ("CN", "HK", "MO"):
            assert book(rule_id).product_rule_for("nvidia-h20", dest) is not None


# --- catalog --------------------------------------------------------------------------


def test_catalog_has_all_chips() -> None:
    catalog = bundled_catalog()
    expected = {
        "nvidia-h100-sxm": 15_832,
        "nvidia-h200": 15_832,
        "nvidia-h800": 15_832,
        "nvidia-a100": 4_992,
        "nvidia-h20": 2_368,
        "nvidia-b200": 36_000,
        "amd-mi325x": 20_800,
        "huawei-ascend-910b": 5_120,
        "huawei-ascend-910c": 12_800,
    }
    assert {p.id for p in catalog.products} == set(expected)
    for pid, tpp in expected.items():
        assert catalog.require(pid).tpp_per_unit == tpp, pid


def test_catalog_marks_derived_and_secondary() -> None:
    catalog = bundled_catalog()
    kinds = {p.id: p.kind for p in catalog.products}
    assert kinds["nvidia-h100-sxm"] == "derived"
    assert kinds["nvidia-h200"] == "secondary"
    assert kinds["amd-mi325x"] == "secondary"
    for pid in ("nvidia-h800", "nvidia-a100", "nvidia-h20", "nvidia-b200"):
        assert kinds[pid] == "derived", pid
    h100 = catalog.require("nvidia-h100-sxm")
    assert "989.5" in h100.basis and "16" in h100.basis and "derived" in h100.basis
    for p in catalog.products:
        assert p.die_area_mm2 is None
        if p.kind == "derived":
            assert "derived" in p.basis, p.id
        assert p.kind != "official"


def test_catalog_ascend_ranges() -> None:
    catalog = bundled_catalog()
    b910 = catalog.require("huawei-ascend-910b")
    assert (b910.tpp_per_unit_low, b910.tpp_per_unit) == (4_096, 5_120)
    assert b910.note and "disagree" in b910.note
    c910 = catalog.require("huawei-ascend-910c")
    assert "unconfirmed" in c910.basis


def test_catalog_unknown_product() -> None:
    with pytest.raises(errors.UnknownProduct):
        bundled_catalog().require("nvidia-x999")


# --- refusing bad documents -----------------------------------------------------------


def test_negative_cap_is_refused_naming_field_and_value() -> None:
    data = as_dict("ai-diffusion-2025")
    data["caps"]["tier2"]["tpp"] = -5
    with pytest.raises(errors.ValidationError) as info:
        parse_rulebook(yaml.safe_dump(data), origin="bad.yaml")
    assert info.value.field == "caps.tier2.tpp"
    assert info.value.value == -5
    assert "caps.tier2.tpp" in str(info.value)
    assert "-5" in str(info.value)
    assert "bad.yaml" in str(info.value)


def test_unknown_clause_id_is_refused() -> None:
    data = as_dict("baseline-2023")
    data["clauses"]["tier4"] = {"text": "x", "citation": "y"}
    with pytest.raises(errors.ValidationError, match="tier4"):
        parse_rulebook(yaml.safe_dump(data))


def test_tier2_cap_without_tiers_is_refused() -> None:
    data = as_dict("ai-diffusion-2025")
    data["tiers"] = None
    with pytest.raises(errors.ValidationError, match="tiers"):
        parse_rulebook(yaml.safe_dump(data))


def test_bad_country_code_in_mutated_copy_is_refused() -> None:
    data = as_dict("ai-diffusion-2025")
    data["tiers"]["countries"]["XX"] = 2
    with pytest.raises(pydantic.ValidationError, match="XX"):
        RuleBook.model_validate(data)
    with pytest.raises(errors.ValidationError, match="XX"):
        parse_rulebook(yaml.safe_dump(data))


def test_bad_country_code_in_license_required_is_refused() -> None:
    data = as_dict("baseline-2023")
    data["control"]["license_required"].append("ZZ")
    with pytest.raises(errors.ValidationError, match="ZZ"):
        parse_rulebook(yaml.safe_dump(data))


def test_unknown_field_is_refused() -> None:
    data = as_dict("h200-china-2026")
    data["caps"]["tier4_tpp"] = 1
    with pytest.raises(errors.ValidationError, match="tier4_tpp"):
        parse_rulebook(yaml.safe_dump(data))


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(errors.ValidationError):
        parse_rulebook("- just\n- a list\n")
    with pytest.raises(errors.ValidationError):
        parse_rulebook("key: [unclosed\n")


def test_books_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        book("ai-diffusion-2025").caps.tier2.tpp = 1  # type: ignore[union-attr,misc]
