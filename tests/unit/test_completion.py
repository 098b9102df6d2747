"""Shell completion as the README documents it: ``_LEDGER_COMPLETE=bash_source ledger``
prints a bash script, and completing uses the lazily loaded commands."""

from __future__ import annotations

import os
import subprocess
import sys


def complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword),
           "_LEDGER_COMPLETE": "bash_complete"}
    done = subprocess.run([sys.executable, "-c", "from ledger.cli import main; "
                           "main(prog_name='ledger')"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]


def test_bash_source_prints_a_completion_script() -> None:
    env = {**os.environ, "_LEDGER_COMPLETE": "bash_source"}
    done = subprocess.run([sys.executable, "-c", "from ledger.cli import main; "
                           "main(prog_name='ledger')"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert "_ledger_completion()" in done.stdout and "complete -o" in done.stdout


def test_commands_subcommands_and_options_complete() -> None:
    assert "licenses" in complete("ledger lic", 1)
    assert set(complete("ledger licenses ", 2)) == {"list", "show"}
    assert "--wide" in complete("ledger quota --wi", 2)
    assert set(complete("ledger quota --explain ", 3)) == {"summary", "full"}
