"""``ledger quota --json`` starts lean: once the position index holds the answer, the
process reads it on a bare connection and prints it, without the Ledger application
(eventsourcing), pydantic models, rich, YAML or Kafka. And it prints exactly what the
full path prints."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

from click.testing import CliRunner

from ledger.cli import main
from projections.views import load_state, quota

from tests.integration.storage.storage_helpers import shipment

#: modules the indexed quota path must not load (each costs tens of milliseconds)
#: (psycopg: on PostgreSQL the lookup reads through projections.libpq)
HEAVY = ["pydantic", "pydantic_core", "rich", "yaml", "kafka", "eventsourcing", "psycopg",
         "ledger.application", "ledger.rulebook", "ledger.events", "projections.positions",
         "projections.readmodel", "projections.views"]

PROBE = """
import atexit, json, runpy, sys
out = sys.argv[1]
def dump():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(dump)
sys.argv = ["ledger", *sys.argv[2:]]
runpy.run_module("ledger", run_name="__main__")
"""


def _modules_loaded(tmp_path: Any, *argv: str) -> tuple[list[str], str]:
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *argv],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout


def test_indexed_quota_imports_no_heavy_module(db_url: str, tmp_path: Any,
                                               ledger: Any) -> None:
    ledger.submit([shipment("A", quantity=300), shipment("B", dest="BR")], actor="t")
    argv = ["--db", db_url, "quota", "--country", "MX", "--as-of", "2025-06-30", "--json"]
    full = CliRunner().invoke(main, argv, catch_exceptions=False)  # builds the index
    assert full.exit_code == 0
    modules, printed = _modules_loaded(tmp_path, *argv)
    assert json.loads(printed) == json.loads(full.output)
    assert printed == full.output
    loaded = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []
    assert "projections.position_index" in modules  # it did take the indexed path


def test_stale_index_takes_the_full_path(db_url: str, tmp_path: Any, ledger: Any) -> None:
    ledger.submit([shipment("A", quantity=300)], actor="t")
    argv = ["--db", db_url, "quota", "--country", "MX", "--as-of", "2025-06-30", "--json",
            "--rule", "ai-diffusion-2025"]
    CliRunner().invoke(main, argv, catch_exceptions=False)
    ledger.submit([shipment("B", quantity=5, day="2025-01-02")], actor="t")  # not folded
    modules, printed = _modules_loaded(tmp_path, *argv)
    assert "ledger.application" in modules  # caught up through the Ledger
    want = quota(load_state(ledger), "MX", dt.date(2025, 6, 30), rule_id="ai-diffusion-2025")
    assert json.loads(printed) == want.model_dump(mode="json", exclude={"contributions"})
    assert want.shipments_counted == 2
    again = CliRunner().invoke(main, argv, catch_exceptions=False)  # indexed now
    assert again.output == printed


def test_past_known_at_is_lean_and_prints_what_the_fold_prints(db_url: str, tmp_path: Any,
                                                               ledger: Any) -> None:
    """``--known-at`` a position the index kept rows for: the bare connection answers
    it, exactly as the full path (and the fold) would; a position past the head, or
    before the first event, still gets the full path's refusal."""
    ledger.submit([shipment("A", quantity=300)], actor="t")
    argv = ["--db", db_url, "quota", "--country", "MX", "--as-of", "2025-06-30", "--json",
            "--rule", "ai-diffusion-2025"]
    CliRunner().invoke(main, argv, catch_exceptions=False)  # builds the pair here
    before = ledger.max_position()
    ledger.submit([shipment("B", quantity=5, day="2025-01-02")], actor="t")
    CliRunner().invoke(main, argv, catch_exceptions=False)  # refreshes it (keeps the past)
    past = [*argv, "--known-at", str(before)]
    modules, printed = _modules_loaded(tmp_path, *past)
    assert "ledger.application" not in modules and "pydantic" not in modules
    want = quota(load_state(ledger, before), "MX", dt.date(2025, 6, 30),
                 rule_id="ai-diffusion-2025", known_at=before)
    assert json.loads(printed) == want.model_dump(mode="json", exclude={"contributions"})
    full = CliRunner().invoke(main, [*past, "--explain"], catch_exceptions=False)
    assert json.loads(full.output)["committed_tpp"] == want.committed_tpp
    for bad in (str(ledger.max_position() + 1), "0"):
        refused = CliRunner().invoke(main, [*argv, "--known-at", bad])
        assert refused.exit_code != 0 and "known-at" in refused.output, refused.output
