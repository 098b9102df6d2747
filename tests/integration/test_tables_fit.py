"""Tables that fit: each table rendered at 80, 100 and 150 columns (and --wide) shows
every number of its always-kept columns whole, exactly as ``--json`` gives it (with
thousands separators), never cut or abbreviated ("…"); ids are never cut either.

In-process (click's runner, ``$COLUMNS`` set as a terminal would), on one SQLite
ledger per module: the demo's sample (300 shipments) plus the audit sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "audit-sample.jsonl"
WIDTHS = (80, 100, 150)
RULE = "ai-diffusion-2025"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("fit") / "fit.db")
    for args in (["demo", "--shipments", "300"], ["import", str(SAMPLE)]):
        r = CliRunner().invoke(main, ["--db", path, *args], env={"COLUMNS": "150"})
        assert r.exit_code == 0, r.output
    return path


def render(db: str, *args: str, width: int = 150) -> str:
    r = CliRunner().invoke(main, ["--db", db, *args], env={"COLUMNS": str(width)})
    assert r.exit_code in (0, 4), r.output
    return r.stdout


def as_json(db: str, *args: str) -> Any:
    return json.loads(render(db, *args, "--json"))


def tokens(text: str) -> set[str]:
    return {t.strip("()[],;:") for t in text.split()}


def assert_whole(text: str, numbers: list[int | None], width: int, *,
                 fits: bool = True) -> None:
    assert "…" not in text, f"a cell was cut at {width} columns:\n{text}"
    words = tokens(text)
    missing = sorted({f"{n:,}" for n in numbers if n is not None} - words)
    assert not missing, f"not shown whole at {width} columns: {missing}\n{text}"
    widest = max(len(line.rstrip()) for line in text.splitlines())
    table = [line for line in text.splitlines() if "─" in line]
    if fits:
        assert all(len(line.rstrip()) <= width for line in table), (width, widest)


@pytest.mark.parametrize("width", WIDTHS)
def test_quota_all(db: str, width: int) -> None:
    data = as_json(db, "quota", "--all", "--as-of", "2025-12-31", "--rule", RULE)
    numbers = [p[k] for p in data for k in ("cap_tpp", "committed_tpp", "remaining_tpp")]
    args = ("quota", "--all", "--as-of", "2025-12-31", "--rule", RULE)
    assert_whole(render(db, *args, width=width), numbers, width)
    wide = render(db, *args, "--wide", width=width)
    assert "flagged" in wide and "H100e" in wide and "first breach" in wide


@pytest.mark.parametrize("width", WIDTHS)
def test_demo(db: str, width: int) -> None:
    data = as_json(db, "quota", "--all", "--tier", "2", "--as-of", "2025-06-30", "--rule",
                   RULE)
    numbers = [p[k] for p in data for k in ("cap_tpp", "committed_tpp", "remaining_tpp")]
    text = render(db, "demo", "--shipments", "300", width=width)
    assert_whole(text, numbers, width)
    if width < 150:
        assert "--wide shows every column" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_history(db: str, width: int) -> None:
    data = as_json(db, "history", "--country", "MX", "--rule", RULE)
    entries = data["entries"]
    text = render(db, "history", "--country", "MX", "--rule", RULE, width=width)
    assert_whole(text, [e["committed_tpp"] for e in entries], width)
    words = tokens(text)
    assert {e["identity"] for e in entries} <= words
    assert "FIRST BREACH" in text
    wide = render(db, "history", "--country", "MX", "--rule", RULE, "--wide", width=width)
    assert_whole(wide, [e["tpp"] for e in entries] + [e["cap_tpp"] for e in entries], 10**6)


@pytest.mark.parametrize("width", WIDTHS)
def test_licenses_and_veus(db: str, width: int) -> None:
    listed = as_json(db, "licenses", "list", "--as-of", "2025-12-31")["licenses"]
    text = render(db, "licenses", "list", "--as-of", "2025-12-31", width=width)
    assert_whole(text, [r[k] for r in listed for k in ("amount_tpp", "shipped_tpp",
                                                         "remaining_tpp")], width)
    assert {r["allocation_id"] for r in listed} <= tokens(text)
    shown = as_json(db, "licenses", "show", "LIC-MX-ACME-1", "--as-of", "2025-12-31")
    text = render(db, "licenses", "show", "LIC-MX-ACME-1", "--as-of", "2025-12-31",
                  width=width)
    assert_whole(text, [d["tpp"] for d in shown["draws"]]
                 + [d["shipped_after_tpp"] for d in shown["draws"]], width)
    veus = as_json(db, "veu", "list", "--as-of", "2025-12-31")["veus"]
    text = render(db, "veu", "list", "--as-of", "2025-12-31", width=width)
    assert_whole(text, [v["shipped_tpp"] for v in veus], width)
    assert {v["veu_id"] for v in veus} <= tokens(text)


@pytest.mark.parametrize("width", WIDTHS)
def test_replay_and_explain(db: str, width: int) -> None:
    data = as_json(db, "replay", "--rule", RULE)
    numbers = [lane[k] for c in data["countries"] for lane in (c["rule"], c["against"])
               for k in ("cap_tpp", "committed_tpp", "remaining_tpp")]
    text = render(db, "replay", "--rule", RULE, "--limit", "0", width=width)
    countries, changes = text.split("Shipments whose treatment changes", 1)
    assert_whole(countries, numbers, width)
    # 34-character exporter/refs beside two treatments cannot fit 80 or 100 columns
    # whole: the table is then printed at the least width that cuts nothing
    assert_whole(changes, [ch["tpp"] for ch in data["changes"]], width, fits=False)
    assert {f"{ch['exporter_id']}/{ch['shipment_ref']}" for ch in data["changes"]} <= \
        tokens(changes)
    p = as_json(db, "quota", "--country", "MX", "--as-of", "2025-12-31", "--rule", RULE,
                "--explain")
    text = render(db, "quota", "--country", "MX", "--as-of", "2025-12-31", "--rule", RULE,
                  "--explain", width=width)
    assert_whole(text, [c["tpp"] for c in p["contributions"]], width)
