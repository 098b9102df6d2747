"""Fixtures of the storage suite: a seeded synthetic ledger.

Every test here takes ``db_url`` (tests/conftest.py), so it runs on SQLite and on
PostgreSQL: one abstract suite, two backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def seeded(db_url: str) -> Iterator[Any]:
    """A Ledger holding the bench's synthetic ledger at a small size (~1,300 events),
    imported in three slices so that later slices correct and void earlier ones."""
    from bench.generate import generate
    from ledger.application import Ledger
    from ledger.commands import parse_command

    commands = [parse_command(c) for c in generate(1200, seed=7)]
    app = Ledger(db_url)
    third = len(commands) // 3
    for part in (commands[:third], commands[third:2 * third], commands[2 * third:]):
        app.submit(part, actor="test")
    yield app
    app.close()
