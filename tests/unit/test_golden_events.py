"""Golden JSON of every published event type: a change to a stored shape fails here.

The files in tests/golden/events/ are the exact stored bytes of one event of each type.
If a shape must change, do not edit the file: add a new class_version with an upcaster
and a new golden file (UPDATE_GOLDEN=1 writes missing files, never overwrites). The
current shape of a type is ``<type>.json`` (version 1) or ``<type>.v<N>.json``; older
shapes stay as ``<type>.v<K>.json`` and must still decode, upcast, to the same event.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest

from ledger.events import (
    EVENT_TYPES,
    AllocationAdjusted,
    AllocationGranted,
    AllocationRevoked,
    LedgerEvent,
    RuleRevisionPublished,
    ShipmentCorrected,
    ShipmentRecorded,
    ShipmentVoided,
    VeuAmended,
    VeuGranted,
    VeuRevoked,
)
from eventsourcing.utils import get_topic

from ledger.persistence import PydanticMapper, decode_event
from ledger.rulebook import RuleBook

GOLDEN = Path(__file__).parent.parent / "golden" / "events"
ENV = dict(originator_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
           originator_version=1,
           timestamp=dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC), actor="cli:auditor")
SHIP = {"ship_date": "2025-06-15", "destination": "MX", "consignee_id": "mx-c-01",
        "product_id": "nvidia-h100-sxm", "quantity": 64, "tpp_per_unit": 15832,
        "authorization": {"kind": "license", "ref": "LIC-MX-001"}}

SAMPLES: dict[str, LedgerEvent] = {
    "rule.published": RuleRevisionPublished(**ENV, effective_date="2025-01-13",
                                             rule_id="golden-rule", document=RuleBook(
        id="golden-rule", title="A golden rule book", citation="90 FR 4544",
        sources=[{"title": "rules-facts.md R1"}], published="2025-01-15",
        effective="2025-01-13", enforcement={"begins": "2025-05-15", "suspended": "2025-05-13"},
        tiers={"default": 2, "countries": {"US": 1, "CN": 3}},
        caps={"tier2": {"tpp": 790_000_000, "period": {"start": "2025-01-01",
                                                         "end": "2027-12-31"},
                        "source": "90 FR 4544"}, "tier3_tpp": 0},
        exceptions={"lpp": {"limit_tpp_per_consignee_year": 26_900_000,
                            "source": "15 CFR 740.29"}},
        control={"thresholds": [{"eccn": "3A090.a", "min_tpp": 4800}], "source": "CSET"},
        clauses={"tier1": {"text": "tier 1: counts against nothing",
                           "citation": "90 FR 4544"}})),
    "allocation.granted": AllocationGranted(**ENV, effective_date="2025-01-15",
                                            allocation_id="LIC-MX-001", country="MX",
                                            tpp_amount=100_000_000, valid_from="2025-01-15",
                                            valid_to="2025-12-31", holder="nvidia-us",
                                            reference="BIS license D100000"),
    "allocation.adjusted": AllocationAdjusted(**ENV, effective_date="2025-05-01",
                                              allocation_id="LIC-MX-001",
                                              tpp_amount=50_000_000, reason="amended"),
    "allocation.revoked": AllocationRevoked(**ENV, effective_date="2025-08-01",
                                            allocation_id="LIC-MX-001", reason="revoked"),
    "veu.granted": VeuGranted(**ENV, effective_date="2025-01-20", veu_id="UVEU-ATLAS",
                              entity="Atlas Cloud Inc.", kind="universal",
                              headquarters_country="US", covered_countries=["AE", "MX"],
                              valid_from="2025-01-20", limits={"total_compute_tpp": 10**10}),
    "veu.amended": VeuAmended(**ENV, effective_date="2025-03-01", veu_id="UVEU-ATLAS",
                              changes={"covered_countries": ["AE", "MX", "BR"]},
                              reason="added Brazil"),
    "veu.revoked": VeuRevoked(**ENV, effective_date="2025-09-01", veu_id="UVEU-ATLAS",
                              reason="revoked"),
    "shipment.recorded": ShipmentRecorded(**ENV, effective_date="2025-06-15",
                                          exporter_id="nvidia-us", shipment_ref="NV-0001",
                                          shipment=SHIP, end_use="model training"),
    "shipment.corrected": ShipmentCorrected(**ENV, effective_date="2025-06-15",
                                            exporter_id="nvidia-us", shipment_ref="NV-0001",
                                            reason="invoice", changes={"quantity": 72}),
    "shipment.voided": ShipmentVoided(**ENV, effective_date="2025-06-15",
                                      exporter_id="nvidia-us", shipment_ref="NV-0001",
                                      reason="cancelled"),
}


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == {c.type_name for c in EVENT_TYPES}


def golden_path(type_name: str, version: int) -> Path:
    return GOLDEN / (f"{type_name}.json" if version == 1 else f"{type_name}.v{version}.json")


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_stored_bytes_match_the_golden_file(type_name: str) -> None:
    event = SAMPLES[type_name]
    stored = PydanticMapper().to_stored_event(event)
    path = golden_path(type_name, type(event).class_version)
    if not path.exists() and os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(stored.state + b"\n")
    golden = path.read_bytes().rstrip(b"\n")
    assert stored.state == golden, f"the stored shape of {type_name} changed"
    assert stored.topic == f"ledger.events:{type(event).__name__}"
    decoded = decode_event(stored.topic, golden, ENV["originator_id"], 1)
    assert decoded == event


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_older_golden_shapes_still_decode(type_name: str) -> None:
    event = SAMPLES[type_name]
    for version in range(1, type(event).class_version):
        old = GOLDEN / f"{type_name}.v{version}.json"
        assert old.exists(), f"keep the version-{version} golden file of {type_name}"
        stored = old.read_bytes().rstrip(b"\n")
        decoded = decode_event(get_topic(type(event)), stored, ENV["originator_id"], 1)
        # the fields the old shape had are unchanged; the new ones get the upcaster's value
        kept = set(json.loads(stored)) | {"originator_id", "originator_version"}
        assert decoded.model_dump(include=kept) == event.model_dump(include=kept)
