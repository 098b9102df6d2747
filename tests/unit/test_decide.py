"""Deciding commands against an aggregate's history: idempotency and refusals (pure)."""

from __future__ import annotations

import pytest

from ledger.commands import parse_command, parse_command_line
from ledger.errors import ConflictingDuplicate, InvalidTransition, NotFound, ValidationError
from tests.builders import Scenario

SHIP = dict(type="shipment.recorded", exporter_id="acme", shipment_ref="S1",
            ship_date="2025-03-01", destination="MX", consignee_id="c1",
            product_id="nvidia-h100-sxm", quantity=10, authorization={"kind": "none"})


def test_identical_shipment_again_is_a_no_op() -> None:
    s = Scenario(rules=False)
    assert len(s.do(**SHIP)) == 1
    assert s.do(**SHIP) == []
    assert len(s.events) == 1


def test_different_payload_under_an_existing_identity_is_refused_naming_both() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    with pytest.raises(ConflictingDuplicate) as e:
        s.do(**{**SHIP, "quantity": 11})
    assert "acme/S1" in str(e.value) and "quantity: 10 then 11" in str(e.value)


def test_same_reference_from_another_exporter_is_another_shipment() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    assert len(s.do(**{**SHIP, "exporter_id": "other"})) == 1


def test_catalog_fills_tpp_per_unit_and_unknown_products_need_it() -> None:
    s = Scenario(rules=False)
    (event,) = s.do(**SHIP)
    assert event.shipment.tpp_per_unit == 15_832  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as e:
        s.do(**{**SHIP, "shipment_ref": "S2", "product_id": "mystery-chip"})
    assert e.value.field == "tpp_per_unit" and "mystery-chip" in str(e.value)


def test_tpp_per_unit_below_the_catalog_is_refused() -> None:
    s = Scenario(rules=False)
    with pytest.raises(ValidationError, match="tpp_per_unit 100 is below"):
        s.do(**{**SHIP, "tpp_per_unit": 100})


def test_ship_date_in_the_future_is_refused() -> None:
    s = Scenario(rules=False)  # the scenario's clock is 2026-06-01
    with pytest.raises(ValidationError) as e:
        s.do(**{**SHIP, "ship_date": "2026-06-05"})
    assert e.value.field == "ship_date"


def test_correction_names_the_shipment_and_a_reason() -> None:
    s = Scenario(rules=False)
    with pytest.raises(NotFound, match="acme/S1 was never recorded"):
        s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", quantity=5,
             reason="typo")
    s.do(**SHIP)
    (event,) = s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1",
                    quantity=5, reason="typo")
    assert event.effective_date.isoformat() == "2025-03-01"
    # the same correction again (a re-imported file) is a no-op
    assert s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1",
                quantity=5, reason="typo") == []
    with pytest.raises(ValidationError, match="changes nothing"):
        s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", quantity=5,
             reason="again")
    with pytest.raises(ValidationError, match="at least one field"):
        s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", reason="x")


def test_a_voided_shipment_cannot_be_corrected_or_voided_again() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    assert s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1",
                reason="cancelled") == []
    with pytest.raises(InvalidTransition, match="voided"):
        s.do(type="shipment.corrected", exporter_id="acme", shipment_ref="S1", quantity=3,
             reason="x")
    with pytest.raises(InvalidTransition, match="already voided"):
        s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="other")


def test_allocations_are_idempotent_and_revocation_is_final() -> None:
    s = Scenario(rules=False)
    grant = dict(type="allocation.granted", allocation_id="L1", country="MX",
                 tpp_amount=1_000, valid_from="2025-01-01", holder="acme")
    s.do(**grant)
    assert s.do(**grant) == []
    with pytest.raises(ConflictingDuplicate, match="tpp_amount"):
        s.do(**{**grant, "tpp_amount": 2_000})
    with pytest.raises(NotFound):
        s.do(type="allocation.revoked", allocation_id="L9", effective_date="2025-02-01",
             reason="x")
    s.do(type="allocation.revoked", allocation_id="L1", effective_date="2025-02-01", reason="x")
    with pytest.raises(InvalidTransition):
        s.do(type="allocation.adjusted", allocation_id="L1", tpp_amount=5,
             effective_date="2025-03-01", reason="y")


def test_veu_grant_amend_revoke() -> None:
    s = Scenario(rules=False)
    grant = dict(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
                 headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01")
    s.do(**grant)
    assert s.do(**grant) == []
    s.do(type="veu.amended", veu_id="V1", effective_date="2025-02-01", covered_countries=["BR"])
    s.do(type="veu.revoked", veu_id="V1", effective_date="2025-03-01", reason="x")
    with pytest.raises(InvalidTransition):
        s.do(type="veu.amended", veu_id="V1", effective_date="2025-04-01", entity="New")


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ('{"type": "shipment.recorded"', "(line)", "malformed JSON"),
        ("[1, 2]", "(line)", "expected a JSON object"),
        ('{"type": "shipment.shipped"}', "type", "must be one of"),
        ('{"exporter_id": "a"}', "type", "must be one of"),
        ('{"type": "shipment.voided", "exporter_id": "a", "shipment_ref": "b"}', "reason",
         "'reason' is required"),
        ('{"type": "allocation.granted", "allocation_id": "L", "country": "XX", '
         '"tpp_amount": 5, "valid_from": "2025-01-01"}', "country", "'XX'"),
        ('{"type": "allocation.granted", "allocation_id": "L", "country": "MX", '
         '"tpp_amount": -5, "valid_from": "2025-01-01"}', "tpp_amount", "-5"),
        ('{"type": "allocation.granted", "allocation_id": "L", "country": "MX", '
         '"tpp_amount": 5.5, "valid_from": "2025-01-01"}', "tpp_amount", "5.5"),
        ('{"type": "allocation.granted", "allocation_id": "L", "country": "MX", '
         '"tpp_amount": 5, "valid_from": "2025-13-01"}', "valid_from", "2025-13-01"),
        ('{"type": "allocation.revoked", "allocation_id": "L", "effective_date": "2025-01-01",'
         ' "reason": "x", "colour": "red"}', "colour", "not allowed"),
    ],
)
def test_bad_lines_name_the_field_and_the_value(line: str, field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_command_line(line)
    assert e.value.field == field
    assert fragment in str(e.value)


def test_authorization_ref_must_match_its_kind() -> None:
    with pytest.raises(ValidationError, match="needs a ref"):
        parse_command({**SHIP, "authorization": {"kind": "license"}})
    with pytest.raises(ValidationError, match="takes no ref"):
        parse_command({**SHIP, "authorization": {"kind": "lpp", "ref": "X"}})
    with pytest.raises(ValidationError) as e:
        parse_command({**SHIP, "quantity": 0})
    assert e.value.field == "quantity"


def test_absurd_amounts_are_refused_at_the_door_naming_the_field() -> None:
    with pytest.raises(ValidationError) as e:
        parse_command({**SHIP, "quantity": 99999999999999999999})
    assert e.value.field == "quantity"
    with pytest.raises(ValidationError) as e:
        parse_command(dict(type="allocation.granted", allocation_id="L", country="MX",
                           tpp_amount=10**16, valid_from="2025-01-01"))
    assert e.value.field == "tpp_amount"
    s = Scenario(rules=False)
    with pytest.raises(ValidationError) as e:  # each within bounds, the product is not
        s.do(**{**SHIP, "quantity": 100_000_000, "tpp_per_unit": 10**9})
    assert e.value.field == "quantity" and "exceeds" in str(e.value)


def test_valid_to_before_valid_from_names_valid_to() -> None:
    with pytest.raises(ValidationError) as e:
        parse_command(dict(type="allocation.granted", allocation_id="L", country="MX",
                           tpp_amount=5, valid_from="2025-02-01", valid_to="2025-01-01"))
    assert e.value.field == "valid_to" and "2025-01-01" in str(e.value)


def test_revocation_before_the_grant_starts_is_refused() -> None:
    s = Scenario(rules=False)
    s.do(type="allocation.granted", allocation_id="L1", country="MX", tpp_amount=1_000,
         valid_from="2025-03-01", holder="acme")
    with pytest.raises(ValidationError) as e:
        s.do(type="allocation.revoked", allocation_id="L1", effective_date="2025-02-01",
             reason="x")
    assert e.value.field == "effective_date"
