"""Exactly once under SIGKILL and with two consumer processes in one group.

Consumers run as ``ledger consume`` subprocesses against a real broker. The crash
test restarts each time under a fresh group id: Kafka's committed offsets are then of
no help and the ledger's stored position is the only resume point, which is the
property under test (and Tansu's group coordinator does not reliably re-admit a
group whose member was SIGKILLed mid-join; seen here, see README).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    consume_cmd,
    load_rules,
    log_events,
    normalized_positions,
    publish_sample,
    recorded_refs,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DAYS = ("2025-06-30", "2025-10-31", "2026-01-31")
RULE = "ai-diffusion-2025"


def import_file(tmp_path: Path, shipments: list[dict[str, Any]]) -> str:
    """A ledger holding the same shipments through ``ledger import`` (the reference)."""
    from ledger.application import Ledger
    from ledger.commands import parse_command

    db = str(tmp_path / "reference.db")
    load_rules(db)
    app = Ledger(db)
    try:
        app.submit([parse_command(s) for s in shipments], actor="test")
    finally:
        app.close()
    return db


def batches_stored(log: Path) -> int:
    return sum(1 for e in log_events(log) if e.get("event") == "batch-stored")


def test_sigkill_at_random_points_then_exactly_once(
        kafka_bootstrap: str, new_topic: Callable[..., str], key_dir: Path,
        keyring_path: Path, rules_db: str, tmp_path: Path) -> None:
    topic = new_topic(3)
    shipments, _ = publish_sample(kafka_bootstrap, topic, key_dir, 3000)
    rng = random.Random(20251125)
    kills = 0
    for run in range(5):
        log = tmp_path / f"consumer-{run}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                consume_cmd(rules_db, kafka_bootstrap, topic, f"crash-{topic}-{run}",
                            keyring_path, "--batch", "50"), stderr=err,
                stdout=subprocess.DEVNULL)
            try:
                # kill after a random number of stored batches, at a random moment
                target = rng.randint(1, 4)
                deadline = time.monotonic() + 30
                while batches_stored(log) < target and time.monotonic() < deadline:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.02)
                time.sleep(rng.uniform(0, 0.15))
            finally:
                proc.kill()
                proc.wait()
        assert proc.returncode == -9, log.read_text()[-2000:]
        kills += 1
    assert kills >= 5
    partial = recorded_refs(rules_db)
    assert 0 < len(partial) < len(shipments)  # the kills landed during ingestion

    # SIGTERM: the batch in hand is finished, the process leaves cleanly
    term_log = tmp_path / "consumer-term.log"
    with term_log.open("w") as err:
        proc = subprocess.Popen(
            consume_cmd(rules_db, kafka_bootstrap, topic, f"crash-{topic}-term", keyring_path,
                        "--batch", "50"), stderr=err, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while batches_stored(term_log) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert log_events(term_log)[-1]["event"] == "stopped"

    final_log = tmp_path / "consumer-final.log"
    with final_log.open("w") as err:
        done = subprocess.run(
            consume_cmd(rules_db, kafka_bootstrap, topic, f"crash-{topic}-final", keyring_path,
                        "--batch", "500", "--idle-exit", "2", "--stats"),
            stderr=err, stdout=subprocess.PIPE, timeout=120, check=False)
    assert done.returncode == 0, final_log.read_text()[-2000:]

    refs = recorded_refs(rules_db)
    assert len(refs) == len(shipments)
    assert not [r for r, n in Counter(refs).items() if n > 1]
    assert set(refs) == {(s["exporter_id"], s["shipment_ref"]) for s in shipments}
    reference = import_file(tmp_path, shipments)
    assert (normalized_positions(rules_db, DAYS, RULE)
            == normalized_positions(reference, DAYS, RULE))


def _assignment(log: Path) -> set[int]:
    """The partitions a consumer holds now, from its log."""
    held: set[int] = set()
    for e in log_events(log):
        if e.get("event") == "partition-assigned":
            held.add(int(e["partition"]))
        elif e.get("event") == "partitions-revoked":
            held -= set(e["partitions"])
    return held


def test_two_consumers_in_one_group_share_the_partitions_exactly_once(
        kafka_bootstrap: str, new_topic: Callable[..., str], key_dir: Path,
        keyring_path: Path, rules_db: str, tmp_path: Path) -> None:
    topic = new_topic(3)
    group = f"pair-{topic}"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = []
    for log in logs:
        err = log.open("w")
        # idle-exit counts from the join: signing and publishing 3,000 messages after the
        # group settles can take several seconds on a loaded machine, so leave room
        procs.append((subprocess.Popen(
            consume_cmd(rules_db, kafka_bootstrap, topic, group, keyring_path, "--batch", "100",
                        "--idle-exit", "20", "--stats"),
            stderr=err, stdout=subprocess.PIPE), err))
    try:
        # publish only once the group settled on two members, so both get work
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            a, b = (_assignment(log) for log in logs)
            if a and b and not a & b and a | b == {0, 1, 2}:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the group did not settle: {[log.read_text()[-800:] for log in logs]}")
        shipments, partitions = publish_sample(kafka_bootstrap, topic, key_dir, 3000, seed=12)
        assert partitions == {0, 1, 2}
        outputs = [proc.communicate(timeout=120)[0] for proc, _ in procs]
    finally:
        for proc, err in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err.close()
    assert [p.returncode for p, _ in procs] == [0, 0], [log.read_text()[-1500:] for log in logs]
    stats = [json.loads(out) for out in outputs]
    assert all(s["appended_messages"] > 0 for s in stats), stats  # both did work
    assert sum(s["appended_messages"] for s in stats) == len(shipments)
    refs = recorded_refs(rules_db)
    assert sorted(refs) == sorted((s["exporter_id"], s["shipment_ref"]) for s in shipments)
