"""Idempotency keys (issue 10, defect 1): a command already applied to its aggregate,
at any point of its history, is a no-op, so a replay never undoes a later command.

Pure: commands are decided with ``ledger.decide`` through ``tests.builders.Scenario``,
which keeps each aggregate's applied keys as the application does."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.errors import ValidationError
from ledger.events import ShipmentCorrected
from tests.builders import Scenario

SHIP: dict[str, Any] = dict(
    type="shipment.recorded", exporter_id="acme", shipment_ref="S1", ship_date="2025-03-01",
    destination="MX", consignee_id="c1", product_id="nvidia-h100-sxm", quantity=64,
    authorization={"kind": "none"})


def correct(quantity: int, reason: str = "invoice", **extra: Any) -> dict[str, Any]:
    return dict(type="shipment.corrected", exporter_id="acme", shipment_ref="S1",
                quantity=quantity, reason=reason, **extra)


def quantity(s: Scenario) -> int:
    return s.state.shipments[("acme", "S1")].fields.quantity


def test_a_replayed_correction_does_not_undo_a_later_one() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(**correct(72))
    s.do(**correct(80, "recount"))
    assert s.do(**correct(72)) == []  # the same line again: already applied
    assert quantity(s) == 80


def test_a_replayed_command_id_is_a_no_op_and_a_new_one_returns_deliberately() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(**correct(72, command_id="c-1"))
    s.do(**correct(80, command_id="c-2"))
    assert s.do(**correct(72, command_id="c-1")) == []
    assert quantity(s) == 80
    # a deliberate return to 72, same reason: a new command id applies it
    (event,) = s.do(**correct(72, command_id="c-3"))
    assert isinstance(event, ShipmentCorrected) and quantity(s) == 72


def test_without_a_key_a_return_to_an_earlier_value_needs_another_reason() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(**correct(72))
    s.do(**correct(80, "recount"))
    assert len(s.do(**correct(72, "second recount"))) == 1
    assert quantity(s) == 72


def test_a_correction_replayed_after_a_void_is_a_duplicate_not_an_error() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(**correct(72))
    s.do(type="shipment.voided", exporter_id="acme", shipment_ref="S1", reason="cancelled")
    assert s.do(**correct(72)) == []


def test_reapplying_two_adjustments_of_one_allocation_adds_nothing() -> None:
    s = Scenario(rules=False)
    lines = [
        dict(type="allocation.granted", allocation_id="L1", country="MX", tpp_amount=100,
             valid_from="2025-01-01", holder="acme"),
        dict(type="allocation.adjusted", allocation_id="L1", tpp_amount=120,
             effective_date="2025-02-01", reason="amended"),
        dict(type="allocation.adjusted", allocation_id="L1", tpp_amount=150,
             effective_date="2025-03-01", reason="amended again"),
    ]
    for line in lines:
        s.do(**line)
    count = len(s.events)
    for line in lines:  # the same file again
        assert s.do(**line) == []
    assert len(s.events) == count


def test_reapplying_an_amendment_of_a_since_revoked_veu_is_a_duplicate() -> None:
    s = Scenario(rules=False)
    lines = [
        dict(type="veu.granted", veu_id="V1", entity="Atlas", kind="universal",
             headquarters_country="US", covered_countries=["MX"], valid_from="2025-01-01"),
        dict(type="veu.amended", veu_id="V1", effective_date="2025-02-01",
             covered_countries=["MX", "BR"], reason="Brazil added"),
        dict(type="veu.revoked", veu_id="V1", effective_date="2025-03-01", reason="withdrawn"),
    ]
    for line in lines:
        s.do(**line)
    for line in lines:  # today: "VEU 'V1' is revoked; it cannot be amended"
        assert s.do(**line) == []


def test_an_identical_correction_with_a_new_key_that_changes_nothing_is_refused() -> None:
    s = Scenario(rules=False)
    s.do(**SHIP)
    s.do(**correct(72, command_id="c-1"))
    with pytest.raises(ValidationError, match="changes nothing"):
        s.do(**correct(72, command_id="c-2"))
