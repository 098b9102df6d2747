"""Strict wire input without a broker (issue 10, defects 2, 4 and 5): Kafka payloads
are typed strictly, a key twice, a stale or oversized message is refused with its
reason, producers derive message ids from content, and a dead letter of a poison
message is a bounded copy with the original's hash and size."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from types import SimpleNamespace
from typing import Any

import pytest

from consumers.deadletter import MAX_COPY_BYTES, dead_letter_record
from consumers.envelope import Rejected
from consumers.producer import MessageSigner
from ledger.commands import parse_command_line
from ledger.errors import ValidationError
from tests.unit.test_envelope import ACME, NOW, SHIPMENT, envelope_dict, reject, signed


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", True), ("quantity", "10"), ("quantity", 10.0), ("ship_date", 1738540800),
    ("ship_date", "2025-02-03T00:00:00"), ("ship_date", "0001-01-01"),
    ("consignee_id", "c\u00001"), ("consignee_id", "<script>alert(1)</script>"),
])
def test_kafka_payloads_are_typed_strictly(field: str, value: Any) -> None:
    e = reject(*signed(envelope_dict({**SHIPMENT, field: value})))
    assert e.code == "schema-violation" and e.field == f"payload.{field}", e


def test_a_correction_enforces_the_id_patterns_as_a_recording_does() -> None:
    for kind in ("shipment.recorded", "shipment.corrected"):
        line = {**SHIPMENT, "type": kind, "consignee_id": "<script>alert(1)</script>"}
        if kind == "shipment.corrected":
            line = {"type": kind, "exporter_id": "acme", "shipment_ref": "A-1",
                    "reason": "r", "consignee_id": "<script>alert(1)</script>",
                    "authorization": {"kind": "license", "ref": "L\u0000X"}}
        with pytest.raises(ValidationError) as e:
            parse_command_line(json.dumps(line))
        assert e.value.field == "consignee_id"


def test_a_key_given_twice_is_refused() -> None:
    value, headers = signed(json.dumps(envelope_dict()).replace(
        '"quantity": 10', '"quantity": 10, "quantity": 1000').encode())
    e = reject(value, headers)
    assert e.code == "duplicate-key" and e.field == "quantity"


def test_a_stale_or_future_message_is_refused() -> None:
    old = envelope_dict(sent_at=(NOW - dt.timedelta(days=8)).isoformat())
    e = reject(*signed(old), max_age=dt.timedelta(days=7))
    assert e.code == "stale-message" and e.field == "sent_at"
    ahead = envelope_dict(sent_at=(NOW + dt.timedelta(days=2)).isoformat())
    assert reject(*signed(ahead), max_age=dt.timedelta(days=7)).code == "future-sent-at"


def test_an_oversized_message_is_refused_before_it_is_parsed() -> None:
    e = reject(*signed(b"[" * 1_048_000))
    assert e.code == "message-too-large"


def test_a_republished_line_keeps_its_message_id_and_a_command_id_changes_it() -> None:
    signer = MessageSigner("acme", ACME)
    first = json.loads(signer.message(SHIPMENT)[1])["message_id"]
    again = json.loads(signer.message(SHIPMENT)[1])["message_id"]
    other = json.loads(signer.message({**SHIPMENT, "command_id": "again-1"})[1])["message_id"]
    assert first == again != other


def test_a_poison_message_is_dead_lettered_as_a_bounded_copy() -> None:
    value = b"x" * 1_048_000
    record = SimpleNamespace(topic="t", partition=0, offset=7, timestamp=1, key=b"acme",
                             value=value, headers=[("big", b"h" * 20_000)])
    error = Rejected("message-too-large", "too large", field="(message)")
    key, copy, headers = dead_letter_record(record, error, "g")
    named = dict(headers)
    assert key == b"acme" and copy == value[:MAX_COPY_BYTES]
    assert named["ql-dlq-original-sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert named["ql-dlq-original-size"] == b"1048000"
    assert named["ql-dlq-truncated"] == b"value,headers" and "big" not in named
    assert len(copy) + sum(len(k) + len(v) for k, v in headers) < 1024 * 1024


def test_events_already_stored_stay_readable_under_the_stricter_input_rules() -> None:
    """An event appended before issue 10 (a year-1 date, a NUL in a reason or a
    license ref) is a fact: it is read as stored, while new input is refused."""
    import uuid

    from eventsourcing.utils import get_topic

    from ledger.events import AllocationRevoked, ShipmentRecorded
    from ledger.persistence import decode_event

    revoked = {"timestamp": "2025-01-01T00:00:00+00:00", "effective_date": "0001-01-01",
               "actor": "cli:x", "allocation_id": "L1", "reason": "bad\u0000input"}
    event = decode_event(get_topic(AllocationRevoked), json.dumps(revoked).encode(),
                         uuid.uuid4(), 2)
    assert isinstance(event, AllocationRevoked) and event.reason == "bad\x00input"
    shipment = {"timestamp": "2025-01-01T00:00:00+00:00", "effective_date": "2025-01-02",
                "actor": "cli:x", "exporter_id": "acme", "shipment_ref": "S1",
                "shipment": {"ship_date": "2025-01-02", "destination": "MX",
                             "consignee_id": "c1", "product_id": "p1", "quantity": 1,
                             "tpp_per_unit": 5000,
                             "authorization": {"kind": "license", "ref": "L\u0000X"}},
                "class_version": 2}
    event = decode_event(get_topic(ShipmentRecorded), json.dumps(shipment).encode(),
                         uuid.uuid4(), 1)
    assert isinstance(event, ShipmentRecorded)
    with pytest.raises(ValidationError):  # the same as new input is refused
        parse_command_line(json.dumps({"type": "allocation.revoked", "allocation_id": "L1",
                                       "effective_date": "0001-01-01", "reason": "r"}))
