"""Whole ``ledger quota --json`` processes beside ``python -c "import click"`` processes.

    python -m bench.quota_cli DB_URL [--runs 30] [--variant NAME=VAR=VALUE ...]
                                     [--variant-src NAME=DIR ...]

Interleaved, one of each per round: ``import click`` (the baseline), then the quota
process of every variant: ``default`` (this checkout as installed), each
``--variant NAME=VAR=VALUE`` (the same with an environment variable set, e.g.
``psycopg=LEDGER_LEAN_LIBPQ=0``) and each ``--variant-src NAME=DIR`` (the sources in
DIR first on PYTHONPATH, e.g. an export of main: the figures before a change). Each
round asks the next question of a fixed set (the ledger's largest countries, as-of
dates, with and without ``--rule``); every variant's output must be
byte-identical to the default's. Wall and CPU time (user + system, from ``wait4``) of
every process, p50/p99, the ratios to ``import click``'s p50, and the load average.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.steps import _percentiles

AS_OF = ["2025-03-31", "2025-06-30", "2025-12-31", "2026-06-30"]
RULES = [[], ["--rule", "ai-diffusion-2025"]]  # (--on-the-books: the fold answers)


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """(wall s, CPU s, stdout) of one process."""
    start = time.perf_counter()
    # from a neutral folder: ``python -m`` puts the working folder first on sys.path,
    # before PYTHONPATH (a --variant-src must not import this checkout instead)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, cwd=tempfile.gettempdir())
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, out


def _countries(url: str, n: int = 4) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT destination FROM rm_shipment_versions GROUP BY destination "
            "ORDER BY COUNT(*) DESC LIMIT %s", (n,)).fetchall()]


def _summary(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    w, c = _percentiles(wall), _percentiles(cpu)
    return {"wall": w, "cpu": c}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quota_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--variant-src", action="append", default=[])
    args = parser.parse_args(argv)
    base = dict(os.environ)
    variants: dict[str, dict[str, str]] = {"default": base}
    for v in args.variant:
        name, var, value = v.split("=", 2)
        variants[name] = {**base, var: value}
    for v in args.variant_src:
        name, src = v.split("=", 1)
        variants[name] = {**base, "PYTHONPATH": src}
    countries = _countries(args.url)
    questions = [[*["--country", c, "--as-of", d], *r]
                 for c in countries for d in AS_OF for r in RULES]
    times: dict[str, tuple[list[float], list[float]]] = {
        k: ([], []) for k in ["import_click", *variants]}
    load_before = os.getloadavg()
    for i in range(args.runs):
        wall, cpu, _ = _run([sys.executable, "-c", "import click"], base)
        times["import_click"][0].append(wall)
        times["import_click"][1].append(cpu)
        q = questions[i * 7 % len(questions)]
        outputs = set()
        for name, env in variants.items():
            wall, cpu, out = _run([sys.executable, "-m", "ledger", "--db", args.url,
                                   "quota", *q, "--json"], env)
            times[name][0].append(wall)
            times[name][1].append(cpu)
            outputs.add(out)
        if len(outputs) != 1:
            raise SystemExit(f"outputs differ for {q}")
    result: dict[str, Any] = {"runs": args.runs, "countries": countries,
                              "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    click_wall, click_cpu = times["import_click"]
    result["import_click"] = _summary(click_wall, click_cpu)
    for name in variants:
        s = _summary(*times[name])
        for kind, click in (("wall", click_wall), ("cpu", click_cpu)):
            c50 = _percentiles(click)["p50_ms"]
            s[kind]["p50_ratio"] = round(s[kind]["p50_ms"] / c50, 2)
            s[kind]["p99_ratio"] = round(s[kind]["p99_ms"] / c50, 2)
        result[name] = s
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
