"""A rebuild, and a catch-up in small batches as the log grows, leave every fold table
of the read model (``rm_shipment_versions``, allocations, VEUs, rules, their changes,
the position index's country list, the position) holding exactly the rows of the
per-event Python fold the SQL fold of recorded shipments replaced
(``fold_reference.py``), and hand ``position_index.note_batch`` exactly what that fold
handed it, batch by batch. On the 10k bench ledger, on the seeded storage ledger and on
generated ledgers (corrections, voids, late reports, VEUs, allocations, declared die
areas), on SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.generate import write_jsonl
from ledger.application import Ledger
from ledger.cli.imports import import_file
from projections import position_index
from projections.readmodel import BATCH, ReadModel
from tests.integration.storage.fold_reference import Feed, event_rows, feed_of, fold, table_rows
from tests.model.strategies import ledgers
from tests.model.test_model import MODEL_SQLITE, SCRATCH, Decided


@contextmanager
def spied(batch: int | None = None) -> Iterator[list[Feed]]:
    """What each batch hands note_batch (with ``batch``: while every catch-up, a
    rebuild's too, folds that many events per transaction)."""
    feeds: list[Feed] = []
    real_note, real_catch_up = position_index.note_batch, ReadModel.catch_up

    def note(c: Any, folder: Any, events: int, first: int) -> None:
        feeds.append(feed_of(folder, events, first))
        real_note(c, folder, events, first)

    def catch_up(self: ReadModel, progress: Any = None, size: int = BATCH,
                 until: int | None = None) -> int:
        return real_catch_up(self, progress, batch or size, until)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(position_index, "note_batch", note)
        mp.setattr(ReadModel, "catch_up", catch_up)
        yield feeds


def assert_rebuild_equals_reference(ledger: Ledger, batch: int = BATCH) -> int:
    """Rebuild in batches of ``batch`` events; every table and every batch's feed
    equal the reference fold's. Returns how many shipment versions there are."""
    rm = ReadModel(ledger)
    rows = event_rows(rm)
    want, want_feeds = fold(rows, batch)
    with spied(batch) as feeds:
        assert rm.rebuild() == len(rows)
    assert table_rows(rm) == want.rows()
    assert feeds == want_feeds
    return len(want.versions)


def test_bench_ledger_rebuilds_to_the_reference_rows(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    write_jsonl(path, 10_000)
    ledger = Ledger(db_url)
    try:
        import_file(ledger, path, actor="test")
        # one batch (the first rebuild after the import), then batches that cut
        # corrections off the shipments they correct
        versions = assert_rebuild_equals_reference(ledger)
        assert versions > 10_000  # corrections and voids added versions
        assert_rebuild_equals_reference(ledger, batch=997)
    finally:
        ledger.close()


def test_seeded_ledger_rebuilds_to_the_reference_rows_in_small_batches(seeded: Ledger
                                                                        ) -> None:
    for batch in (7, 100, BATCH):
        assert_rebuild_equals_reference(seeded, batch)


# --- generated ledgers, appended in slices ------------------------------------------------


@contextmanager
def fresh_ledger(db_url: str) -> Iterator[Ledger]:
    """An empty ledger per example: a new SQLite file, or the test's PostgreSQL
    database emptied."""
    if not db_url.startswith("postgresql"):
        with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
            ledger = Ledger(str(Path(tmp) / "model.db"))
            try:
                yield ledger
            finally:
                ledger.close()
        return
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    ledger = Ledger(db_url)
    try:
        yield ledger
    finally:
        ledger.close()


def _in_slices(ledger: Ledger, events: list[Any], ends: list[int],
               between: Callable[[], Any]) -> None:
    """Append ``events`` up to each of ``ends`` in turn, calling ``between`` after each."""
    done = 0
    for end in ends:
        if end > done:
            assert ledger.append(events[done:end]) == list(range(done + 1, end + 1))
            done = end
        between()


def test_generated_ledgers_catch_up_and_rebuild_to_the_reference_rows(db_url: str) -> None:
    # an example costs ~0.1 s on SQLite, ~1 s on PostgreSQL (a schema emptied each time)
    examples = 20 if db_url.startswith("postgresql") else MODEL_SQLITE.max_examples

    @settings(MODEL_SQLITE, max_examples=examples)
    @given(ledgers(), st.lists(st.floats(0, 1), max_size=3), st.sampled_from([1, 3, 50]))
    def check(lines: list[dict[str, Any]], cuts: list[float], batch: int) -> None:
        d = Decided(lines)
        events = [e for _pos, e in d.events]
        ends = sorted({round(f * d.last) for f in cuts} | {d.last})
        with fresh_ledger(db_url) as ledger:
            rm = ReadModel(ledger)
            with spied(batch) as feeds:
                _in_slices(ledger, events, ends, rm.catch_up)
            want, want_feeds = fold(event_rows(rm), batch, ends)
            assert table_rows(rm) == want.rows()
            assert feeds == want_feeds
            assert_rebuild_equals_reference(ledger)

    check()
