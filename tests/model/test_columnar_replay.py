"""The columnar replay (``projections.replay_columnar``) against the per-shipment one
(``projections.replay``) and the reference fold, on generated ledgers.

Each generated ledger (``tests/model/strategies.py``) is appended to a real SQLite file;
the read model gives both engines their inputs, as ``ledger replay`` does (the full
state for the per-shipment lane, typed columns for the columnar one), now and as
known at a random position, with the default window and a drawn one, against a drawn
lane (``in-force``, ``on-the-books`` or a bundled revision). Checked:

- the whole result is the same: the ``--json`` head (countries, totals, revisions
  used), every shipment change (as dataclasses, as the JSON text the fast encoder
  writes, and as both CSVs);
- committed, remaining, status, cap, first breach and flags of every country under
  ``ai-diffusion-2025`` and the in-force timeline equal the reference fold's
  (``tests/model/reference.py``, which imports nothing from the project).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.cli.output import dumps_indented
from ledger.cli.replay import changes_csv, countries_csv
from ledger.cli.replay_json import ChangeEncoder
from projections.readmodel import ReadModel
from projections.replay import ReplayResult, replay
from projections.replay_columnar import ChangeRows, replay_columns
from tests.model import reference as ref
from tests.model.strategies import END, START, ledgers
from tests.model.test_model import (
    MODEL_SQLITE,
    RULE,
    SCRATCH,
    Decided,
    _answer,
    _check,
    _known_at,
)

AGAINST = ["in-force", "in-force", "on-the-books", "baseline-2023", "ai-diffusion-2025"]


def assert_same_result(rows: ReplayResult, columns: ReplayResult) -> None:
    """Everything ``ledger replay`` prints from a result is the same."""
    assert isinstance(columns.changes, ChangeRows)
    head = {"changes"}
    assert (columns.model_dump(mode="json", exclude=head)
            == rows.model_dump(mode="json", exclude=head))
    assert list(columns.changes) == rows.changes
    assert columns.changes[:3] == rows.changes[:3]
    texts = ChangeEncoder(columns.changes)(columns.changes, 0, len(columns.changes))
    assert texts == [dumps_indented(ch, 2) for ch in rows.changes]
    assert changes_csv(columns) == changes_csv(rows)
    assert countries_csv(columns) == countries_csv(rows)


def both(rm: ReadModel, against: str, known_at: int | None,
         window: tuple[dt.date | None, dt.date | None]) -> tuple[ReplayResult, ReplayResult]:
    kw: dict[str, Any] = {"window_from": window[0], "window_to": window[1],
                          "known_at": known_at}
    rows = replay(rm.full_state(known_at), RULE, against, **kw)
    state, cols = rm.shipment_columns(known_at)
    return rows, replay_columns(state, cols, RULE, against, **kw)


def check_reference(d: Decided, result: ReplayResult, to: dt.date,
                    known_at: int | None) -> None:
    for comparison in result.countries:
        c = comparison.country
        where = f"columnar replay to {to}" + (f" known at {known_at}" if known_at else "")
        _check(d, f"{where}, {c}, lane --rule {RULE}", _answer(comparison.rule),
               d.expected(c, to, ref.CAPPED, known_at))
        if result.against == "in-force":
            _check(d, f"{where}, {c}, lane --against in-force", _answer(comparison.against),
                   d.expected(c, to, ref.UNCAPPED, known_at))


windows = st.tuples(st.none() | st.dates(START, END), st.dates(START, END))


@MODEL_SQLITE
@given(ledgers(), windows, st.floats(0, 1), st.sampled_from(AGAINST))
def test_columnar_replay_equals_rows_and_reference(lines: list[dict[str, Any]],
                                                   window: tuple[dt.date | None, dt.date],
                                                   fraction: float, against: str) -> None:
    d = Decided(lines)
    k = _known_at(d, fraction)
    start, to = window
    start = None if start is None else min(start, to)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        ledger = Ledger(db=str(Path(tmp) / "model.db"))
        try:
            assert ledger.append([e for _pos, e in d.events]) == list(range(1, d.last + 1))
            rm = ReadModel(ledger)
            rm.catch_up()
            rows, columns = both(rm, against, None, (None, None))
            assert_same_result(rows, columns)
            for known_at in (None, k):
                rows, columns = both(rm, against, known_at, (start, to))
                assert_same_result(rows, columns)
                check_reference(d, columns, to, known_at)
        finally:
            ledger.close()
