"""The CLI as a user runs it: a separate process, the demo on a fresh SQLite file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def ledger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300)


def test_demo_shows_the_tier2_table_and_is_repeatable(tmp_path: Path) -> None:
    first = ledger("--db", "demo.db", "demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "Tier-2 quota positions as of 2025-06-30" in out
    assert "diffusion-nonenforcement-2025" in out and "ai-diffusion-2025" in out
    assert "over-cap" in out and "within-cap" in out
    assert "Traceback" not in first.stderr
    again = ledger("--db", "demo.db", "demo", cwd=tmp_path)
    assert again.returncode == 0
    assert "0 events appended" in again.stdout
    # the suggested --known-at is read from the ledger: the last position before the
    # late reports, on the first run and on a rerun that appends nothing (it was the
    # rerun's head, 3031, before)
    suggested = [re.search(r"--known-at (\d+)\s+\(before the late reports\)", o).group(1)
                 for o in (out, again.stdout)]  # type: ignore[union-attr]
    assert suggested == ["2999", "2999"]

    head = json.loads(ledger("--db", "demo.db", "quota", "--country", "MX", "--as-of",
                             "2025-06-30", "--rule", "ai-diffusion-2025", "--json",
                             cwd=tmp_path).stdout)
    assert head["country"] == "MX" and head["cap_tpp"] == 790_000_000
    assert set(head) >= {"country", "as_of", "known_at", "rule", "tier", "cap_tpp",
                         "committed_tpp", "remaining_tpp", "status", "first_breach",
                         "flagged"}


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    missing = ledger("--db", "x.db", "import", "nope.jsonl", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "shipment.recorded"}\n')
    result = ledger("--db", "x.db", "import", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "line 1" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = ledger("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("demo", "import", "quota", "rules", "ship"):
        assert command in result.stdout


def test_unwritable_output_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    assert ledger("--db", "x.db", "rules", "load", "--bundled", cwd=tmp_path).returncode == 0
    result = ledger("--db", "x.db", "audit", "export", "--format", "jsonl", "--out",
                    str(tmp_path / "missing" / "trail.jsonl"), cwd=tmp_path)
    assert result.returncode == 1
    assert "missing" in result.stderr and "Traceback" not in result.stderr
