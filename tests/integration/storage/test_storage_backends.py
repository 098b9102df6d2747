"""The store behaves the same on SQLite and PostgreSQL: appends, reads, known-at by
position and by time, chain rows, idempotent re-submits, conflicting duplicates and
writers racing on the same shipment."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ledger.application import BatchRejected, Ledger
from ledger.chain import GENESIS_HASH, link_hash
from ledger.errors import ConflictingDuplicate, ValidationError
from ledger.events import ShipmentRecorded, shipment_id
from projections.views import load_state

from tests.integration.storage.storage_helpers import shipment


def test_append_and_read_back_in_recorded_order(db_url: str) -> None:
    app = Ledger(db_url)
    result = app.submit([shipment("A"), shipment("B", quantity=5)], actor="test")
    assert result.appended == 2
    assert result.positions == sorted(result.positions)
    read = list(app.read())
    assert [p for p, _ in read] == result.positions
    assert [e.shipment_ref for _, e in read] == ["A", "B"]  # type: ignore[attr-defined]
    assert isinstance(read[1][1], ShipmentRecorded)
    assert read[1][1].shipment.quantity == 5
    assert app.max_position() == result.positions[-1]
    app.close()


def test_read_stops_at_known_at_position(db_url: str) -> None:
    app = Ledger(db_url)
    first = app.submit([shipment("A")], actor="test").positions
    app.submit([shipment("B"), shipment("C")], actor="test")
    assert [e.shipment_ref for _, e in app.read(known_at=first[-1])] == ["A"]  # type: ignore[attr-defined]
    state = load_state(app, first[-1])
    assert set(state.shipments) == {("EXP01", "A")}
    assert app.resolve_known_at(str(first[-1])) == first[-1]
    app.close()


def test_known_at_by_timestamp(db_url: str) -> None:
    app = Ledger(db_url)
    first = app.submit([shipment("A"), shipment("B")], actor="test").positions
    head = app.head()
    assert head is not None and head[0] == first[-1]
    time.sleep(0.01)
    app.submit([shipment("C")], actor="test")
    assert app.resolve_known_at(head[1]) == first[-1]
    assert app.resolve_known_at(head[1].replace("+00:00", "Z")) == first[-1]
    with pytest.raises(ValidationError, match="before the first recorded event"):
        app.resolve_known_at("2000-01-01T00:00:00")
    with pytest.raises(ValidationError) as e:
        app.resolve_known_at("yesterday")
    assert e.value.field == "known_at"
    app.close()


def test_chain_rows_link_every_stored_event(db_url: str) -> None:
    app = Ledger(db_url)
    app.submit([shipment("A"), shipment("B")], actor="test")
    app.submit([shipment("C")], actor="test")
    times = app.recorded_times()
    stored = list(app.read_stored())
    assert sorted(times) == [n.id for n in stored]
    stamps = [times[n.id] for n in stored]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    prev = GENESIS_HASH
    for n in stored:
        prev = link_hash(prev, n.id, times[n.id], str(n.originator_id), n.originator_version,
                         n.topic, n.state)
    head = app.head()
    assert head is not None and head[2] == prev
    app.close()


def test_resubmitting_the_same_batch_is_a_no_op(db_url: str) -> None:
    app = Ledger(db_url)
    batch = [shipment("A"), shipment("B")]
    app.submit(batch, actor="test")
    again = app.submit(batch, actor="test")
    assert again.appended == 0 and again.duplicates == 2
    assert app.max_position() == 2 or len(list(app.read())) == 2
    assert len(list(app.read())) == 2
    app.close()


def test_conflicting_duplicate_is_refused_and_nothing_appended(db_url: str) -> None:
    app = Ledger(db_url)
    app.submit([shipment("A")], actor="test")
    with pytest.raises(BatchRejected) as e:
        app.submit([shipment("B"), shipment("A", quantity=99)], actor="test")
    (bad,) = e.value.errors_only()
    assert isinstance(bad.error, ConflictingDuplicate)
    assert "A" in str(bad.error)
    assert len(list(app.read())) == 1  # B was not appended either: all or nothing
    app.close()


def test_writers_racing_on_the_same_shipment_record_it_once(db_url: str) -> None:
    writers = 4
    apps = [Ledger(db_url) for _ in range(writers)]
    barrier = threading.Barrier(writers)
    results: list[Any] = [None] * writers
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            barrier.wait()
            # each writer's batch also holds a shipment of its own
            results[i] = apps[i].submit([shipment(f"own-{i}"), shipment("SAME")],
                                        actor=f"writer-{i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    same = [e for _, e in apps[0].read() if getattr(e, "shipment_ref", None) == "SAME"]
    assert len(same) == 1
    assert sum(r.appended for r in results) == writers + 1
    assert sum(r.duplicates for r in results) == writers - 1
    stored = list(apps[0].recorder.select_events(shipment_id("EXP01", "SAME")))
    assert len(stored) == 1
    # the chain stays one unbroken line across the racing transactions
    assert sorted(apps[0].recorded_times()) == [n.id for n in apps[0].read_stored()]
    for app in apps:
        app.close()


def test_racing_processes_record_a_shipment_once(db_url: str, tmp_path: Any) -> None:
    """The same race with separate processes (separate connections and pools)."""
    import subprocess
    import sys

    Ledger(db_url).close()  # create the tables before the race
    code = (
        "import sys, time\n"
        "from ledger.application import Ledger\n"
        "from ledger.commands import parse_command\n"
        "c = parse_command({'type': 'shipment.recorded', 'exporter_id': 'EXP01',"
        " 'shipment_ref': 'P', 'ship_date': '2025-06-01', 'destination': 'MX',"
        " 'consignee_id': 'C1', 'product_id': 'nvidia-h100-sxm', 'quantity': 3,"
        " 'authorization': {'kind': 'none'}})\n"
        "app = Ledger(sys.argv[1])\n"
        "while time.time() < float(sys.argv[2]): pass\n"
        "r = app.submit([c], actor='proc')\n"
        "print(r.appended)\n"
    )
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url, str(start)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(outs) == ["0", "0", "1"]
    app = Ledger(db_url)
    assert len(list(app.read())) == 1
    app.close()


def test_large_batches_are_chunked_in_one_transaction(db_url: str, monkeypatch: Any) -> None:
    """PostgreSQL inserts a large batch chunk by chunk (one transaction, one chain);
    forced here with a tiny chunk size. A no-op on SQLite, which runs it as usual."""
    import ledger.persistence_postgres as pg

    monkeypatch.setattr(pg, "INSERT_CHUNK", 3)
    from eventsourcing.persistence import Tracking

    app = Ledger(db_url)
    app.submit([shipment("first")], actor="test")
    result = app.submit([shipment(f"B{i}") for i in range(10)], actor="test",
                        tracking=Tracking("kafka:shipments:0", 41))
    assert result.appended == 10 and len(result.positions) == 10
    stored = list(app.read_stored())
    assert [n.id for n in stored][-10:] == result.positions
    times = app.recorded_times()
    prev = GENESIS_HASH
    for n in stored:
        prev = link_hash(prev, n.id, times[n.id], str(n.originator_id), n.originator_version,
                         n.topic, n.state)
    assert app.head() == (stored[-1].id, times[stored[-1].id], prev)
    assert app.recorder.max_tracking_id("kafka:shipments:0") == 41
    with pytest.raises(BatchRejected):  # all or nothing: one bad command, nothing appended
        app.submit([*(shipment(f"C{i}") for i in range(7)), shipment("B0", quantity=5)],
                    actor="test")
    assert len(list(app.read())) == 11
    # a clash in the last chunk rolls back the chunks before it
    from eventsourcing.persistence import IntegrityError

    fresh = [o.events[0] for o in app.plan([shipment(f"D{i}") for i in range(7)], actor="t")]
    already = next(e for _, e in app.read())
    with pytest.raises(IntegrityError):
        app.append([*fresh, already])
    assert len(list(app.read())) == 11
    assert sorted(app.recorded_times()) == [n.id for n in app.read_stored()]
    app.close()
