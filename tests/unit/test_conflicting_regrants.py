"""A second command under an existing identity with different terms is refused, for
every identity-bearing family (shipment, allocation, VEU, rule revision), whichever
field differs; only the identical repeat is a no-op. Accepting a conflicting re-grant
as a no-op would silently keep terms the sender believes it replaced (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import ConflictingDuplicate
from ledger.rulebook import bundled_rulebook
from tests.builders import Scenario

SHIPMENT: dict[str, Any] = dict(
    type="shipment.recorded", exporter_id="acme", shipment_ref="S1", ship_date="2025-03-01",
    destination="MX", consignee_id="c1", product_id="nvidia-h100-sxm", quantity=10,
    tpp_per_unit=15_832, authorization={"kind": "none"}, end_use="training")
ALLOCATION: dict[str, Any] = dict(
    type="allocation.granted", allocation_id="L1", country="MX", tpp_amount=1_000_000,
    valid_from="2025-01-01", valid_to="2025-12-31", holder="acme", reference="D100")
VEU: dict[str, Any] = dict(
    type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
    headquarters_country="US", covered_countries=["MX", "BR"], valid_from="2025-01-01",
    valid_to="2026-12-31", limits={"total_compute_tpp": 40_000_000_000})

CONFLICTS: list[tuple[dict[str, Any], str, Any]] = [
    (SHIPMENT, "ship_date", "2025-03-02"),
    (SHIPMENT, "destination", "BR"),
    (SHIPMENT, "consignee_id", "c2"),
    (SHIPMENT, "product_id", "nvidia-h200"),
    (SHIPMENT, "quantity", 11),
    (SHIPMENT, "tpp_per_unit", 15_833),
    (SHIPMENT, "authorization", {"kind": "lpp"}),
    (SHIPMENT, "end_use", "inference"),
    (ALLOCATION, "country", "BR"),
    (ALLOCATION, "tpp_amount", 2_000_000),
    (ALLOCATION, "valid_from", "2025-01-02"),
    (ALLOCATION, "valid_to", "2025-12-30"),
    (ALLOCATION, "holder", "globex"),
    (ALLOCATION, "reference", "D101"),
    (VEU, "entity", "Atlas Cloud"),
    (VEU, "kind", "national"),
    (VEU, "headquarters_country", "AE"),
    (VEU, "covered_countries", ["MX"]),
    (VEU, "valid_from", "2025-01-02"),
    (VEU, "valid_to", "2026-12-30"),
    (VEU, "limits", {"total_compute_tpp": 50_000_000_000}),
]


@pytest.mark.parametrize(("first", "field", "value"), CONFLICTS,
                         ids=[f"{c[0]['type']}-{c[1]}" for c in CONFLICTS])
def test_a_conflicting_repeat_is_refused_naming_the_field(first: dict[str, Any], field: str,
                                                          value: Any) -> None:
    s = Scenario(rules=False)
    assert len(s.do(**first)) == 1
    assert s.do(**first) == []  # the identical repeat: a no-op
    state_before = (dict(s.state.shipments), dict(s.state.allocations), dict(s.state.veus))
    with pytest.raises(ConflictingDuplicate) as error:
        s.do(**{**first, field: value})
    assert f"{field}: " in str(error.value), str(error.value)
    assert len(s.events) == 1
    assert (dict(s.state.shipments), dict(s.state.allocations), dict(s.state.veus)) \
        == state_before


def test_a_conflicting_shipment_names_both_values() -> None:
    s = Scenario(rules=False)
    s.do(**SHIPMENT)
    with pytest.raises(ConflictingDuplicate) as error:
        s.do(**{**SHIPMENT, "end_use": "inference"})
    assert "end_use: 'training' then 'inference'" in str(error.value)


def test_a_conflicting_veu_names_both_values() -> None:
    s = Scenario(rules=False)
    s.do(**VEU)
    with pytest.raises(ConflictingDuplicate) as error:
        s.do(**{**VEU, "covered_countries": ["MX"]})
    assert "VEU 'V1'" in str(error.value)
    assert "covered_countries: ['MX', 'BR'] then ['MX']" in str(error.value)


def test_a_rule_revision_republished_with_another_document_is_refused() -> None:
    s = Scenario(rules=False)
    book = bundled_rulebook("ai-diffusion-2025")
    s.publish(book)
    s.publish(book)  # identical: a no-op
    assert len(s.events) == 1
    changed = book.model_copy(update={"title": book.title + " (edited)"})
    with pytest.raises(ConflictingDuplicate, match="'ai-diffusion-2025' was already published"):
        s.publish(changed)
    assert len(s.events) == 1
    assert s.state.rule("ai-diffusion-2025") == book
