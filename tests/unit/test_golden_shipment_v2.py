"""Golden bytes of ShipmentRecorded version 2 (with ``end_use``).

A published shape never changes in place: if this test fails, the stored form of
new events changed, and old readers (and the hash chain's meaning) with it. Bump
``class_version`` and add an upcaster instead of editing this golden text.
"""

from __future__ import annotations

import datetime as dt
import uuid

from ledger.events import Authorization, ShipmentFields, ShipmentRecorded
from ledger.persistence import PydanticMapper, decode_event

GOLDEN_V2 = (
    '{"timestamp":"2025-07-01T12:00:00Z","effective_date":"2025-06-30","actor":"cli:alice",'
    '"exporter_id":"acme","shipment_ref":"S-1","shipment":{"ship_date":"2025-06-30",'
    '"destination":"MX","consignee_id":"mx-dc-1","product_id":"nvidia-h100-sxm",'
    '"quantity":8,"tpp_per_unit":15832,"authorization":{"kind":"lpp","ref":null}},'
    '"end_use":"model training","class_version":2}'
)


def _event() -> ShipmentRecorded:
    return ShipmentRecorded(
        originator_id=uuid.UUID("00000000-0000-0000-0000-000000000001"),
        originator_version=1,
        timestamp=dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC),
        effective_date=dt.date(2025, 6, 30), actor="cli:alice",
        exporter_id="acme", shipment_ref="S-1",
        shipment=ShipmentFields(ship_date=dt.date(2025, 6, 30), destination="MX",
                                consignee_id="mx-dc-1", product_id="nvidia-h100-sxm",
                                quantity=8, tpp_per_unit=15832,
                                authorization=Authorization(kind="lpp")),
        end_use="model training",
    )


def test_v2_stored_shape_is_golden() -> None:
    stored = PydanticMapper().to_stored_event(_event())
    assert stored.topic == "ledger.events:ShipmentRecorded"
    assert stored.state.decode() == GOLDEN_V2


def test_v2_golden_decodes_to_the_same_event() -> None:
    event = _event()
    assert decode_event("ledger.events:ShipmentRecorded", GOLDEN_V2.encode(),
                        event.originator_id, 1) == event
