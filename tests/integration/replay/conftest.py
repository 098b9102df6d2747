"""Fixtures of the replay tests: the golden ledger imported into each backend.

``golden`` imports ``golden/ledger.jsonl`` (27 events: the bundled rule books, two
licenses, a universal VEU, 16 live shipments and a void, then a retroactive revision
last) into a fresh database of each backend and returns its URL. ``cli`` runs the
``ledger`` command line against it in-process and returns (exit code, stdout,
stderr), checking no traceback ever escapes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
#: the recorded position of the retroactive revision (the file's last line)
RETRO_POSITION = 27


@pytest.fixture
def golden(db_url: str) -> str:
    from ledger.application import Ledger
    from ledger.commands import parse_command_line

    app = Ledger(db_url)
    try:
        lines = (GOLDEN / "ledger.jsonl").read_bytes().splitlines()
        result = app.submit([parse_command_line(line) for line in lines if line.strip()],
                            actor="test:golden")
        assert result.positions == list(range(1, RETRO_POSITION + 1))
    finally:
        app.close()
    return db_url


@pytest.fixture
def cli(golden: str) -> Callable[..., tuple[int, str, str]]:
    from click.testing import CliRunner

    from ledger.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        runner = CliRunner()
        result: Any = runner.invoke(main, ["--db", golden, *args], catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    return run
