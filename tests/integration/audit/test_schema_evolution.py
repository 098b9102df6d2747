"""Schema evolution: a version-1 ShipmentRecorded stored long ago still loads, folds
and verifies after the event gained ``end_use`` in version 2 and
``shipment.die_area_mm2`` in version 3.

The fixture ``tests/data/shipment-recorded-v1.json`` holds the exact bytes version 1
stored. The chain covers those bytes, not the upcast reading, so nothing is rewritten.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger.audit import export_rows, verify
from ledger.commands import parse_command
from ledger.events import ShipmentRecorded
from projections.views import load_state, quota, readmodel_quota

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "shipment-recorded-v1.json"


def test_v1_event_loads_folds_and_verifies(ledger: Any) -> None:
    old = json.loads(FIXTURE.read_text())
    old_bytes = old["state"].encode("utf-8")
    assert b"end_use" not in old_bytes and b"class_version" not in old_bytes
    # written as version 1 wrote it: through the recorder, so it is chained as it was
    [position] = ledger.recorder.insert_events([StoredEvent(
        originator_id=uuid.UUID(old["originator_id"]),
        originator_version=old["originator_version"], topic=old["topic"], state=old_bytes)])

    # a version-2 event on top, and a correction of the old shipment (decided against
    # its upcast history)
    ledger.submit([
        parse_command({"type": "shipment.recorded", "exporter_id": "acme",
                       "shipment_ref": "S-200", "ship_date": "2025-04-01",
                       "destination": "MX", "consignee_id": "mx-dc-1",
                       "product_id": "nvidia-h100-sxm", "quantity": 100,
                       "authorization": {"kind": "none"}, "end_use": "model training"}),
        parse_command({"type": "shipment.corrected", "exporter_id": "acme",
                       "shipment_ref": "S-100", "reason": "recount", "quantity": 9000}),
    ], actor="cli:auditor-test")

    events = dict(ledger.read())
    old_event = events[position]
    assert isinstance(old_event, ShipmentRecorded)
    assert old_event.end_use is None and old_event.shipment.quantity == 10000
    new_event = events[position + 1]
    assert isinstance(new_event, ShipmentRecorded) and new_event.end_use == "model training"

    # the stored bytes are untouched and the chain over them verifies
    stored = {n.id: bytes(n.state) for n in ledger.read_stored()}
    assert stored[position] == old_bytes
    assert b'"class_version":3' in stored[position + 1]
    assert verify(ledger).ok

    # it folds: both shipments count against Mexico's cap
    p = quota(load_state(ledger), "MX", dt.date(2025, 6, 30), rule_id="ai-diffusion-2025")
    assert p.committed_tpp == (9000 + 100) * 15832
    # the read model reads every stored shape of a shipment as stored: the same answer
    assert readmodel_quota(ledger, "MX", dt.date(2025, 6, 30), rule_id="ai-diffusion-2025",
                           explain=True) == quota(load_state(ledger), "MX",
                                                  dt.date(2025, 6, 30),
                                                  rule_id="ai-diffusion-2025", explain=True)

    rows = {r["position"]: r for r in export_rows(ledger)}
    assert rows[position]["class_version"] == 1
    assert rows[position]["fields"]["end_use"] is None
    assert rows[position + 1]["class_version"] == 3
    assert rows[position]["fields"]["shipment"]["die_area_mm2"] is None


def test_resending_a_v1_shipment_is_still_a_duplicate(ledger: Any) -> None:
    old = json.loads(FIXTURE.read_text())
    ledger.recorder.insert_events([StoredEvent(
        originator_id=uuid.UUID(old["originator_id"]),
        originator_version=1, topic=old["topic"], state=old["state"].encode())])
    same = parse_command({"type": "shipment.recorded", "exporter_id": "acme",
                          "shipment_ref": "S-100", "ship_date": "2025-03-10",
                          "destination": "MX", "consignee_id": "mx-dc-1",
                          "product_id": "nvidia-h100-sxm", "quantity": 10000,
                          "authorization": {"kind": "none"}})
    result = ledger.submit([same])
    assert result.duplicates == 1 and result.appended == 0


def test_a_v1_correction_reads_the_same_in_the_fold_and_the_read_model(ledger: Any) -> None:
    """A correction stored before ShipmentCorrected gained ``changes.die_area_mm2``
    (version 1, its bytes as in tests/golden/events/shipment.corrected.v1.json), of a
    version-1 shipment: the read model reads both as stored, the fold upcasts them."""
    old = json.loads(FIXTURE.read_text())
    correction = (b'{"timestamp":"2025-07-01T12:00:00Z","effective_date":"2025-03-10",'
                  b'"actor":"cli:auditor","exporter_id":"acme","shipment_ref":"S-100",'
                  b'"reason":"recount","changes":{"ship_date":null,"destination":null,'
                  b'"consignee_id":null,"product_id":null,"quantity":9000,'
                  b'"tpp_per_unit":null,"authorization":null}}')
    ledger.recorder.insert_events([
        StoredEvent(originator_id=uuid.UUID(old["originator_id"]), originator_version=1,
                    topic=old["topic"], state=old["state"].encode("utf-8")),
        StoredEvent(originator_id=uuid.UUID(old["originator_id"]), originator_version=2,
                    topic="ledger.events:ShipmentCorrected", state=correction)])
    as_of = dt.date(2025, 6, 30)
    want = quota(load_state(ledger), "MX", as_of, rule_id="ai-diffusion-2025", explain=True)
    assert want.committed_tpp == 9000 * 15832
    assert readmodel_quota(ledger, "MX", as_of, rule_id="ai-diffusion-2025",
                           explain=True) == want
    assert verify(ledger).ok
