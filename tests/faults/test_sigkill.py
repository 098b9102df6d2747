"""SIGKILL in the middle of writing, on SQLite and on PostgreSQL: nothing partial.

``ledger import`` and ``ledger projections rebuild`` are killed at seeded random
moments inside their write transactions (the probe waits until the process holds
the write lock, then a seeded pause), ``ledger consume`` after a seeded number of
stored batches plus a seeded pause. Afterwards the ledger holds each batch wholly or
not at all, the chain verifies, the read models agree with the log, and finishing
the work leaves exactly what an uninterrupted run leaves.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import (
    REPO,
    audit_ok,
    events_table,
    kill_inside_write,
    ledger_cmd,
    query,
    verified,
)
from tests.faults.workload import setup_ledger, write_jsonl

SEED = 20251129
IMPORT_KILLS = 2
REBUILD_KILLS = 2
REBUILD_ATTEMPTS = 8
CONSUME_KILLS = 2


def event_count(db: str) -> int:
    return int(query(db, f"SELECT COUNT(*) FROM {events_table(db)}")[0][0])


def test_sigkill_during_import_appends_all_or_nothing(db_url: str, tmp_path: Path) -> None:
    from consumers.testing import sample_shipments

    setup_ledger(db_url)
    base = event_count(db_url)
    lines = sample_shipments(2_000, ("acme", "globex"), seed=5)
    path = write_jsonl(tmp_path / "big.jsonl", lines)
    rng = random.Random(SEED)
    landed = 0
    for _ in range(IMPORT_KILLS):
        proc = subprocess.Popen(ledger_cmd(db_url, "import", str(path)), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        landed += kill_inside_write(proc, db_url, (events_table(db_url), "ledger_chain"),
                                    pause=rng.uniform(0, 0.05))
        # the file is one transaction: none of it, or (killed just after the commit) all
        assert event_count(db_url) in (base, base + len(lines))
        verified(db_url)
        if event_count(db_url) == base + len(lines):
            break
    assert landed >= 1
    done = subprocess.run(ledger_cmd(db_url, "import", str(path)), cwd=REPO, text=True,
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert event_count(db_url) == base + len(lines)
    again = subprocess.run(ledger_cmd(db_url, "import", str(path)), cwd=REPO, text=True,
                           capture_output=True, timeout=300, check=False)
    assert again.returncode == 0 and "already applied" in again.stdout
    audit_ok(db_url, "--read-model")


def test_sigkill_during_rebuild_leaves_a_consistent_read_model(db_url: str,
                                                               tmp_path: Path) -> None:
    from consumers.testing import sample_shipments

    setup_ledger(db_url)
    lines = sample_shipments(3_000, ("acme", "globex", "initech"), seed=6)
    assert subprocess.run(ledger_cmd(db_url, "import", str(write_jsonl(tmp_path / "a.jsonl",
                                                                       lines))),
                          cwd=REPO, capture_output=True, timeout=300, check=False
                          ).returncode == 0
    tables = ("rm_position", "rm_shipment_versions", "rm_rules", "rm_allocations")
    rng = random.Random(SEED + 1)
    landed = 0
    # a rebuild of 3,000 events writes for well under a second on an idle machine, so a
    # kill can come too late; each miss tries again with a shorter (seeded) pause
    for attempt in range(REBUILD_ATTEMPTS):
        if landed == REBUILD_KILLS:
            break
        proc = subprocess.Popen(ledger_cmd(db_url, "projections", "rebuild", "--quiet"),
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pause = rng.uniform(0, 0.2) / 2 ** (attempt - landed)
        landed += kill_inside_write(proc, db_url, tables, pause=pause)
        # no row past the position the read model says it reached
        position = query(db_url, "SELECT COALESCE(MAX(position), 0) FROM rm_position")[0][0]
        beyond = query(db_url, "SELECT COUNT(*) FROM rm_shipment_versions "
                               "WHERE recorded_from > ?", (position,))[0][0]
        assert beyond == 0
        # and what is there, caught up, gives the log's answers
        verified(db_url, read_model=True)
    assert landed >= 1
    done = subprocess.run(ledger_cmd(db_url, "projections", "rebuild", "--quiet"), cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    audit_ok(db_url, "--read-model")


@pytest.mark.kafka
def test_sigkill_during_consume_then_exactly_once(
        db_url: str, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str],
        key_dir: Path, keyring_path: Path) -> None:
    from tests.integration.kafka.conftest import (
        consume_cmd,
        log_events,
        publish_sample,
        recorded_refs,
    )

    setup_ledger(db_url)
    topic = new_topic(3)
    shipments, _ = publish_sample(kafka_bootstrap, topic, key_dir, 600, seed=13)
    rng = random.Random(SEED + 2)
    for run in range(CONSUME_KILLS):
        log = tmp_path / f"consume-{run}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                consume_cmd(db_url, kafka_bootstrap, topic, f"faults-{topic}-{run}",
                            keyring_path, "--batch", "40"),
                stderr=err, stdout=subprocess.DEVNULL, cwd=REPO)
            target = rng.randint(1, 3)
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline and sum(
                    1 for e in log_events(log) if e.get("event") == "batch-stored") < target:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.1))
            proc.kill()
            proc.wait()
        assert proc.returncode == -9, log.read_text()[-2000:]
        refs = recorded_refs(db_url)
        assert not [r for r, n in Counter(refs).items() if n > 1]
        verified(db_url)
    final = tmp_path / "consume-final.log"
    with final.open("w") as err:
        done = subprocess.run(
            consume_cmd(db_url, kafka_bootstrap, topic, f"faults-{topic}-final", keyring_path,
                        "--batch", "500", "--idle-exit", "2"),
            stderr=err, stdout=subprocess.DEVNULL, timeout=180, check=False, cwd=REPO)
    assert done.returncode == 0, final.read_text()[-2000:]
    refs = [r for r in recorded_refs(db_url) if r[0] != "hot"]  # the setup's shipment
    assert len(refs) == len(shipments) and len(set(refs)) == len(refs)
    assert set(refs) == {(s["exporter_id"], s["shipment_ref"]) for s in shipments}
    audit_ok(db_url, "--read-model")
