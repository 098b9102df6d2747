"""``ledger projections`` and ``ledger quota`` as a user runs them, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.generate import write_jsonl


def test_rebuild_status_catch_up_and_quota(run_cli: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 300, seed=3)
    assert run_cli("import", str(events)).exit_code == 0

    rebuilt = run_cli("projections", "rebuild", "--quiet")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "read models rebuilt" in rebuilt.output

    status = json.loads(run_cli("projections", "status", "--json").output)
    assert status["behind"] == 0 and status["position"] == status["head"] > 0

    again = run_cli("projections", "catch-up")
    assert again.exit_code == 0 and "folded 0 events" in again.output

    result = run_cli("quota", "--all", "--as-of", "2025-09-30", "--rule", "ai-diffusion-2025",
                     "--json")
    assert result.exit_code == 0, result.output
    positions = json.loads(result.output)
    assert positions and all(p["rule"] == "ai-diffusion-2025" for p in positions)
    country = positions[0]["country"]
    one = json.loads(run_cli("quota", "--country", country, "--as-of", "2025-09-30",
                             "--rule", "ai-diffusion-2025", "--json").output)
    assert one["committed_tpp"] == positions[0]["committed_tpp"]


def test_quota_catches_up_by_itself(run_cli: Any, tmp_path: Path) -> None:
    """No rebuild: the first query folds the log, later ones fold only what is new."""
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 50, seed=4)
    run_cli("import", str(events))
    first = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--json")
    assert first.exit_code == 0, first.output
    status = json.loads(run_cli("projections", "status", "--json").output)
    assert status["behind"] == 0


def test_unknown_rule_is_a_clean_error(run_cli: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 10, seed=5)
    run_cli("import", str(events))
    result = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--rule", "nope")
    assert result.exit_code != 0
    assert "nope" in result.output and "Traceback" not in result.output


def test_quota_imports_only_what_it_needs(sqlite_url: str) -> None:
    """A query loads no Kafka client, no chart library, no YAML parser and none of
    the write side (commands, decisions)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ledger.cli import main\n"
        "try:\n"
        f"    main(['--db', {sqlite_url!r}, 'quota', '--country', 'MX', '--as-of',"
        " '2025-06-30', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "banned = ('kafka', 'matplotlib', 'yaml', 'consumers', 'ledger.decide',"
        " 'ledger.commands')\n"
        "print(sorted(m for m in sys.modules if m.startswith(banned)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
