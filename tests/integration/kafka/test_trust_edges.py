"""Trust at the edges through a real broker (issue 10), in ONE consumer run over one
partition: the bad-input corpus (``tests/data/bad``, each bad line sent as a signed
exporter's payload), a replayed correction, a stale message and a poison message of
about 1 MiB are each dead-lettered with a reason or recognised as a duplicate, and
the partition goes on to the good message behind them. After the clean exit the
group's committed offset is the end of the partition (lag 0)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.consumer import ConsumerSettings, IngestConsumer, JsonLog
from consumers.deadletter import MAX_COPY_BYTES, read_dead_letter
from consumers.envelope import encode_envelope
from consumers.producer import MessageSigner, shipment_command
from consumers.settings import Connection
from consumers.signing import sign
from ledger.events import ShipmentCorrected, ShipmentRecorded

pytestmark = pytest.mark.kafka

CORPUS = Path(__file__).parents[2] / "data" / "bad"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())
#: the consumer must be done well before this (today's code retries the poison forever)
RUN_LIMIT_S = 240


class Stream:
    """(key, value, headers, expected dead-letter reason or None) in send order."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.signer = MessageSigner("acme", keys["acme"])
        self.key = keys["acme"]
        self.items: list[tuple[bytes, bytes, list[tuple[str, bytes]], str | None]] = []

    def signed(self, value: bytes, reason: str | None) -> None:
        headers = [("ql-signature", base64.b64encode(sign(self.key, value)))]
        self.items.append((b"acme", value, headers, reason))

    def command(self, line: dict[str, Any], **envelope: Any) -> bytes:
        """The signed value of one good payload (content-derived message id)."""
        if envelope:
            value = encode_envelope(self.signer.envelope(shipment_command(line, "acme"),
                                                         **envelope))
        else:
            _, value, _ = self.signer.message(line)
        return value

    def raw_payload(self, payload: bytes) -> bytes:
        """An envelope whose payload is the bytes of a corpus line, spliced in."""
        head = json.loads(self.command({"type": "shipment.voided", "shipment_ref": "X",
                                        "reason": "template"}))
        del head["payload"]
        text = json.dumps(head, separators=(",", ":")).encode()
        return text[:-1] + b',"payload":' + payload + b"}"


def _bad_line(name: str) -> bytes:
    return (CORPUS / name).read_bytes().split(b"\n")[1]


def build(keys: dict[str, Any]) -> Stream:
    s = Stream(keys)
    good = json.loads((CORPUS / "line-array.jsonl").read_bytes().split(b"\n")[0])
    s.signed(s.command(good), None)  # BAD-0, which the corpus corrections name
    for name in sorted(EXPECTED):
        s.signed(s.raw_payload(_bad_line(name)), "any")
    # a replayed correction after a later one: a duplicate, not a dead letter
    record = {"type": "shipment.recorded", "shipment_ref": "R-1", "ship_date": "2025-02-03",
              "destination": "MX", "consignee_id": "c1", "product_id": "nvidia-h100-sxm",
              "quantity": 64, "authorization": {"kind": "none"}}
    to72 = {"type": "shipment.corrected", "shipment_ref": "R-1", "quantity": 72,
            "reason": "invoice"}
    to80 = {**to72, "quantity": 80, "reason": "recount"}
    s.signed(s.command(record), None)
    s.signed(s.command(to72), None)
    s.signed(s.command(to80), None)
    s.items.append(s.items[-2])  # the very same signed bytes again
    s.signed(s.command({**record, "shipment_ref": "R-2"},
                       sent_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=8)),
             "stale-message")
    s.signed(b'{"padding":"' + b"x" * 1_048_000 + b'"}', "message-too-large")
    s.signed(s.command({**record, "shipment_ref": "R-3"}), None)  # the partition goes on
    return s


def _run(ledger: Any, keyring: Any, bootstrap: str, topic: str, log: Path) -> Any:
    settings = ConsumerSettings(connection=Connection(bootstrap), topic=topic,
                                group=f"g-{topic}", batch=50, idle_exit_s=1.5,
                                max_poll_interval_ms=5000, session_timeout_ms=6000,
                                heartbeat_interval_ms=1000)
    with log.open("w") as out:
        consumer = IngestConsumer(ledger, keyring, settings, log=JsonLog(out))
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(consumer.run()))
        thread.start()
        thread.join(RUN_LIMIT_S)
        if thread.is_alive():
            consumer.stop()
            thread.join(60)
            pytest.fail(f"the consumer was still busy after {RUN_LIMIT_S} s (a poison "
                        "message blocks the partition?)")
    return result[0]


def test_corpus_replay_stale_and_poison_are_handled_and_the_partition_goes_on(
        rules_db: str, keyring: Any, exporter_keys: dict[str, Any], kafka_bootstrap: str,
        new_topic: Callable[..., str], read_topic: Callable[..., list[Any]],
        tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from ledger.application import Ledger

    topic = new_topic(1)
    stream = build(exporter_keys)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             max_request_size=2 * 1024 * 1024)
    for key, value, headers, _ in stream.items:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    ledger = Ledger(rules_db)
    try:
        stats = _run(ledger, keyring, kafka_bootstrap, topic, tmp_path / "consumer.log")
        events = [e for _, e in ledger.read()]
    finally:
        ledger.close()

    expected = {i: reason for i, (*_, reason) in enumerate(stream.items) if reason}
    letters = {d.source_offset: d for d in map(read_dead_letter, read_topic(
        f"{topic}.dead-letter", expected=len(expected)))}
    assert sorted(letters) == sorted(expected)
    for offset, letter in letters.items():
        assert letter.reason and letter.message, offset
        if expected[offset] != "any":
            assert letter.reason == expected[offset], (offset, letter.reason, letter.message)
    assert len(expected) >= 60 + 2
    poison = letters[max(expected)]
    original = stream.items[max(expected)][1]
    assert poison.truncated == "value" and poison.value == original[:MAX_COPY_BYTES]
    assert poison.original_size == len(original)
    assert poison.original_sha256 == hashlib.sha256(original).hexdigest()
    assert stats.duplicates == 1 and stats.dead_lettered == len(expected)

    recorded = sorted(e.shipment_ref for e in events if isinstance(e, ShipmentRecorded))
    assert recorded == ["BAD-0", "R-1", "R-3"]
    corrections = [e.changes.quantity for e in events if isinstance(e, ShipmentCorrected)]
    assert corrections == [72, 80]  # the replayed 72 did not undo the 80

    tp = TopicPartition(topic, 0)
    group = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"g-{topic}",
                          enable_auto_commit=False)
    try:
        assert group.committed(tp) == len(stream.items)
    finally:
        group.close()
