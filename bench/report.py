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
    # kafka_ingest.json is not a per-size run (it has its own row in the targets)
    runs = [r for r in runs if "backend" in r and "size" in r]
    for r in runs:
        old = r.get("replay_cli")
        if "replay_cli_json" not in r and isinstance(old, dict) and "output_bytes" not in old:
            # an older run: its only `ledger replay` figure was the --json process
            r["replay_cli_json"] = r.pop("replay_cli")
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


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None


def _fmt(r: dict[str, Any], *path: str, fmt: str = ",.1f") -> str:
    v = _num(_g(r, *path))
    return "—" if v is None else format(v, fmt)


def _replay(r: dict[str, Any], key: str) -> dict[str, Any]:
    v = r.get(key)
    return v if isinstance(v, dict) and "seconds" in v else {}


def _versus_rows(r: dict[str, Any]) -> str:
    """The per-shipment engine of the same run: its times and the ratio to the columnar
    engine's, and whether the outputs were byte-identical."""
    parts = []
    for key, what in (("replay_rows_cli", "table"), ("replay_rows_cli_json", "--json")):
        v = _replay(r, key)
        if "rows_to_columnar_wall" in v:
            same = "same output" if v.get("same_output_as_columnar") else "**output differs**"
            parts.append(f"{what} {v['seconds']:.1f} s = {v['rows_to_columnar_wall']:.1f}× "
                         f"(CPU {v['rows_to_columnar_cpu']:.1f}×), {v['peak_rss_mb']:,.0f} MB, "
                         f"{same}")
    return "; per-shipment engine: " + "; ".join(parts) if parts else ""


def rows(runs: list[dict[str, Any]]) -> list[str]:
    out = [
        "| shipments | backend | import | raw executemany | import/raw | rebuild | "
        "raw SELECT+json.loads | rebuild/raw | quota lib p50 / p99 | quota CLI p50 / p99 | "
        "full replay (same answer) | `ledger replay` table / --json |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    def rate(r: dict[str, Any], step: str) -> str:
        v = _num(_g(r, step, "rate"))
        return "—" if v is None else _k(v)

    def ratio(r: dict[str, Any], a: str, b: str, digits: int) -> str:
        x, y = _num(_g(r, a, "rate")), _num(_g(r, b, "rate"))
        return "—" if not x or not y else f"{x / y:.{digits}f}"

    def pcts(r: dict[str, Any], step: str) -> str:
        p50, p99 = _num(_g(r, step, "p50_ms")), _num(_g(r, step, "p99_ms"))
        return "—" if p50 is None or p99 is None else f"{_ms(p50)} / {_ms(p99)}"

    for r in runs:
        rep = _num(_g(r, "quota_replay", "p50_ms"))
        table, js = _replay(r, "replay_cli"), _replay(r, "replay_cli_json")
        replay_text = " / ".join(f"{x['seconds']:.1f} s" if x else "—" for x in (table, js))
        out.append(
            f"| {r['size']:,} | {r['backend']} | {rate(r, 'import')} | "
            f"{rate(r, 'raw_insert')} | {ratio(r, 'import', 'raw_insert', 3)} | "
            f"{rate(r, 'rebuild')} | {rate(r, 'raw_select')} | "
            f"{ratio(r, 'rebuild', 'raw_select', 2)} | {pcts(r, 'quota_lib')} | "
            f"{pcts(r, 'quota_cli')} | "
            f"{'—' if rep is None else _ms(rep)} | {replay_text} |")
    return out


def targets(runs: list[dict[str, Any]]) -> list[str]:
    """The issue-11 rows this bench measures, per backend at the largest size that
    has the figure (a long run may have been stopped before its later steps)."""
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_backend.setdefault(r["backend"], []).append(r)
    backends = sorted(by_backend)
    out = ["| figure | target | " + " | ".join(backends) + " |",
           "|---|---|" + "---|" * len(backends)]

    def cell(b: str, fn: Any) -> str:
        for r in sorted(by_backend[b], key=lambda r: -r["size"]):
            try:
                return f"{r['size']:,}: {fn(r)}"
            except (KeyError, TypeError, ZeroDivisionError):
                continue
        return "—"

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def cpu(r: dict[str, Any], a: str, b: str) -> str:
        x, y = _num(_g(r, a, "cpu_rate")), _num(_g(r, b, "cpu_rate"))
        whose = "the client's " if r["backend"] == "postgres" else ""
        return "" if not x or not y else f"; by {whose}CPU time {x / y:.3f}×"

    def imp(r: dict[str, Any]) -> str:
        ratio = r["import"]["rate"] / r["raw_insert"]["rate"]
        rss = r["import"]["peak_rss_mb"]
        return (f"{ratio:.3f}× ({_k(r['import']['rate'])} vs {_k(r['raw_insert']['rate'])}"
                f"{cpu(r, 'import', 'raw_insert')}), {rss:,.0f} MB: "
                f"{verdict(ratio >= 0.1 and rss <= 500)}")

    def reb(r: dict[str, Any]) -> str:
        ratio = r["rebuild"]["rate"] / r["raw_select"]["rate"]
        return (f"{ratio:.2f}× ({_k(r['rebuild']['rate'])} vs {_k(r['raw_select']['rate'])}"
                f"{cpu(r, 'rebuild', 'raw_select')}; first rebuild after the import): "
                f"{verdict(ratio >= 0.5)}")

    def rep(r: dict[str, Any]) -> str:
        t, j = _replay(r, "replay_cli"), _replay(r, "replay_cli_json")
        rss = max(t["peak_rss_mb"], j["peak_rss_mb"])
        ok = t["seconds"] <= 10 and j["seconds"] <= 20 and rss <= 1024
        size = f" ({j['output_bytes'] / 1e6:,.0f} MB)" if "output_bytes" in j else ""
        by_cpu = (f" (CPU {t['cpu_seconds']:.1f} s / {j['cpu_seconds']:.1f} s, load "
                  f"{t.get('load_average', '?')})" if "cpu_seconds" in t and "cpu_seconds" in j
                  else "")
        return (f"table {t['seconds']:.1f} s, --json {j['seconds']:.1f} s{size}{by_cpu}, "
                f"{rss:,.0f} MB: {verdict(ok)}{_versus_rows(r)}")

    def smallest(r: dict[str, Any]) -> dict[str, Any]:
        """The smallest run of r's backend that has the position index's figures."""
        return min((x for x in by_backend[r["backend"]] if "indexed" in x.get("quota_index", {})),
                   key=lambda x: x["size"])

    def head(r: dict[str, Any]) -> str:
        q = r["quota_index"]
        ix, lg, fold = q["indexed"], q["indexed_largest"], q["fold_largest"]
        small = smallest(r)["quota_index"]["indexed_largest"]
        growth = lg["p99_ms"] / small["p99_ms"]
        cpu_growth = lg["cpu"]["p99_ms"] / small["cpu"]["p99_ms"]
        ok = max(ix["p99_ms"], lg["p99_ms"]) <= 20 and growth <= 2
        return (f"query set p50 {_ms(ix['p50_ms'])}, p99 {_ms(ix['p99_ms'])} (CPU p99 "
                f"{_ms(ix['cpu']['p99_ms'])}; with `--rule` p99 "
                f"{_ms(ix['with_rule']['p99_ms'])}, without {_ms(ix['without_rule']['p99_ms'])});"
                f" largest country ({q['largest']['country']}, "
                f"{q['largest']['shipments']:,} shipments) p50 {_ms(lg['p50_ms'])}, p99 "
                f"{_ms(lg['p99_ms'])} (CPU p99 {_ms(lg['cpu']['p99_ms'])}), "
                f"{growth:.2f}× its p99 at {smallest(r)['size']:,} ({_ms(small['p99_ms'])}; "
                f"by CPU {cpu_growth:.2f}×); the fold (before): "
                f"largest p50 {_ms(fold['p50_ms'])}; indexed = fold "
                f"{q['equal_to_fold']}: {verdict(ok)}")

    def past(r: dict[str, Any]) -> str:
        k, rnd = r["known_at"], r["quota_index"]["known_at_past"]
        return (f"at a refreshed position p99 {_ms(k['indexed']['p99_ms'])} (the fold "
                f"{_ms(k['fold']['p99_ms'])}; equal {k['equal_to_fold']}): "
                f"{verdict(k['indexed']['p99_ms'] <= 100)}; at a random position p50 "
                f"{_ms(rnd['p50_ms'])}, p99 {_ms(rnd['p99_ms'])}: "
                f"{verdict(rnd['p99_ms'] <= 100)}")

    def cli(r: dict[str, Any]) -> str:
        c = r["quota_index"]["cli"]
        ok = c["p50_ratio"] <= 2 and c["p99_ratio_to_click_p50"] <= 3
        by_cpu = (f"; by CPU p50 {c['cpu_p50_ratio']:.2f}×, p99 "
                  f"{c['cpu_p99_ratio_to_click_p50']:.2f}× ({_ms(c['quota_cpu']['p50_ms'])} vs "
                  f"{_ms(c['import_click_cpu']['p50_ms'])})" if "cpu_p50_ratio" in c else "")
        return (f"p50 {_ms(c['quota']['p50_ms'])} = {c['p50_ratio']:.2f}×, p99 "
                f"{_ms(c['quota']['p99_ms'])} = {c['p99_ratio_to_click_p50']:.2f}× of "
                f"`import click` p50 {_ms(c['import_click']['p50_ms'])}{by_cpu}: "
                f"{verdict(ok)}")

    def first(r: dict[str, Any]) -> str:
        q = r["quota_index"]
        when = f" (run of {q['first_query_date'][:16]})" if "first_query_date" in q else ""
        return (f"first query after a rebuild without the index (builds its pairs){when} "
                f"{_ms(q['first_query']['first_ms'])}; every pair built in "
                f"{q['build_all']['seconds']:,.0f} s ({q['build_all']['pairs']} pairs)")

    out.append("| `ledger import` of the file | ≥ 0.1× raw executemany, ≤ 500 MB | "
               + " | ".join(cell(b, imp) for b in backends) + " |")
    out.append("| `ledger projections rebuild` | ≥ 0.5× raw SELECT + json.loads | "
               + " | ".join(cell(b, reb) for b in backends) + " |")
    out.append("| `ledger replay --rule ai-diffusion-2025` | table ≤ 10 s, --json ≤ 20 s, "
               "≤ 1 GB | " + " | ".join(cell(b, rep) for b in backends) + " |")
    for label, target, fn in (
            ("`quota` library, known at the head, any as-of date, with and without "
             "`--rule`", "p99 ≤ 20 ms; p99 at 1M ≤ 2× p99 at 10k", head),
            ("`quota` library, `--known-at` a past position", "p99 ≤ 100 ms", past),
            ("`ledger quota --json` whole process (query set, at the head)",
             "p50 ≤ 2×, p99 ≤ 3× a `python -c \"import click\"` process", cli),
            ("worst case: the first `quota` after a rebuild", "(no target)", first)):
        out.append(f"| {label} | {target} | "
                   + " | ".join(cell(b, fn) for b in backends) + " |")
    kafka = RESULTS / "kafka_ingest.json"
    if kafka.exists():
        k = json.loads(kafka.read_text())
        ratio = k.get("ingest_to_raw_verify_ratio")
        if ratio is not None:
            text = (f"{ratio:.2f}× ({k['ingest_exactly_once_msgs_per_s']:,} msgs/s vs "
                    f"{k['raw_consume_verify_msgs_per_s']:,} msgs/s raw consume + verify; "
                    f"{k['raw_consume_msgs_per_s']:,} msgs/s without verifying), "
                    f"{k['messages']:,} messages, SQLite: {verdict(ratio >= 0.5)}")
            out.append("| Kafka exactly-once ingest | ≥ 0.5× raw consume + verify | "
                       + " | ".join([text] + [""] * (len(backends) - 1)) + " |")
    return out


def memory(runs: list[dict[str, Any]]) -> list[str]:
    steps = ["import", "raw_insert", "rebuild", "raw_select", "quota_lib", "quota_cli",
             "quota_replay", "replay_cli", "replay_cli_json"]
    out = ["| shipments | backend | " + " | ".join(steps) + " |",
           "|---:|---|" + "---:|" * len(steps)]
    for r in runs:
        cells = [f"{_g(r, s, 'peak_rss_mb') or 0:,.0f}" for s in steps]
        out.append(f"| {r['size']:,} | {r['backend']} | " + " | ".join(cells) + " |")
    return out


def extra(runs: list[dict[str, Any]]) -> list[str]:
    out = ["| shipments | backend | events | import s | rebuild s | "
           "`ledger replay` table | `ledger replay --json` | read model = replay |",
           "|---:|---|---:|---:|---:|---|---|---|"]
    for r in runs:
        cells = []
        for key in ("replay_cli", "replay_cli_json"):
            v = r.get(key)
            cells.append("not measured" if v is None else (
                f"{v['seconds']:.1f} s, {v['peak_rss_mb']:,.0f} MB" if "seconds" in v
                else "failed: " + v.get("error", "")[:60].replace("|", "/")))
        out.append(
            f"| {r['size']:,} | {r['backend']} | {_fmt(r, 'import', 'events', fmt=',.0f')} | "
            f"{_fmt(r, 'import', 'seconds')} | {_fmt(r, 'rebuild', 'seconds')} | "
            f"{cells[0]} | {cells[1]} | "
            f"{_g(r, 'quota_replay', 'equal_to_read_model') or 'not measured'} |")
    return out


def index_rows(runs: list[dict[str, Any]]) -> list[str]:
    """The position index's two figures of issue 11: the first quota after a fresh
    import, and past --known-at, each against its baseline measured in the same run."""
    out = ["| shipments | backend | first quota after import (largest country): "
           "with the index built by the import / as before (ratio) | added to the import "
           "| past `--known-at` at a refresh: indexed p50 / p99 vs the fold p50 / p99 "
           "(p99 ratio) | equal to the fold | random past `--known-at` p50 / p99 |",
           "|---:|---|---|---|---|---|---|"]
    for r in runs:
        first, known = r.get("first_after_import") or {}, r.get("known_at") or {}
        if not first and not known:
            continue
        a = (f"{_ms(first['first_ms'])} / {_ms(first['baseline_first_ms'])} "
             f"({first['ratio']:.4f})" if "ratio" in first else "—")
        added = (f"{first['build_index']['seconds']:,.0f} s" if "build_index" in first
                 else "—")
        k = (f"{_ms(known['indexed']['p50_ms'])} / {_ms(known['indexed']['p99_ms'])} vs "
             f"{_ms(known['fold']['p50_ms'])} / {_ms(known['fold']['p99_ms'])} "
             f"({known['p99_ratio']:.3f})" if "p99_ratio" in known else "—")
        rnd = (f"{_ms(known['random_past']['p50_ms'])} / "
               f"{_ms(known['random_past']['p99_ms'])}" if "random_past" in known else "—")
        out.append(f"| {r['size']:,} | {r['backend']} | {a} | {added} | {k} | "
                   f"{known.get('equal_to_fold', '—')} | {rnd} |")
    return out


def growth(runs: list[dict[str, Any]]) -> list[str]:
    figures = [("import rate", ("import", "rate")),
               ("import peak memory", ("import", "peak_rss_mb")),
               ("rebuild rate", ("rebuild", "rate")),
               ("quota indexed p99, query set at the head",
                ("quota_index", "indexed", "p99_ms")),
               ("quota indexed p99, largest country",
                ("quota_index", "indexed_largest", "p99_ms")),
               ("quota indexed CPU p99, largest country",
                ("quota_index", "indexed_largest", "cpu", "p99_ms")),
               ("`ledger quota --json` process p50, at the head",
                ("quota_index", "cli", "quota", "p50_ms")),
               ("quota lib p50", ("quota_lib", "p50_ms")),
               ("quota lib p99", ("quota_lib", "p99_ms")),
               ("quota CLI p50", ("quota_cli", "p50_ms")),
               ("full replay p50", ("quota_replay", "p50_ms")),
               ("`ledger replay` table", ("replay_cli", "seconds")),
               ("`ledger replay --json`", ("replay_cli_json", "seconds")),
               ("`ledger replay --json` peak memory", ("replay_cli_json", "peak_rss_mb"))]
    out = []
    for backend in sorted({r["backend"] for r in runs}):
        mine = [r for r in runs if r["backend"] == backend]
        if len(mine) < 2:
            continue
        base = mine[0]
        out += [f"**{backend}**, relative to {base['size']:,} shipments (absolute beside):",
                "",
                "| figure | " + " | ".join(f"{r['size']:,}" for r in mine) + " |",
                "|---|" + "---:|" * len(mine)]
        for label, path in figures:
            b = _num(_g(base, *path))
            cells = []
            for r in mine:
                v = _num(_g(r, *path))
                cells.append("—" if not v or not b else f"{v / b:,.2f}x ({v:,.3g})")
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
        "## Targets (issue 11) at the largest size measured",
        "",
        *targets(runs),
        "",
        "## Throughput and latency",
        "",
        *rows(runs),
        "",
        "Rates are events per second. `import` is `ledger import`'s library path (the "
        "file streamed: parse, decide, append, chain, 10,000 lines at a time) in one "
        "transaction; `raw executemany` inserts the same stored rows into a plain table in "
        "the same run. `rebuild` is `ledger projections rebuild`, the first one after the "
        "import. `quota CLI` is a whole `ledger quota --json` process; `full replay` is "
        "`load_state` + `quota` for the same kind of question. `ledger replay` is the "
        "whole process, output to a file.",
        "",
        "## Details",
        "",
        *extra(runs),
        "",
        "## Position index (issue 11): first query after an import, past known-at",
        "",
        *index_rows(runs),
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
