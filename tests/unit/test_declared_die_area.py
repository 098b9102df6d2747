"""A product not in the catalog, shipped with a declared TPP and die area: counting
classifies it by TPP and performance density (PD = TPP / die area), with the code
``ledger products show --tpp N --die-area MM2`` uses; without a die area its density
is unknown and, between 1,600 and 4,800 TPP, it counts as controlled. Boundaries at
the 3A090.a and 3A090.b thresholds of rules-facts.md ("Classification"). No I/O
beyond the bundled rule books and catalog."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from ledger.catalog import bundled_catalog
from ledger.classification import classify_3a090, performance_density
from ledger.commands import parse_command, parse_command_line
from ledger.counting import Bucket, Flag, classify
from ledger.decide import Context, decide
from ledger.errors import ValidationError
from ledger.events import ShipmentCorrected, ShipmentFields, ShipmentRecorded
from ledger.rulebook import RuleBook, bundled_rulebook
from tests.builders import NOW, Scenario

H20 = 2_368
#: the GH100 die the H20 is built on, by the secondary sources of rules-facts.md
#: (PD about 2.9): 2,368 / 814 = 2.909
H20_LIKE_DIE = "814"


def fields(tpp: int, die_area: str | None, dest: str = "CN", day: str = "2024-06-01",
           product: str = "custom-asic") -> ShipmentFields:
    return ShipmentFields(ship_date=dt.date.fromisoformat(day), destination=dest,
                          consignee_id="c1", product_id=product, quantity=10,
                          tpp_per_unit=tpp, authorization={"kind": "none"},
                          die_area_mm2=None if die_area is None else Decimal(die_area))


def baseline() -> RuleBook:
    return bundled_rulebook("baseline-2023")


def counts_as_controlled(tpp: int, die_area: str | None, book: RuleBook | None = None) -> bool:
    """Under the October 2023 rules, China needs a license for a controlled chip: an
    unauthorized controlled shipment is flagged, an uncontrolled one is not."""
    t = classify(fields(tpp, die_area), book or baseline())
    assert (t.flag is Flag.UNLICENSED) == (t.clause != "uncontrolled"), t
    return t.flag is Flag.UNLICENSED


# --- the H20-like chip ---------------------------------------------------------------------


def test_declared_h20_figures_with_a_die_area_are_not_controlled_before_the_notice() -> None:
    t = classify(fields(H20, H20_LIKE_DIE), baseline())
    assert (t.bucket, t.flag, t.clause) == (Bucket.NONE, None, "uncontrolled")
    assert "performance density 2.909 (declared die area 814 mm²; below 3A090.a and " \
           "3A090.b)" in t.detail


def test_declared_h20_figures_without_a_die_area_stay_controlled_and_say_why() -> None:
    t = classify(fields(H20, None), baseline())
    assert (t.bucket, t.flag, t.clause) == (Bucket.NONE, Flag.UNLICENSED, "license-required")
    assert "performance density unknown: treated as controlled; no die area declared" \
        in t.detail


def test_the_scenario_position_agrees() -> None:
    s = Scenario()
    s.ship("D1", "2024-06-01", "CN", 10, product="custom-asic", tpp_per_unit=H20,
           die_area=H20_LIKE_DIE)
    s.ship("U1", "2024-06-01", "CN", 10, product="custom-asic", tpp_per_unit=H20)
    p = s.position("CN", "2024-06-30", "baseline-2023", explain=True)
    assert p.flagged["unlicensed"].count == 1 and p.flagged["unlicensed"].tpp == 10 * H20
    by_ref = {c.identity: c for c in p.contributions or []}
    assert by_ref["acme/D1"].clause == "uncontrolled"
    assert "declared die area 814 mm²" in by_ref["acme/D1"].detail
    assert "no die area declared" in by_ref["acme/U1"].detail


# --- 3A090.a: TPP >= 1,600 and PD >= 5.92 (or TPP >= 4,800) ---------------------------------


@pytest.mark.parametrize(("tpp", "die_area", "controlled"), [
    (2_368, "400", True),         # PD exactly 5.92
    (2_368, "400.001", False),    # PD 5.91998...
    (1_600, "270.270", True),     # TPP exactly 1,600, PD 5.92000059...
    (1_600, "270.271", False),    # PD 5.91998...
    (1_599, "1", False),          # TPP under 1,600: no density makes it 3A090
    (4_800, "100000", True),      # TPP exactly 4,800: 3A090.a whatever the density
    (4_799, "100000", False),
])
def test_3a090a_boundaries(tpp: int, die_area: str, controlled: bool) -> None:
    assert counts_as_controlled(tpp, die_area) is controlled
    assert (classify_3a090(tpp, performance_density(tpp, Decimal(die_area))).paragraph
            == "3A090.a") is controlled


def test_the_detail_never_prints_a_density_just_under_the_threshold_as_the_threshold() -> None:
    t = classify(fields(2_368, "400.001"), baseline())
    assert "performance density 5.919 " in t.detail


# --- 3A090.b: 2,400 <= TPP < 4,800 and 1.6 <= PD; or TPP >= 1,600 and 3.2 <= PD -------------


def with_3a090b(book: RuleBook) -> RuleBook:
    """``book`` counting by 3A090.b too (the bundled books count by 3A090.a only and
    record 3A090.b in their notes)."""
    data: dict[str, Any] = book.model_dump(mode="json")
    data["control"]["thresholds"] += [
        {"eccn": "3A090.b", "min_tpp": 2_400, "min_performance_density": "1.6"},
        {"eccn": "3A090.b", "min_tpp": 1_600, "min_performance_density": "3.2"},
    ]
    return RuleBook.model_validate(data)


@pytest.mark.parametrize(("tpp", "die_area", "paragraph"), [
    (2_400, "1500", "3A090.b"),       # TPP exactly 2,400, PD exactly 1.6
    (2_400, "1500.001", None),        # PD 1.59999...
    (2_399, "1499.375", None),        # PD exactly 1.6 but TPP under 2,400 (and PD < 3.2)
    (1_600, "500", "3A090.b"),        # PD exactly 3.2
    (1_600, "500.001", None),         # PD 3.19999...
    (3_000, "506.757", "3A090.b"),    # PD 5.91999...: still .b, not .a
])
def test_3a090b_boundaries(tpp: int, die_area: str, paragraph: str | None) -> None:
    density = performance_density(tpp, Decimal(die_area))
    assert classify_3a090(tpp, density).paragraph == paragraph
    # counting names the paragraph the same code gives ...
    detail = classify(fields(tpp, die_area), baseline()).detail
    assert f"declared die area {Decimal(die_area)} mm²; " in detail
    assert (paragraph or "below 3A090.a and 3A090.b") in detail
    # ... and controls by the rule book's thresholds: a book counting by 3A090.b
    # controls exactly these chips; the bundled ones count by 3A090.a only
    assert counts_as_controlled(tpp, die_area, with_3a090b(baseline())) is (paragraph is not None)
    assert counts_as_controlled(tpp, die_area) is False


# --- validation --------------------------------------------------------------------------


CTX = Context(now=NOW, actor="test", catalog=bundled_catalog())
RECORD = {"type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "S1",
          "ship_date": "2025-06-02", "destination": "MX", "consignee_id": "c1",
          "product_id": "custom-asic", "quantity": 10, "tpp_per_unit": H20,
          "authorization": {"kind": "none"}}


def record(**changes: Any) -> list[Any]:
    return decide(parse_command({**RECORD, **changes}), [], CTX).events


def test_a_recorded_die_area_is_kept_exactly() -> None:
    (event,) = record(die_area_mm2="814.5")
    assert isinstance(event, ShipmentRecorded)
    assert event.shipment.die_area_mm2 == Decimal("814.5")
    assert '"die_area_mm2":"814.5"' in event.model_dump_json()


def test_a_die_area_for_a_catalog_product_is_refused_naming_field_and_value() -> None:
    with pytest.raises(ValidationError) as e:
        record(product_id="nvidia-h20", tpp_per_unit=None, die_area_mm2="814")
    assert (e.value.field, e.value.value) == ("die_area_mm2", "814")
    assert "die_area_mm2 814" in str(e.value) and "'nvidia-h20'" in str(e.value)


def test_a_die_area_without_a_declared_tpp_is_refused() -> None:
    with pytest.raises(ValidationError) as e:
        record(tpp_per_unit=None, die_area_mm2="814")
    assert e.value.field == "tpp_per_unit"


@pytest.mark.parametrize(("text", "says"), [
    ("0", "greater than 0"), ("-814", "greater than 0"), ("100001", "less than or equal"),
    ("814.0001", "3 decimal places"), ('"814"', "must be a JSON number"),
    ("1e400", "finite"), ("true", "die_area_mm2"), ("null", None),
])
def test_bad_die_areas_on_an_import_line_name_field_and_value(text: str, says: str | None
                                                              ) -> None:
    line = ('{"type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "S1", '
            '"ship_date": "2025-06-02", "destination": "MX", "consignee_id": "c1", '
            '"product_id": "custom-asic", "quantity": 10, "tpp_per_unit": 2368, '
            f'"authorization": {{"kind": "none"}}, "die_area_mm2": {text}}}')
    if says is None:  # null: not declared
        assert parse_command_line(line).die_area_mm2 is None  # type: ignore[union-attr]
        return
    with pytest.raises(ValidationError) as e:
        parse_command_line(line)
    assert e.value.field == "die_area_mm2"
    assert says in str(e.value)


def test_an_exponent_is_stored_as_a_plain_number() -> None:
    line = ('{"type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "S1", '
            '"ship_date": "2025-06-02", "destination": "MX", "consignee_id": "c1", '
            '"product_id": "custom-asic", "quantity": 10, "tpp_per_unit": 2368, '
            '"authorization": {"kind": "none"}, "die_area_mm2": 8.14e2}')
    (event,) = decide(parse_command_line(line), [], CTX).events
    assert isinstance(event, ShipmentRecorded)
    assert '"die_area_mm2":"814.0"' in event.model_dump_json()
    assert fields(H20, "1E+3").die_area_mm2 is not None
    assert '"die_area_mm2":"1000"' in fields(H20, "1E+3").model_dump_json()


# --- corrections ----------------------------------------------------------------------


def correct(history: list[Any], **changes: Any) -> ShipmentCorrected:
    cmd = parse_command({"type": "shipment.corrected", "exporter_id": "acme",
                         "shipment_ref": "S1", "reason": "datasheet", **changes})
    (event,) = decide(cmd, history, CTX).events
    assert isinstance(event, ShipmentCorrected)
    return event


def test_a_correction_may_declare_the_die_area_and_counting_follows() -> None:
    history = record()
    fix = correct(history, die_area_mm2=H20_LIKE_DIE)
    new = fix.changes.apply(history[0].shipment)
    assert new.die_area_mm2 == Decimal(814)
    assert classify(new.model_copy(update={"destination": "CN",
                                           "ship_date": dt.date(2024, 6, 1)}),
                    baseline()).clause == "uncontrolled"


def test_a_correction_to_another_product_drops_the_old_die_area() -> None:
    history = record(die_area_mm2=H20_LIKE_DIE)
    to_catalog = correct(history, product_id="nvidia-h20")
    assert to_catalog.changes.apply(history[0].shipment).die_area_mm2 is None
    to_other = correct(history, product_id="other-asic", tpp_per_unit=3_000)
    assert to_other.changes.apply(history[0].shipment).die_area_mm2 is None
    with_own = correct(history, product_id="other-asic", tpp_per_unit=3_000,
                       die_area_mm2="600")
    assert with_own.changes.apply(history[0].shipment).die_area_mm2 == Decimal(600)
    only_tpp = correct(history, tpp_per_unit=2_400)
    assert only_tpp.changes.apply(history[0].shipment).die_area_mm2 == Decimal(814)


def test_a_correction_declaring_a_die_area_for_a_catalog_product_is_refused() -> None:
    history = decide(parse_command({**RECORD, "product_id": "nvidia-h20",
                                    "tpp_per_unit": None}), [], CTX).events
    cmd = parse_command({"type": "shipment.corrected", "exporter_id": "acme",
                         "shipment_ref": "S1", "reason": "datasheet", "die_area_mm2": "814"})
    with pytest.raises(ValidationError) as e:
        decide(cmd, history, CTX)
    assert (e.value.field, e.value.value) == ("die_area_mm2", "814")
