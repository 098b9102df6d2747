"""Render bench/results/*.json as bench/RESULTS.md (tables, ratios, growth).

The measured tables are generated; the analysis below them is kept by hand in
bench/NOTES.md and appended as is, so rerunning the bench never loses it.

    python -m bench.report
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _load() -> list[dict[str, Any]]:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    return sorted(runs, key=lambda r: (r["backend"], r["size"]))


def _k(rate: float) -> str:
    return f"{rate / 1000:,.1f}k/s"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:,.1f} ms"


def _ratio(value: float) -> str:
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


def _g(r: dict[str, Any], *path: str) -> Any:
    cur: Any = r
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def rows(runs: list[dict[str, Any]]) -> list[str]:
    out = [
        "| shipments | backend | import | raw executemany | import/raw | rebuild | "
        "raw SELECT+json.loads | rebuild/raw | quota lib p50 / p99 | quota CLI p50 / p99 | "
        "full replay (same answer) | replay/CLI p50 | replay ai-diffusion-2025 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        imp, raw = r["import"]["rate"], r["raw_insert"]["rate"]
        reb, sel = r["rebuild"]["rate"], r["raw_select"]["rate"]
        lib, cli, rep = r["quota_lib"], r["quota_cli"], r["quota_replay"]
        out.append(
            f"| {r['size']:,} | {r['backend']} | {_k(imp)} | {_k(raw)} | {imp / raw:.2f} | "
            f"{_k(reb)} | {_k(sel)} | {reb / sel:.2f} | "
            f"{_ms(lib['p50_ms'])} / {_ms(lib['p99_ms'])} | "
            f"{_ms(cli['p50_ms'])} / {_ms(cli['p99_ms'])} | {_ms(rep['p50_ms'])} | "
            f"{_ratio(rep['p50_ms'] / cli['p50_ms'])} | {r['replay']['seconds']:.1f} s |")
    return out


def memory(runs: list[dict[str, Any]]) -> list[str]:
    steps = ["import", "raw_insert", "rebuild", "raw_select", "quota_lib", "quota_cli",
             "quota_replay", "replay", "replay_readmodel"]
    out = ["| shipments | backend | " + " | ".join(steps) + " |",
           "|---:|---|" + "---:|" * len(steps)]
    for r in runs:
        cells = [f"{_g(r, s, 'peak_rss_mb') or 0:,.0f}" for s in steps]
        out.append(f"| {r['size']:,} | {r['backend']} | " + " | ".join(cells) + " |")
    return out


def extra(runs: list[dict[str, Any]]) -> list[str]:
    out = ["| shipments | backend | events | import s | rebuild s | replay: read+fold s | "
           "replay from read model s | `ledger replay` CLI | read model = replay |",
           "|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for r in runs:
        cli = r.get("replay_cli")
        cli_text = "not on this branch" if cli is None else (
            f"{cli['seconds']:.1f} s, {cli['peak_rss_mb']:,.0f} MB" if "seconds" in cli
            else "failed: " + cli.get("error", "")[:60].replace("|", "/"))
        out.append(
            f"| {r['size']:,} | {r['backend']} | {r['import']['events']:,} | "
            f"{r['import']['seconds']:.1f} | {r['rebuild']['seconds']:.1f} | "
            f"{r['replay']['replay_seconds']:.1f} + {r['replay']['fold_seconds']:.1f} | "
            f"{r['replay_readmodel']['seconds']:.1f} | {cli_text} | "
            f"{r['quota_replay'].get('equal_to_read_model', '?')} |")
    return out


def growth(runs: list[dict[str, Any]]) -> list[str]:
    figures = [("import rate", ("import", "rate")), ("rebuild rate", ("rebuild", "rate")),
               ("quota lib p50", ("quota_lib", "p50_ms")),
               ("quota CLI p50", ("quota_cli", "p50_ms")),
               ("full replay p50", ("quota_replay", "p50_ms")),
               ("replay ai-diffusion-2025", ("replay", "seconds")),
               ("replay peak memory", ("replay", "peak_rss_mb"))]
    out = []
    for backend in sorted({r["backend"] for r in runs}):
        mine = [r for r in runs if r["backend"] == backend]
        if len(mine) < 2:
            continue
        base = mine[0]
        out += [f"**{backend}**, relative to {base['size']:,} shipments:", "",
                "| figure | " + " | ".join(f"{r['size']:,}" for r in mine) + " |",
                "|---|" + "---:|" * len(mine)]
        for label, path in figures:
            b = _g(base, *path)
            cells = []
            for r in mine:
                v = _g(r, *path)
                cells.append("—" if not v or not b else f"{v / b:,.2f}x")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def write_report() -> Path:
    runs = _load()
    machine = runs[0]["machine"] if runs else {}
    dates = sorted({r["date"][:10] for r in runs})
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m bench.run` (tables) and `bench/NOTES.md` (analysis).",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cpus', '?')} cores, "
        f"{machine.get('memory_gb', '?')} GB RAM, Python {machine.get('python', '?')}, "
        f"SQLite {machine.get('sqlite', '?')}, {machine.get('platform', '?')}. "
        f"Date: {', '.join(dates) or '—'}. The machine was shared with other jobs while "
        "measuring.",
        "",
        "## Throughput and latency",
        "",
        *rows(runs),
        "",
        "Rates are events per second. `import` is `ledger import`'s library path (parse, "
        "decide, append, chain) in one transaction; `raw executemany` inserts the same "
        "stored rows into a plain table. `rebuild` is `ledger projections rebuild`. "
        "`quota CLI` is a whole `ledger quota --json` process; `full replay` is "
        "`load_state` + `quota` for the same kind of question.",
        "",
        "## Details",
        "",
        *extra(runs),
        "",
        "## Peak memory (max RSS, MB, each step in its own process)",
        "",
        *memory(runs),
        "",
        "## Growth",
        "",
        *growth(runs),
    ]
    notes = HERE / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    print(write_report())
