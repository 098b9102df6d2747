"""Thirteen writer processes at once on one ledger, on SQLite and on PostgreSQL.

Released together from a barrier: three imports of different files, the same file
imported twice, two ``ledger ship record`` loops, six processes correcting one
shipment (each sending its correction twice), and the projections service catching up meanwhile. Afterwards the ledger
holds exactly what the same commands applied one after another give (event count and
content), every position is unique and chained, ``audit verify`` and ``audit verify
--read-model`` pass, and the loser of the double import said "already applied".
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.faults.conftest import (
    Writers,
    audit_ok,
    events_table,
    position_column,
    query,
)
from tests.faults.workload import (
    CORRECTORS,
    LOOP_SHIPMENTS,
    correction,
    correction_args,
    exporter_lines,
    loop_command,
    sequential_reference,
    setup_ledger,
    write_jsonl,
)

DISTINCT = {"alpha": 100, "bravo": 100, "charlie": 100}
SHARED = ("delta", 120)
LOOPS = ("loop-one", "loop-two")


def stored_events(db: str) -> Counter[tuple[str, uuid.UUID]]:
    rows = query(db, f"SELECT topic, originator_id FROM {events_table(db)}")
    return Counter((topic, uuid.UUID(str(origin))) for topic, origin in rows)


def test_thirteen_writers_end_as_a_sequential_import(db_url: str, tmp_path: Path,
                                                     writers: Writers) -> None:
    setup_ledger(db_url)
    files = {name: write_jsonl(tmp_path / f"{name}.jsonl", exporter_lines(name, n, seed))
             for seed, (name, n) in enumerate([*DISTINCT.items(), SHARED], start=1)}
    for name in DISTINCT:
        writers.start(f"import-{name}", "cli", db_url, "import", str(files[name]))
    for twin in (1, 2):
        writers.start(f"import-shared-{twin}", "cli", db_url, "import", str(files[SHARED[0]]))
    for exporter in LOOPS:
        writers.start(f"loop-{exporter}", "ship-loop", db_url, exporter, str(LOOP_SHIPMENTS))
    for i in range(CORRECTORS):
        writers.start(f"correct-{i}", "cli-twice", db_url, *correction_args(i))
    stop = tmp_path / "stop-catch-up"
    writers.start("catch-up", "catch-up", db_url, str(stop))
    writers.release()
    names = [n for n, _ in writers.procs if n != "catch-up"]
    results = writers.wait(names)
    stop.touch()
    results |= writers.wait(["catch-up"])

    failed = {n: r for n, r in results.items() if r[0] != 0}
    assert not failed, failed
    assert sum(1 for n, _ in writers.procs if n != "catch-up") >= 8

    # the double import: one appended the file, the other found it already applied
    twins = [results[f"import-shared-{t}"][1] for t in (1, 2)]
    assert sorted("already applied" in out for out in twins) == [False, True], twins
    assert any("events appended at positions" in out for out in twins), twins

    # the same commands one after another: same number of events, same content
    reference = str(tmp_path / "sequential.db")
    batches: list[list[dict[str, Any]]] = [exporter_lines(name, n, seed) for seed, (name, n)
                                           in enumerate([*DISTINCT.items(), SHARED], start=1)]
    batches.append(exporter_lines(*SHARED, seed=len(DISTINCT) + 1))  # the second import
    batches += [[loop_command(e, i)] for e in LOOPS for i in range(LOOP_SHIPMENTS)]
    batches += [[correction(i)] for i in range(CORRECTORS) for _twice in (1, 2)]
    sequential_reference(reference, batches)
    got, want = stored_events(db_url), stored_events(reference)
    assert sum(got.values()) == sum(want.values())
    assert got == want

    # positions: unique, each with exactly one chain link
    pos = position_column(db_url)
    table = events_table(db_url)
    count, distinct = query(db_url, f"SELECT COUNT(*), COUNT(DISTINCT {pos}) FROM {table}")[0]
    assert count == distinct == sum(want.values())
    links = query(db_url, f"SELECT COUNT(*) FROM ledger_chain c JOIN {table} e "
                          f"ON e.{pos} = c.position")[0][0]
    assert links == count == query(db_url, "SELECT COUNT(*) FROM ledger_chain")[0][0]

    # the hot shipment: recorded once, then each of the six corrections once (each
    # process sent its own twice; the repeat was a no-op even after other corrections)
    from ledger.events import shipment_id

    hot_id = shipment_id("hot", "X-1")
    hot = query(db_url, f"SELECT COUNT(*), MAX(originator_version) FROM {table} "
                        "WHERE originator_id = ?",
                (hot_id if table == "ledger_events" else hot_id.hex,))
    assert hot == [(CORRECTORS + 1, CORRECTORS + 1)]

    audit_ok(db_url)
    audit_ok(db_url, "--read-model")
