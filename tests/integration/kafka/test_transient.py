"""Transient failures: a storage outage is retried with backoff, never dead-lettered,
and no position is stored for the batch until it is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers import consumer as consumer_module
from consumers.consumer import ConsumerSettings, IngestConsumer, JsonLog
from consumers.settings import Connection
from ledger.application import Ledger
from ledger.errors import StorageError

from .conftest import log_events, publish_sample, recorded_refs

pytestmark = pytest.mark.kafka


class FlakyLedger(Ledger):
    """A real ledger whose store refuses the first few writes, as a locked or
    unreachable database would (after the retry, the write goes through)."""

    failures = 3

    def append(self, events: Any, *, tracking: Any = None, keys: Any = ()) -> list[int]:
        if FlakyLedger.failures > 0:
            FlakyLedger.failures -= 1
            # nothing is written: the position must not move either
            assert tracking is None or (
                self.recorder.max_tracking_id(tracking.application_name) is None)
            raise StorageError("the ledger database is unavailable: database is locked")
        return super().append(events, tracking=tracking, keys=keys)


def test_storage_outage_is_retried_not_dead_lettered(
        kafka_bootstrap: str, new_topic: Callable[..., str], key_dir: Path, keyring: Any,
        rules_db: str, read_topic: Callable[..., list[Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "BACKOFF_FIRST_S", 0.01)
    topic = new_topic(1)
    shipments, _ = publish_sample(kafka_bootstrap, topic, key_dir, 300)
    ledger = FlakyLedger(rules_db)
    settings = ConsumerSettings(connection=Connection(kafka_bootstrap), topic=topic,
                                group=f"g-{topic}", batch=100, idle_exit_s=1.5,
                                max_poll_interval_ms=5000, session_timeout_ms=6000,
                                heartbeat_interval_ms=1000)
    log = tmp_path / "consumer.log"
    try:
        with log.open("w") as f:
            stats = IngestConsumer(ledger, keyring, settings, log=JsonLog(f)).run()
    finally:
        ledger.close()
    assert stats.transient_retries == 3
    assert stats.dead_lettered == 0
    assert stats.appended_messages == len(shipments)
    assert sorted(recorded_refs(rules_db)) == sorted(
        (s["exporter_id"], s["shipment_ref"]) for s in shipments)
    failures = [e for e in log_events(log) if e["event"] == "transient-failure"]
    assert len(failures) == 3 and "database is locked" in failures[0]["error"]
    assert read_topic(f"{topic}.dead-letter", timeout=1) == []
