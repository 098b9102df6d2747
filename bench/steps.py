"""One measured step of the benchmark, run in its own process by ``bench.run``.

Running each step in a fresh process gives it a clean peak-memory figure (the parent
reads the child's ``ru_maxrss`` with ``os.wait4``) and keeps caches of one step from
flattering the next. Each step prints one JSON object on its last stdout line.

    python -m bench.steps STEP DB_URL [ARGS...]
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

#: the counterfactual the replay step applies to every shipment
REPLAY_RULE = "ai-diffusion-2025"


def _events_table(ledger: Any) -> tuple[str, str]:
    """(table, position column) of the eventsourcing events table."""
    from ledger.persistence import is_postgres

    table = ledger.recorder.events_table_name
    return (table, "notification_id") if is_postgres(ledger.url) else (table, "rowid")


def step_import(url: str, path: str) -> dict[str, Any]:
    """``ledger import`` as a library call: the file streamed chunk by chunk (parse,
    decide, append) into ONE transaction (all or nothing)."""
    from ledger.application import Ledger
    from ledger.cli.imports import import_file

    start, cpu = time.perf_counter(), time.process_time()
    ledger = Ledger(url)
    result = import_file(ledger, Path(path), actor="bench")
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    ledger.close()
    return {"events": result.appended, "seconds": took, "rate": result.appended / took,
            "cpu_seconds": cpu, "cpu_rate": result.appended / cpu}


def step_raw_insert(url: str) -> dict[str, Any]:
    """The same stored rows (id, version, topic, state) inserted with one executemany
    into a plain table, in one transaction: the store's speed limit."""
    from ledger.application import Ledger
    from ledger.persistence import is_postgres

    ledger = Ledger(url)
    table, _ = _events_table(ledger)
    rows = ledger._query(f"SELECT originator_id, originator_version, topic, state FROM {table}")
    pg = is_postgres(url)
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    ddl = ("CREATE TABLE bench_raw (originator_id {}, originator_version bigint, "
           "topic text, state {})").format("uuid" if pg else "TEXT", "bytea" if pg else "BLOB")
    ph = "%s" if pg else "?"
    with datastore.transaction(commit=True) as c:
        c.execute("DROP TABLE IF EXISTS bench_raw")
        c.execute(ddl)
    start, cpu = time.perf_counter(), time.process_time()
    with datastore.transaction(commit=True) as c:
        c.executemany(f"INSERT INTO bench_raw VALUES ({ph},{ph},{ph},{ph})", rows)
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    with datastore.transaction(commit=True) as c:
        c.execute("DROP TABLE bench_raw")
    ledger.close()
    return {"events": len(rows), "seconds": took, "rate": len(rows) / took,
            "cpu_seconds": cpu, "cpu_rate": len(rows) / cpu}


def step_rebuild(url: str) -> dict[str, Any]:
    """``ledger projections rebuild`` as a library call."""
    from ledger.application import Ledger
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    start, cpu = time.perf_counter(), time.process_time()
    n = ReadModel(ledger).rebuild()
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    ledger.close()
    return {"events": n, "seconds": took, "rate": n / took, "cpu_seconds": cpu,
            "cpu_rate": n / cpu}


def step_raw_select(url: str) -> dict[str, Any]:
    """SELECT every event row and json.loads its state: the read side's speed limit."""
    from ledger.application import Ledger

    ledger = Ledger(url)
    table, pos = _events_table(ledger)
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    last = 0
    while True:
        rows = ledger._query(f"SELECT {pos}, topic, state FROM {table} WHERE {pos} > ? "
                             f"ORDER BY {pos} LIMIT 20000", [last])
        for _p, _topic, state in rows:
            json.loads(state)
        n += len(rows)
        if len(rows) < 20000:
            break
        last = int(rows[-1][0])
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    ledger.close()
    return {"events": n, "seconds": took, "rate": n / took, "cpu_seconds": cpu,
            "cpu_rate": n / cpu}


def queries(url: str, count: int, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` seeded random (country, as-of, known-at, rule) questions."""
    from ledger.application import Ledger
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    rm = ReadModel(ledger)
    rm.catch_up()
    with rm._tx(commit=False) as c:
        countries = [r[0] for r in c.execute(
            "SELECT DISTINCT destination FROM rm_shipment_versions ORDER BY 1").fetchall()]
    head = ledger.max_position()
    ledger.close()
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        out.append({
            "country": rng.choice(countries),
            "as_of": (dt.date(2024, 9, 1) + dt.timedelta(days=rng.randrange(0, 560))).isoformat(),
            "known_at": rng.choice([None, rng.randrange(head // 2, head + 1)]),
            "rule": rng.choice([None, "ai-diffusion-2025"]),
        })
    return out


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000,
            "max_ms": ordered[-1] * 1000, "n": len(ordered)}


def step_quota_lib(url: str, count: str) -> dict[str, Any]:
    """``ledger quota`` as a library call (read model, caught up first)."""
    from ledger.application import Ledger
    from projections.views import readmodel_quota

    qs = queries(url, int(count))
    ledger = Ledger(url)
    times = []
    for q in qs:
        start = time.perf_counter()
        readmodel_quota(ledger, q["country"], dt.date.fromisoformat(q["as_of"]),
                        rule_id=q["rule"], known_at=q["known_at"])
        times.append(time.perf_counter() - start)
    ledger.close()
    return _percentiles(times)


def step_quota_replay(url: str, count: str) -> dict[str, Any]:
    """The same answers by a full replay of the log (load_state + quota), and a check
    that they equal the read model's."""
    from ledger.application import Ledger
    from projections.views import load_state, quota, readmodel_quota

    qs = queries(url, int(count), seed=12)
    ledger = Ledger(url)
    times = []
    equal = 0
    for q in qs:
        as_of = dt.date.fromisoformat(q["as_of"])
        start = time.perf_counter()
        state = load_state(ledger, q["known_at"])
        want = quota(state, q["country"], as_of, rule_id=q["rule"], known_at=q["known_at"])
        times.append(time.perf_counter() - start)
        del state
        got = readmodel_quota(ledger, q["country"], as_of, rule_id=q["rule"],
                              known_at=q["known_at"])
        equal += got == want
    ledger.close()
    return {**_percentiles(times), "equal_to_read_model": f"{equal}/{len(qs)}"}


def step_replay(url: str) -> dict[str, Any]:
    """What ``ledger replay --rule ai-diffusion-2025`` computes, with what is on this
    branch: every country's position under the rule, from a full replay of the log."""
    from ledger.application import Ledger
    from projections.views import load_state, quota_all

    ledger = Ledger(url)
    start = time.perf_counter()
    state = load_state(ledger)
    loaded = time.perf_counter() - start
    positions = quota_all(state, dt.date(2026, 3, 1), rule_id=REPLAY_RULE)
    took = time.perf_counter() - start
    ledger.close()
    return {"shipments": len(state.shipments), "countries": len(positions),
            "seconds": took, "replay_seconds": loaded, "fold_seconds": took - loaded}


def step_replay_readmodel(url: str) -> dict[str, Any]:
    """The same positions from the read model's rows (no event decoding)."""
    from ledger.application import Ledger
    from projections.views import readmodel_quota_all

    ledger = Ledger(url)
    start = time.perf_counter()
    positions = readmodel_quota_all(ledger, dt.date(2026, 3, 1), rule_id=REPLAY_RULE)
    took = time.perf_counter() - start
    ledger.close()
    return {"countries": len(positions), "seconds": took}


STEPS = {
    "import": step_import, "raw_insert": step_raw_insert, "rebuild": step_rebuild,
    "raw_select": step_raw_select, "quota_lib": step_quota_lib,
    "quota_replay": step_quota_replay, "replay": step_replay,
    "replay_readmodel": step_replay_readmodel,
}


def main(argv: list[str]) -> None:
    step, url, *args = argv
    result = STEPS[step](url, *args)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
