"""Benchmark of ``ledger replay``: a seeded synthetic ledger, timed against a baseline.

    python bench/replay.py                       # demo size (3,000) and 100,000
    python bench/replay.py --sizes 3000,20000 --keep /tmp/bench

For each size N it writes N synthetic shipments (fixed seed: the same ledger every
run) into a fresh SQLite ledger with ``Ledger.submit`` in batches of 2,000 commands,
then times, in the same process and run:

- baseline: folding the whole log into a state (``projections.views.load_state``),
  the cost every query pays before answering;
- replay: ``projections.replay.replay`` of ``ai-diffusion-2025`` against the in-force
  timeline over every shipment, on that state (both lanes, all countries);
- total: what ``ledger replay --engine rows`` does end to end (load + replay);
- columnar: the columnar engine (``ReadModel.shipment_columns`` + ``replay_columns``,
  what ``ledger replay`` runs by default), checked to give the same result, and the
  speed-up (load + replay) / columnar.

It prints absolute times and replay / baseline, the ratio that stays meaningful on
another machine. "Demo size" is 3,000 shipments, the size of ``ledger demo``'s
sample (a few thousand shipments). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 2_000
DEMO_SIZE = 3_000

TIER1 = ["US", "DE", "FR", "GB", "JP", "KR", "NL", "TW", "CA", "AU"]
TIER3 = ["CN", "HK", "RU", "IR", "MO"]
CHIPS = [("nvidia-h100-sxm", 15_832), ("nvidia-h200", 15_832), ("nvidia-a100", 4_992),
         ("nvidia-b200", 36_000), ("nvidia-h20", 2_368), ("amd-mi325x", 20_800)]


def tier2_countries() -> list[str]:
    from ledger.countries import COUNTRY_NAMES
    from ledger.rulebook import bundled_rulebook

    diffusion = bundled_rulebook("ai-diffusion-2025")
    return [c for c in sorted(COUNTRY_NAMES) if diffusion.tier_of(c) == 2][:135]


def commands(n: int, seed: int) -> list[dict[str, Any]]:
    """The synthetic ledger as import lines: licenses, VEUs, then n shipments."""
    rng = random.Random(seed)
    tier2 = tier2_countries()
    exporters = [f"exp-{i:02d}" for i in range(20)]
    consignees = max(50, n // 40)
    out: list[dict[str, Any]] = []
    licenses: list[tuple[str, str, str]] = []
    for i in range(max(20, n // 500)):
        country, holder = rng.choice(tier2), rng.choice(exporters)
        start = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 300))
        lic = f"lic-{i:05d}"
        licenses.append((lic, country, holder))
        out.append({"type": "allocation.granted", "allocation_id": lic, "country": country,
                    "tpp_amount": rng.randrange(5, 200) * 1_000_000,
                    "valid_from": start.isoformat(),
                    "valid_to": (start + dt.timedelta(days=rng.choice([180, 365, 730])))
                    .isoformat(), "holder": holder})
    veus = []
    for i in range(10):
        covered = [*rng.sample(tier2, 6), "US", "DE"]
        veus.append((f"veu-{i}", covered))
        out.append({"type": "veu.granted", "veu_id": f"veu-{i}", "entity": f"cloud-{i}",
                    "kind": "universal" if i % 2 == 0 else "national",
                    "headquarters_country": "US" if i % 2 == 0 else covered[0],
                    "covered_countries": covered, "valid_from": "2025-01-01"})
    start = dt.date(2024, 7, 1)
    for i in range(n):
        roll = rng.random()
        dest = (rng.choice(TIER1) if roll < 0.2 else rng.choice(TIER3) if roll < 0.25
                else rng.choice(tier2))
        auth: dict[str, str] = {"kind": "none"}
        exporter = rng.choice(exporters)
        kind = rng.random()
        if kind < 0.15:
            auth = {"kind": "lpp"}
        elif kind < 0.25:
            lic, country, holder = rng.choice(licenses)
            dest, exporter = country, holder
            auth = {"kind": "license", "ref": lic}
        elif kind < 0.30:
            veu_id, covered = rng.choice(veus)
            dest = rng.choice(covered)
            auth = {"kind": "veu", "ref": veu_id}
        product, _tpp = rng.choice(CHIPS)
        out.append({"type": "shipment.recorded", "exporter_id": exporter,
                    "shipment_ref": f"s-{i:07d}",
                    "ship_date": (start + dt.timedelta(days=rng.randrange(0, 700))).isoformat(),
                    "destination": dest, "consignee_id": f"k-{rng.randrange(consignees):05d}",
                    "product_id": product, "quantity": rng.randrange(1, 400),
                    "authorization": auth})
    return out


def build(path: Path, n: int, seed: int) -> float:
    """Write the ledger; returns seconds taken."""
    from ledger.application import Ledger
    from ledger.commands import PublishRuleRevision, parse_command
    from ledger.rulebook import bundled_rulebooks

    t0 = time.perf_counter()
    app = Ledger(str(path))
    try:
        app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()],
                   actor="bench")
        lines = commands(n, seed)
        for i in range(0, len(lines), BATCH):
            app.submit([parse_command(x) for x in lines[i:i + BATCH]], actor="bench")
    finally:
        app.close()
    return time.perf_counter() - t0


def best_of(repeat: int, fn: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def measure(path: Path, repeat: int) -> dict[str, Any]:
    from ledger.application import Ledger
    from projections.readmodel import ReadModel
    from projections.replay import replay
    from projections.replay_columnar import replay_columns
    from projections.views import load_state

    app = Ledger(str(path))
    try:
        load_s, state = best_of(repeat, lambda: load_state(app))
        replay_s, result = best_of(
            repeat, lambda: replay(state, "ai-diffusion-2025", "in-force"))
        rm = ReadModel(app)
        rm.catch_up()
        columns_s, (small, cols) = best_of(repeat, lambda: rm.shipment_columns(None))
        columnar_s, columnar = best_of(
            repeat, lambda: replay_columns(small, cols, "ai-diffusion-2025", "in-force"))
    finally:
        app.close()
    assert columnar.model_dump(exclude={"changes"}) == result.model_dump(exclude={"changes"})
    assert list(columnar.changes) == result.changes
    live = sum(1 for r in state.shipments.values() if not r.voided)
    return {"shipments": live, "events": state.position, "load_s": load_s,
            "replay_s": replay_s, "total_s": load_s + replay_s,
            "ratio": replay_s / load_s if load_s else float("nan"),
            "changed": result.totals.shipments_changed,
            "countries": result.totals.countries,
            "columnar_s": columns_s + columnar_s,
            "speedup": (load_s + replay_s) / (columns_s + columnar_s)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"{DEMO_SIZE},100000",
                        help="comma-separated shipment counts (default: 3000,100000)")
    parser.add_argument("--seed", type=int, default=20250515)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--keep", type=Path, help="write the ledgers here and keep them")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-replay-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, seed {args.seed}, best of {args.repeat}, "
          f"SQLite in {folder}")
    print(f"{'shipments':>10} {'events':>8} {'write s':>8} {'load (baseline) s':>18} "
          f"{'replay s':>9} {'load+replay s':>14} {'replay/load':>12} {'changed':>8} "
          f"{'columnar s':>11} {'speed-up':>9}")
    for n in sizes:
        path = folder / f"ledger-{n}.db"
        if path.exists():
            path.unlink()
        write_s = build(path, n, args.seed)
        m = measure(path, args.repeat)
        print(f"{m['shipments']:>10,} {m['events']:>8,} {write_s:>8.1f} {m['load_s']:>18.2f} "
              f"{m['replay_s']:>9.2f} {m['total_s']:>14.2f} {m['ratio']:>12.2f} "
              f"{m['changed']:>8,} {m['columnar_s']:>11.2f} {m['speedup']:>8.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
