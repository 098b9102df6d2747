"""The benchmark: one command, both backends, three sizes, one table.

    python -m bench.run --sizes 10000,100000,1000000 --backends sqlite,postgres

For each size it writes a seeded synthetic ledger (``bench.generate``) as JSON Lines
(cached in bench/data/), and for each backend it loads it into a fresh database and
measures, each step in its own process (``bench.steps``) so its peak memory is its
own:

1. bulk import (``ledger import``'s library path, one transaction) beside a raw
   ``executemany`` of the same stored rows into a plain table;
2. projection rebuild beside a raw SELECT of the event rows plus ``json.loads``;
3. ``ledger quota`` from the position index (``bench.quota_index``: the query set known
   at the head and the largest country, beside the fold; the first query after the
   rebuild; whole ``ledger quota --json`` processes beside ``python -c "import
   click"``), then a mixed query set (a random past ``--known-at`` half the time) as a
   library call and as a whole CLI process, beside a full replay of the log for the
   same answers (checked equal);
4. ``ledger replay --rule ai-diffusion-2025`` as whole processes, the table and
   ``--json`` (output to a file), with their peak memory;
5. peak memory (max RSS) of each.

``--workdir DIR`` keeps the SQLite files there (with ``--keep``, steps can be run
again on them later: ``python -m bench.steps STEP DB``).

Results go to bench/results/<size>-<backend>.json; ``bench.report`` renders them
as bench/RESULTS.md (run automatically at the end). PostgreSQL uses the server at
``--postgres`` (default: LEDGER_TEST_POSTGRES or postgresql://postgres@127.0.0.1:5432)
and creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_measured(argv: list[str], timeout: float = 3600) -> tuple[str, float, float]:
    """Run a child process; return (stdout, wall seconds, peak RSS in MB of that child)."""
    start = time.perf_counter()
    err_file = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err_file, env=_env(),
                            cwd=ROOT, text=True)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be a running max).
    # stderr goes to a file, not a pipe, so a chatty child cannot block on a full pipe.
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    err_file.seek(0)
    err = err_file.read()
    err_file.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed ({proc.returncode}): {err[-2000:]}")
    return out, wall, usage.ru_maxrss / 1024


def step(name: str, url: str, *args: str) -> dict[str, Any]:
    out, wall, rss = run_measured([sys.executable, "-m", "bench.steps", name, url, *args])
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(rss, 1)
    result["process_seconds"] = round(wall, 3)
    print(f"    {name}: {json.dumps(result)}", flush=True)
    return result


def ledger_cli() -> list[str]:
    exe = shutil.which("ledger", path=str(Path(sys.executable).parent)) or shutil.which("ledger")
    return [exe] if exe else [sys.executable, "-m", "ledger"]


def _quota_index(*args: str) -> dict[str, Any]:
    """``python -m bench.quota_index ARGS`` in its own process; its last line's JSON."""
    out, wall, rss = run_measured([sys.executable, "-m", "bench.quota_index", *args],
                                  timeout=4 * 3600)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(rss, 1)
    result["process_seconds"] = round(wall, 3)
    return result


def index_step(name: str, url: str) -> dict[str, Any]:
    """A step of ``bench.quota_index`` (the position index's rows) in its own process."""
    return _quota_index("--step", name, url)


def quota_index_step(url: str) -> dict[str, Any]:
    """``bench.quota_index`` on the freshly rebuilt read model: the first query (it builds
    the largest country's pair), every pair built, the query set known at the head and
    the largest country from the index beside the fold, past known-at, and whole
    ``ledger quota --json`` processes beside ``python -c "import click"``."""
    result = _quota_index(url, "--build-all", "--no-rebuild")
    print(f"    quota_index: {json.dumps(result)}", flush=True)
    return result


def quota_cli(url: str, count: int) -> dict[str, Any]:
    """Whole ``ledger quota`` processes, as a user runs them."""
    from bench.steps import _percentiles, queries

    times, rss = [], []
    failures: list[str] = []
    for q in queries(url, count, seed=13):
        argv = [*ledger_cli(), "--db", url, "quota", "--country", q["country"],
                "--as-of", q["as_of"], "--json"]
        if q["known_at"] is not None:
            argv += ["--known-at", str(q["known_at"])]
        if q["rule"]:
            argv += ["--rule", q["rule"]]
        try:
            _out, wall, peak = run_measured(argv)
        except RuntimeError as e:  # counted and shown, not fatal: the run goes on
            failures.append(f"{q}: {e}"[-400:])
            continue
        times.append(wall)
        rss.append(peak)
    result = {**_percentiles(times), "peak_rss_mb": round(max(rss), 1),
              "failures": len(failures), "first_failure": failures[0] if failures else None}
    print(f"    quota_cli: {json.dumps(result)}", flush=True)
    return result


def replay_cli(url: str, as_json: bool, engine: str = "auto") -> dict[str, Any]:
    """A whole ``ledger replay --rule ai-diffusion-2025`` process (the read model is
    caught up before, by the rebuild step), its output written to a file as a user's
    redirect would; ``--json`` or the table; ``engine``: ``auto`` (the columnar engine,
    the default) or ``rows`` (the per-shipment engine it replaced). Records wall and
    CPU seconds, peak memory, the load average before, and the output's SHA-256."""
    out_path = Path(tempfile.gettempdir()) / f"bench-replay-{os.getpid()}.out"
    argv = [*ledger_cli(), "--db", url, "replay", "--rule", "ai-diffusion-2025", "--quiet",
            "--engine", engine]
    if as_json:
        argv.append("--json")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with out_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=_env(), cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    size = out_path.stat().st_size
    digest = hashlib.sha256(out_path.read_bytes()).hexdigest()
    out_path.unlink(missing_ok=True)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code != 0:
        return {"error": f"exit {code}: {err[-300:]}"}
    result = {"seconds": round(wall, 3),
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
              "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "output_bytes": size,
              "sha256": digest, "engine": engine, "load_average": round(load, 2)}
    print(f"    replay_cli{' --json' if as_json else ''} ({engine}): {json.dumps(result)}",
          flush=True)
    return result


def replay_rows_cli(url: str, as_json: bool, result: dict[str, Any]) -> dict[str, Any]:
    """The per-shipment engine's process, and whether its output is byte-identical to
    the columnar engine's of the same run (``result``)."""
    rows = replay_cli(url, as_json, engine="rows")
    key = "replay_cli_json" if as_json else "replay_cli"
    new = result.get(key, {})
    if "sha256" in rows and "sha256" in new:
        rows["same_output_as_columnar"] = rows["sha256"] == new["sha256"]
        rows["rows_to_columnar_wall"] = round(rows["seconds"] / new["seconds"], 2)
        rows["rows_to_columnar_cpu"] = round(rows["cpu_seconds"] / new["cpu_seconds"], 2)
    return rows


def pg_base(arg: str | None) -> str:
    return arg or os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def new_db(backend: str, size: int, base: str, prefix: str, tmp: Path) -> str:
    """A fresh database: a SQLite file in ``tmp`` or a PostgreSQL database."""
    if backend == "sqlite":
        path = tmp / f"bench-{size}.db"
        path.unlink(missing_ok=True)
        return str(path)
    import psycopg

    name = f"{prefix}_{size}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def reuse_db(backend: str, size: int, base: str, prefix: str, tmp: Path) -> str:
    """The database an earlier ``--keep`` run left (``--reuse``), as it is."""
    if backend == "sqlite":
        path = tmp / f"bench-{size}.db"
        if not path.exists():
            raise SystemExit(f"--reuse: no {path} (run with --keep --workdir first)")
        return str(path)
    return f"{base}/{prefix}_{size}"


def drop_db(backend: str, url: str, base: str) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(url + suffix).unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def dataset(size: int, seed: int) -> Path:
    from bench.generate import write_jsonl

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"ledger-{size}-{seed}.jsonl"
    if not path.exists():
        start = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        lines = write_jsonl(tmp, size, seed)
        tmp.rename(path)
        print(f"  generated {path.name}: {lines} lines in {time.perf_counter() - start:.1f} s")
    return path


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
    except ImportError:
        pass
    return info


def bench_one(size: int, backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    path = dataset(size, args.seed)
    base = pg_base(args.postgres)
    url = (reuse_db(backend, size, base, args.pg_prefix, tmp) if args.reuse
           else new_db(backend, size, base, args.pg_prefix, tmp))
    print(f"  {size} on {backend}", flush=True)
    result: dict[str, Any] = {"size": size, "backend": backend, "seed": args.seed,
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "machine": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{size}-{backend}.json"
    earlier: dict[str, Any] = {}
    if args.skip and out.exists():
        # a partial run keeps the earlier run's figures of the steps it skips, and of
        # the import and rebuild it runs only to have a database (their ratios to the
        # raw baselines stay within one run)
        earlier = json.loads(out.read_text())
        result = {**earlier, **result, "date_of_other_steps": earlier.get("date")}
    replays = args.replays if size < 1_000_000 else max(1, args.replays // 2)
    plan: list[tuple[str, Any]] = [
        ("import", lambda: step("import", url, str(path))),
        # on copies of the freshly imported SQLite file: the first quota after an import
        ("first_after_import", lambda: index_step("after_import", url)
         if backend == "sqlite" else {"skipped": "copies the SQLite file"}),
        # before the rebuild: it folds the read model from empty, in slices
        ("known_at", lambda: index_step("known_at", url)),
        ("raw_insert", lambda: step("raw_insert", url)),
        ("rebuild", lambda: step("rebuild", url)),
        ("raw_select", lambda: step("raw_select", url)),
        # right after the rebuild: the first query still builds its pair
        ("quota_index", lambda: quota_index_step(url)),
        ("quota_lib", lambda: step("quota_lib", url, str(args.queries))),
        ("quota_cli", lambda: quota_cli(url, args.cli_queries)),
        ("quota_replay", lambda: step("quota_replay", url, str(replays))),
        ("replay_cli", lambda: replay_cli(url, as_json=False)),
        ("replay_cli_json", lambda: replay_cli(url, as_json=True)),
    ]
    if size <= args.rows_replay_max:  # the per-shipment engine, for the ratio
        plan += [("replay_rows_cli", lambda: replay_rows_cli(url, False, result)),
                 ("replay_rows_cli_json", lambda: replay_rows_cli(url, True, result))]
    try:
        for name, run in plan:
            if name in args.skip:
                continue
            value = run()
            if name in ("import", "rebuild") and name in earlier and not args.update:
                value = earlier[name]
            if name == "quota_index" and args.reuse:
                value = _keep_first_figures(value, earlier.get(name))
            result[name] = value
            # written after every step: a long run that is stopped keeps what it measured
            out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if not args.keep:
            drop_db(backend, url, base)
    return result


def _keep_first_figures(value: dict[str, Any], earlier: dict[str, Any] | None
                        ) -> dict[str, Any]:
    """On a reused database the pairs are already built: its first query and
    ``build_all`` are not the worst case, so the earlier run's stay (dated)."""
    if earlier:
        for key in ("first_query", "build_all"):
            if key in earlier:
                value[key] = earlier[key]
        value["first_query_date"] = earlier.get("first_query_date", earlier.get("date"))
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="shipment counts, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--queries", type=int, default=200, help="library quota calls")
    parser.add_argument("--cli-queries", type=int, default=30, help="CLI quota processes")
    parser.add_argument("--replays", type=int, default=4,
                        help="full replays to compare with (halved at 1M)")
    parser.add_argument("--postgres", help="server URL without database name")
    parser.add_argument("--pg-prefix", default="ql_bench", help="database name prefix")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--rows-replay-max", type=int, default=100_000,
                        help="largest size at which the per-shipment replay engine is "
                             "also run, for the ratio (it takes minutes at 1M)")
    parser.add_argument("--skip", type=lambda v: set(filter(None, v.split(","))),
                        default=set(), help="steps to leave out, comma-separated")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the steps not skipped on the database an earlier "
                             "--keep run left (with --workdir for SQLite), not a new one")
    parser.add_argument("--update", action="store_true",
                        help="with --skip: the import and rebuild of this run replace the "
                             "earlier run's figures too (by default a partial run keeps "
                             "them, as it runs them only to have a database)")
    parser.add_argument("--workdir", type=Path,
                        help="folder for the SQLite files (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            parser.error(f"--backends: unknown backend {b!r} (sqlite, postgres)")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            for backend in backends:
                bench_one(size, backend, args, work)
    from bench.report import write_report

    print(f"wrote {write_report()}")


if __name__ == "__main__":
    main()
