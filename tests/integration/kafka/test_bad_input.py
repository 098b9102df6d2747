"""Bad messages interleaved with good ones, through a real broker: each bad one is
dead-lettered with its specific reason and original bytes, every good one appended.
Runs on SQLite and PostgreSQL (the ``ledger`` fixture)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.consumer import ConsumerSettings, IngestConsumer, JsonLog
from consumers.deadletter import read_dead_letter
from consumers.envelope import encode_envelope
from consumers.producer import MessageSigner, shipment_command
from consumers.settings import Connection
from consumers.signing import sign
from ledger.events import ShipmentCorrected, ShipmentRecorded, ShipmentVoided

pytestmark = pytest.mark.kafka

BASE: dict[str, Any] = {
    "type": "shipment.recorded", "exporter_id": "acme", "ship_date": "2025-06-02",
    "destination": "MX", "consignee_id": "c-1", "product_id": "nvidia-h100-sxm",
    "quantity": 10, "authorization": {"kind": "none"},
}


def ship(ref: str, **changes: Any) -> dict[str, Any]:
    return {**BASE, "shipment_ref": ref, **changes}


class Messages:
    """Builds (key, value, headers, expected reason or None) in send order."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys
        self.items: list[tuple[bytes | None, bytes, list[tuple[str, bytes]], str | None]] = []

    def envelope(self, payload: dict[str, Any], exporter: str = "acme", **changes: Any
                 ) -> dict[str, Any]:
        signer = MessageSigner(exporter, self.keys[exporter])
        data = json.loads(encode_envelope(signer.envelope(shipment_command(
            {**ship("X-0"), "exporter_id": exporter}, exporter))))
        data["payload"] = payload
        data.update(changes)
        return data

    def raw(self, value: bytes, reason: str | None, *, signer: str | None = "acme",
            key: bytes | None = b"acme") -> None:
        headers = ([] if signer is None else
                   [("ql-signature", base64.b64encode(sign(self.keys[signer], value)))])
        self.items.append((key, value, headers, reason))

    def good(self, payload: dict[str, Any]) -> None:
        self.raw(json.dumps(self.envelope(payload)).encode(), None)

    def bad(self, data: dict[str, Any] | bytes, reason: str, **kw: Any) -> None:
        value = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.raw(value, reason, **kw)


def build(keys: dict[str, Any]) -> Messages:
    m = Messages(keys)
    future = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    m.good(ship("A-1"))
    m.bad(b"{this is not json", "malformed-json")
    m.good(ship("A-2"))
    m.bad(b"", "empty-message", signer=None)
    m.bad(b'["an", "array"]', "schema-violation")
    m.good(ship("A-3", quantity=3))
    m.bad(m.envelope(ship("B-1"), schema_version=2), "unsupported-schema-version")
    m.bad(json.dumps(m.envelope(ship("B-2"))).encode(), "unsigned", signer=None)
    m.bad(m.envelope(ship("B-3"), auth={"alg": "ed25519", "key_id": "mallory"}), "unknown-key")
    m.good(ship("A-4", destination="BR"))
    # signed by acme, then altered in transit
    tampered = json.dumps(m.envelope(ship("B-4"))).encode()
    m.raw(tampered, "bad-signature")
    key, value, headers, _ = m.items.pop()
    m.items.append((key, value.replace(b'"quantity": 10', b'"quantity": 99'), headers,
                    "bad-signature"))
    # forgery: acme signs a message claiming to be globex
    m.bad(m.envelope({**ship("B-5"), "exporter_id": "globex"}, exporter_id="globex"),
          "exporter-mismatch", key=b"globex")
    # forgery: acme's own envelope, a shipment in globex's name
    m.bad(m.envelope({**ship("B-6"), "exporter_id": "globex"}), "exporter-mismatch")
    # forgery: an admin event on the exporter topic
    m.bad(m.envelope({"type": "allocation.granted", "allocation_id": "LIC-1", "country": "MX",
                      "tpp_amount": 10**9, "valid_from": "2025-01-01", "holder": "acme"}),
          "admin-event")
    m.bad(m.envelope({"type": "rule.published", "document": {}}), "admin-event")
    m.bad(m.envelope({**ship("B-7"), "type": "shipment.teleported"}), "wrong-payload-type")
    m.bad(m.envelope(ship("B-8", quantity="lots")), "schema-violation")
    m.bad(m.envelope(ship("B-9", destination="ZZ")), "unknown-country")
    m.bad(m.envelope(ship("B-10", quantity=-5)), "non-positive-quantity")
    m.bad(m.envelope(ship("B-11", product_id="acme-mystery-chip")), "unknown-product")
    m.bad(m.envelope(ship("B-12", ship_date=future)), "future-ship-date")
    m.bad(m.envelope(ship("B-13")), "wrong-key", key=b"someone-else")
    # forgery: a replay with a new message id, same shipment identity, other payload
    m.bad(m.envelope(ship("A-1", quantity=500)), "conflicting-duplicate")
    # an exact repeat of A-2 is a harmless no-op, not a dead letter
    m.good(ship("A-2"))
    m.bad(m.envelope({"type": "shipment.corrected", "exporter_id": "acme",
                      "shipment_ref": "NEVER-SENT", "reason": "typo", "quantity": 2}),
          "unknown-shipment")
    m.good(ship("A-5"))
    m.good({"type": "shipment.voided", "exporter_id": "acme", "shipment_ref": "A-5",
            "reason": "cancelled"})
    m.bad(m.envelope({"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "A-5",
                      "reason": "late fix", "quantity": 2}), "voided-shipment")
    m.good({"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "A-3",
            "reason": "miscounted", "quantity": 4})
    m.good(ship("A-6", authorization={"kind": "lpp"}))
    # a die area: declared for an unknown product, refused for a catalog one (in the
    # message itself, or in a correction of a catalog product's shipment), bad values
    m.good(ship("A-7", product_id="acme-asic", tpp_per_unit=2368, die_area_mm2=814.5))
    m.bad(m.envelope(ship("B-14", die_area_mm2=814)), "die-area-for-catalog-product")
    m.bad(m.envelope({"type": "shipment.corrected", "exporter_id": "acme", "shipment_ref": "A-6",
                      "reason": "datasheet", "die_area_mm2": 814}),
          "die-area-for-catalog-product")
    m.bad(m.envelope(ship("B-15", product_id="acme-asic", tpp_per_unit=2368, die_area_mm2=0)),
          "schema-violation")
    m.bad(m.envelope(ship("B-16", product_id="acme-asic", tpp_per_unit=2368,
                          die_area_mm2="814")), "schema-violation")
    return m


def run_consumer(ledger: Any, keyring: Any, bootstrap: str, topic: str, tmp_path: Path,
                 batch: int = 7) -> Any:
    settings = ConsumerSettings(connection=Connection(bootstrap), topic=topic,
                                group=f"g-{topic}", batch=batch, idle_exit_s=1.5,
                                max_poll_interval_ms=5000, session_timeout_ms=6000,
                                heartbeat_interval_ms=1000)
    with (tmp_path / "consumer.log").open("w") as log:
        return IngestConsumer(ledger, keyring, settings, log=JsonLog(log)).run()


def test_bad_messages_are_dead_lettered_with_their_reason_and_good_ones_appended(
        ledger: Any, keyring: Any, exporter_keys: dict[str, Any], kafka_bootstrap: str,
        new_topic: Callable[..., str], read_topic: Callable[..., list[Any]],
        tmp_path: Path) -> None:
    from kafka import KafkaProducer

    topic = new_topic(1)
    messages = build(exporter_keys)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value, headers, _ in messages.items:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    stats = run_consumer(ledger, keyring, kafka_bootstrap, topic, tmp_path)

    expected = {offset: reason for offset, (_, _, _, reason) in enumerate(messages.items)
                if reason is not None}
    assert len(set(expected.values())) >= 15
    letters = [read_dead_letter(r) for r in read_topic(f"{topic}.dead-letter",
                                                       expected=len(expected))]
    got = {d.source_offset: d.reason for d in letters}
    assert got == expected
    for d in letters:
        key, value, _, _ = messages.items[d.source_offset]
        assert (d.source_topic, d.source_partition) == (topic, 0)
        assert d.value == value and d.key == key  # the original bytes, untouched
        assert d.message
    assert stats.dead_lettered == len(expected)
    assert stats.duplicates == 1

    events = [e for _, e in ledger.read()]
    recorded = {e.shipment_ref: e for e in events if isinstance(e, ShipmentRecorded)}
    assert sorted(recorded) == ["A-1", "A-2", "A-3", "A-4", "A-5", "A-6", "A-7"]
    assert str(recorded["A-7"].shipment.die_area_mm2) == "814.5"
    assert recorded["A-1"].shipment.quantity == 10  # the replay did not overwrite it
    assert [e.shipment_ref for e in events if isinstance(e, ShipmentVoided)] == ["A-5"]
    assert [e.shipment_ref for e in events if isinstance(e, ShipmentCorrected)] == ["A-3"]
    # every event names the exact message it came from
    offsets = {i for i, (_, _, _, reason) in enumerate(messages.items) if reason is None}
    actors = {e.actor for e in events if isinstance(e, (ShipmentRecorded, ShipmentCorrected,
                                                        ShipmentVoided))}
    assert actors <= {f"kafka:{topic}/0/{o}" for o in offsets}
    assert ledger.recorder.max_tracking_id(f"kafka:{topic}:0") == len(messages.items) - 1
    # the applied message ids are stored with the events, on both backends
    from ledger.events import shipment_id

    first_id = json.loads(messages.items[0][1])["message_id"]
    applied = ledger.applied_keys_of([shipment_id("acme", "A-1")])
    assert applied[shipment_id("acme", "A-1")] == {f"message:{first_id}"}

    # rewind the group's Kafka offsets, as if the consumer crashed after the ledger
    # stored the batches but before Kafka heard of it: running again writes nothing,
    # because the ledger's stored position is the resume point
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    tp = TopicPartition(topic, 0)
    rewind = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"g-{topic}",
                           enable_auto_commit=False)
    try:
        rewind.assign([tp])
        rewind.commit({tp: OffsetAndMetadata(0, "", -1)})
        assert rewind.committed(tp) == 0
    finally:
        rewind.close()
    before = ledger.max_position()
    again = run_consumer(ledger, keyring, kafka_bootstrap, topic, tmp_path)
    assert again.received == 0 and ledger.max_position() == before
    # and its clean exit committed the stored position, though it read nothing: a lag
    # monitor shows 0 (before issue 10 the group stayed at the rewound offset 0)
    check = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"g-{topic}",
                          enable_auto_commit=False)
    try:
        assert check.committed(tp) == len(messages.items)
    finally:
        check.close()
