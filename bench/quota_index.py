"""The quota rows of the benchmark: answers from the position index beside the fold.

    python -m bench.quota_index DB_URL [--queries 200] [--fold-queries 20] [--cli 20]

On a bench ledger already imported (``bench.steps import``), in one run, so the
ratios compare figures measured together:

1. ``rebuild``: ``ledger projections rebuild`` (the read model; the index is built on
   use, so this is also what the index adds to a rebuild);
2. ``first_query``: the worst case, in a fresh process right after the rebuild: the
   largest country, as of the last ship date, in force (it builds that pair);
3. ``build_all`` (with ``--build-all``): building every (revision, country) pair
   (``PositionIndex.refresh_all``); without it, ``indexed_first_pass``: the query set
   asked once, building the pairs it needs on the way;
4. ``indexed``: the library call ``readmodel_quota`` over the bench's query set
   (``bench.steps.queries``) known at the head, split with and without ``--rule``;
   then ``largest_build`` (the largest country's remaining pairs) and
   ``indexed_largest``: the largest country at 100 seeded as-of dates;
5. ``fold``: the same questions answered the way they were before the index
   (``country_state`` + ``quota``), a sample (``--fold-queries``), and the largest
   country; the baseline of the ratios;
6. ``known_at_past``: the query set's questions with a past ``--known-at`` (the fold);
7. ``cli``: whole ``ledger quota --json`` processes beside ``python -c "import click"``
   processes, interleaved.

Prints one JSON object on its last line; ``--out FILE`` also writes it there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.steps import _percentiles, queries


def _timed(samples: list[float], fn: Callable[[], Any],
           cpu: list[float] | None = None) -> Any:
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    samples.append(time.perf_counter() - start)
    if cpu is not None:  # this process's CPU time: what the answer costs, whatever else
        cpu.append(time.process_time() - start_cpu)  # runs on the shared machine
    return out


def _rebuild(url: str) -> dict[str, Any]:
    from ledger.application import Ledger
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    start = time.perf_counter()
    events = ReadModel(ledger).rebuild()
    took = time.perf_counter() - start
    ledger.close()
    return {"events": events, "seconds": took, "rate": events / took}


def _largest(url: str) -> tuple[str, int]:
    from ledger.application import Ledger
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    with ReadModel(ledger)._tx(commit=False) as c:
        country, n = c.execute(
            "SELECT destination, COUNT(*) FROM rm_shipment_versions WHERE recorded_to IS "
            "NULL AND voided = 0 GROUP BY destination ORDER BY 2 DESC LIMIT 1").fetchall()[0]
    ledger.close()
    return str(country), int(n)


LAST_DAY = "2026-02-23"  # bench.generate's last ship date


def step_first_query(url: str, country: str) -> dict[str, Any]:
    """Run in a fresh process: the first question after a rebuild."""
    from ledger.application import Ledger
    from projections.views import readmodel_quota

    ledger = Ledger(url)
    start = time.perf_counter()
    readmodel_quota(ledger, country, dt.date.fromisoformat(LAST_DAY))
    first = time.perf_counter() - start
    start = time.perf_counter()
    readmodel_quota(ledger, country, dt.date.fromisoformat(LAST_DAY))
    second = time.perf_counter() - start
    ledger.close()
    return {"country": country, "first_ms": first * 1000, "second_ms": second * 1000}


def step_build_index(url: str) -> dict[str, Any]:
    """What ``ledger import`` (and ``projections rebuild``) now adds: fold the read
    models and build every (revision, country) pair (``build_index``)."""
    from ledger.application import Ledger
    from projections.position_index import PositionIndex
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    rm = ReadModel(ledger)
    start, cpu = time.perf_counter(), time.process_time()
    folded = rm.catch_up()
    fold_s = time.perf_counter() - start
    pairs = PositionIndex(rm).refresh_all()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    ledger.close()
    return {"events_folded": folded, "fold_seconds": fold_s, "pairs": pairs,
            "index_seconds": took - fold_s, "seconds": took, "cpu_seconds": cpu}


def _sqlite_copy(url: str, suffix: str) -> str:
    """A copy of a SQLite ledger file (checkpointed first), as a URL."""
    import shutil
    import sqlite3

    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(path, path + suffix)
    return "sqlite:///" + path + suffix


def _in_process(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.quota_index", *args], check=True,
                          capture_output=True, text=True)
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def after_import(url: str) -> dict[str, Any]:
    """The first ``quota`` of the largest country right after ``ledger import`` (SQLite),
    each in a fresh process, on two copies of the freshly imported file: as before
    (``--no-index``: that query folds the read model and builds its pair; the
    baseline) and after ``build_index`` (what ``ledger import`` now does by default),
    with the time ``build_index`` adds to the import. The copies are deleted after."""
    import os

    if url.startswith(("postgres://", "postgresql://")):
        raise ValueError("after_import copies the SQLite file: give a SQLite path or URL")
    base, built = _sqlite_copy(url, ".base"), _sqlite_copy(url, ".built")
    try:
        index = _in_process("--step", "build_index", built)
        country, rows = _largest(built)
        first = _in_process("--first-query", built, country)
        baseline = _in_process("--first-query", base, country)
    finally:
        for copy in (base, built):
            for tail in ("", "-wal", "-shm"):
                if os.path.exists(copy.removeprefix("sqlite:///") + tail):
                    os.remove(copy.removeprefix("sqlite:///") + tail)
    return {"country": country, "shipments": rows, "build_index": index,
            "first_ms": first["first_ms"], "second_ms": first["second_ms"],
            "baseline_first_ms": baseline["first_ms"],
            "ratio": first["first_ms"] / baseline["first_ms"]}


#: where ``known_at_step`` ends its slices, as fractions of the log
SLICES = (0.5, 0.75, 0.9, 1.0)


def _fold_in_slices(url: str, countries: list[str]) -> dict[str, Any]:
    """Fold the read model from empty in ``SLICES``, refreshing ``countries``' pairs
    after each (what queries or the catch-up service do on a live ledger); returns the
    slices' end positions and the time it took."""
    from ledger.application import Ledger
    from projections.position_index import PositionIndex
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    rm = ReadModel(ledger)
    head = ledger.max_position()
    ends: list[int] = []
    start = time.perf_counter()
    for fraction in SLICES:
        rm.catch_up(until=round(head * fraction))
        index = PositionIndex(rm)
        index.refresh_timeline()
        for country in countries:
            index.refresh(country)
        ends.append(rm.position())
    took = time.perf_counter() - start
    with rm._tx(commit=False) as c:
        past, live = c.execute("SELECT (SELECT COUNT(*) FROM rm_quota_past), "
                               "(SELECT COUNT(*) FROM rm_quota_days)").fetchall()[0]
    ledger.close()
    return {"ends": ends, "seconds": took, "past_rows": past, "live_rows": live}


def known_at_step(url: str, count: int = 20) -> dict[str, Any]:
    """Past ``--known-at`` on a read model folded in slices from empty (run it before
    the read model exists, e.g. right after the import): ``count`` seeded questions
    asked known at each slice's end, a position whose answer a refresh computed (the
    reproducible ``computed_at_position`` of an answer given then), through
    ``readmodel_quota`` (the index) beside the fold of the same questions (the
    baseline, the path before), checked equal; and the bench's own past known-at
    questions (a random position in the later half of the log: the index where it kept
    the rows valid then, else the fold)."""
    from ledger.application import Ledger
    from projections.readmodel import ReadModel
    from projections.views import quota, readmodel_quota

    rng = random.Random(31)
    countries = _countries(url)
    qs = [{"country": rng.choice(countries),
           "as_of": (dt.date(2024, 9, 1) + dt.timedelta(days=rng.randrange(0, 560))
                     ).isoformat(),
           "rule": rng.choice([None, "ai-diffusion-2025"])} for _ in range(count)]
    folded = _fold_in_slices(url, sorted({str(q["country"]) for q in qs}))
    asked = [dict(q, known_at=k) for k in folded["ends"][:-1] for q in qs]
    indexed = _ask(url, asked, indexed=True)
    fold = _ask(url, asked, indexed=False)
    ledger = Ledger(url)
    rm = ReadModel(ledger)
    same = 0
    for q in asked:
        day = dt.date.fromisoformat(q["as_of"])
        want = quota(rm.country_state(q["country"], q["known_at"], day), q["country"], day,
                     rule_id=q["rule"], known_at=q["known_at"])
        same += readmodel_quota(ledger, q["country"], day, rule_id=q["rule"],
                                known_at=q["known_at"]) == want
    ledger.close()
    random_past = [q for q in queries(url, 200) if q["known_at"] is not None][:count]
    return {"slices": folded, "questions": len(asked), "indexed": indexed, "fold": fold,
            "p99_ratio": indexed["p99_ms"] / fold["p99_ms"],
            "p50_ratio": indexed["p50_ms"] / fold["p50_ms"],
            "equal_to_fold": f"{same}/{len(asked)}",
            "random_past": _ask(url, random_past, indexed=True),
            "random_past_fold": _ask(url, random_past, indexed=False)}


def _countries(url: str) -> list[str]:
    """The countries shipments name, from the event log (the read model may not
    exist yet)."""
    from bench.steps import _events_table
    from ledger.application import Ledger

    ledger = Ledger(url)
    table, _pos = _events_table(ledger)
    rows = ledger._query(f"SELECT state FROM {table} WHERE topic LIKE ?",
                         ["%ShipmentRecorded"])
    ledger.close()
    return sorted({json.loads(bytes(r[0]))["shipment"]["destination"] for r in rows})


def _build_all(url: str) -> dict[str, Any]:
    from ledger.application import Ledger
    from projections.position_index import PositionIndex
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    start = time.perf_counter()
    pairs = PositionIndex(ReadModel(ledger)).refresh_all()
    took = time.perf_counter() - start
    ledger.close()
    return {"pairs": pairs, "seconds": took}


def _build_country(url: str, country: str) -> dict[str, Any]:
    """Build the country's pairs under every revision (those its questions ask)."""
    from ledger.application import Ledger
    from projections.position_index import PositionIndex
    from projections.readmodel import ReadModel

    ledger = Ledger(url)
    start = time.perf_counter()
    pairs = PositionIndex(ReadModel(ledger)).refresh(country)
    took = time.perf_counter() - start
    ledger.close()
    return {"pairs": pairs, "seconds": took}


def _largest_questions(country: str, n: int, seed: int = 21) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"country": country, "known_at": None,
             "as_of": (dt.date(2024, 9, 1) + dt.timedelta(days=rng.randrange(0, 560))
                       ).isoformat(),
             "rule": rng.choice([None, "ai-diffusion-2025"])} for _ in range(n)]


def _ask(url: str, qs: list[dict[str, Any]], *, indexed: bool) -> dict[str, Any]:
    """p50/p99 of ``qs`` (library calls, read model caught up), indexed or by the
    fold over the country's rows (the path before the index)."""
    from ledger.application import Ledger
    from projections.readmodel import ReadModel
    from projections.views import quota, readmodel_quota

    ledger = Ledger(url)
    rm = ReadModel(ledger)
    rm.catch_up()
    times: list[float] = []
    cpu: list[float] = []
    with_rule: list[float] = []
    without: list[float] = []
    for q in qs:
        day = dt.date.fromisoformat(q["as_of"])
        if indexed:
            _timed(times, lambda q=q, day=day: readmodel_quota(
                ledger, q["country"], day, rule_id=q["rule"], known_at=q["known_at"]), cpu)
        else:
            _timed(times, lambda q=q, day=day: quota(
                rm.country_state(q["country"], q["known_at"], day), q["country"], day,
                rule_id=q["rule"], known_at=q["known_at"]), cpu)
        (with_rule if q["rule"] else without).append(times[-1])
    ledger.close()
    out = _percentiles(times)
    out["cpu"] = _percentiles(cpu)
    if with_rule and without:
        out["with_rule"] = _percentiles(with_rule)
        out["without_rule"] = _percentiles(without)
    return out


def _equal(url: str, qs: list[dict[str, Any]]) -> str:
    """How many indexed answers equal the fold's (the sample of the fold step)."""
    from ledger.application import Ledger
    from projections.readmodel import ReadModel
    from projections.views import quota, readmodel_quota

    ledger = Ledger(url)
    rm = ReadModel(ledger)
    same = 0
    for q in qs:
        day = dt.date.fromisoformat(q["as_of"])
        want = quota(rm.country_state(q["country"], None, day), q["country"], day,
                     rule_id=q["rule"])
        same += readmodel_quota(ledger, q["country"], day, rule_id=q["rule"]) == want
    ledger.close()
    return f"{same}/{len(qs)}"


def _cli(url: str, qs: list[dict[str, Any]]) -> dict[str, Any]:
    """Whole ``ledger quota --json`` processes interleaved with ``python -c "import
    click"`` ones: wall and CPU (``bench.quota_cli._run``), ratios to click's p50."""
    import os

    from bench.quota_cli import _run
    from bench.run import ledger_cli

    walls: dict[str, list[float]] = {"quota": [], "import_click": []}
    cpus: dict[str, list[float]] = {"quota": [], "import_click": []}
    env = dict(os.environ)
    for q in qs:
        argv = [*ledger_cli(), "--db", url, "quota", "--country", q["country"],
                "--as-of", q["as_of"], "--json"] + (["--rule", q["rule"]] if q["rule"] else [])
        for name, cmd in (("import_click", [sys.executable, "-c", "import click"]),
                          ("quota", argv)):
            wall, cpu, _out = _run(cmd, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    qp, cp = _percentiles(walls["quota"]), _percentiles(walls["import_click"])
    qc, cc = _percentiles(cpus["quota"]), _percentiles(cpus["import_click"])
    return {"quota": qp, "import_click": cp, "quota_cpu": qc, "import_click_cpu": cc,
            "p50_ratio": qp["p50_ms"] / cp["p50_ms"],
            "p99_ratio_to_click_p50": qp["p99_ms"] / cp["p50_ms"],
            "cpu_p50_ratio": qc["p50_ms"] / cc["p50_ms"],
            "cpu_p99_ratio_to_click_p50": qc["p99_ms"] / cc["p50_ms"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quota_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--fold-queries", type=int, default=20)
    parser.add_argument("--cli", type=int, default=20)
    parser.add_argument("--build-all", action="store_true",
                        help="build every pair before asking (else the first pass does)")
    parser.add_argument("--no-rebuild", action="store_true",
                        help="the read model was just rebuilt (bench.run's rebuild step): "
                             "do not rebuild it again")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    url = args.url
    result: dict[str, Any] = {"url": url, "date": dt.datetime.now(dt.UTC).isoformat()}

    def say(key: str, value: Any) -> None:
        result[key] = value
        print(f"  {key}: {json.dumps(value)}", file=sys.stderr, flush=True)

    if not args.no_rebuild:
        say("rebuild", _rebuild(url))
    country, rows = _largest(url)
    say("largest", {"country": country, "shipments": rows})
    first = subprocess.run([sys.executable, "-m", "bench.quota_index", "--first-query", url,
                            country], check=True, capture_output=True, text=True)
    say("first_query", json.loads(first.stdout.strip().splitlines()[-1]))
    asked = [q for q in queries(url, args.queries)]
    head = [dict(q, known_at=None) for q in asked]
    largest = _largest_questions(country, 100)
    if args.build_all:
        say("build_all", _build_all(url))
    else:  # the query set's first pass builds what it asks (each pair once)
        say("indexed_first_pass", _ask(url, head, indexed=True))
    say("indexed", _ask(url, head, indexed=True))
    say("largest_build", _build_country(url, country))
    say("indexed_largest", _ask(url, largest, indexed=True))
    say("fold", _ask(url, head[:args.fold_queries], indexed=False))
    say("fold_largest", _ask(url, largest[:max(2, args.fold_queries // 4)], indexed=False))
    say("equal_to_fold", _equal(url, head[:args.fold_queries] + largest[:4]))
    past = [q for q in asked if q["known_at"] is not None][:args.fold_queries]
    say("known_at_past", _ask(url, past, indexed=True))
    say("cli", _cli(url, head[:args.cli]))
    line = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    print(line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--first-query":
        print(json.dumps(step_first_query(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--step":
        print(json.dumps({"build_index": step_build_index, "after_import": after_import,
                          "known_at": known_at_step}[sys.argv[2]](sys.argv[3])))
    else:
        main()
