"""A rebuild, and a catch-up in small batches as the log grows, leave every fold table
of the read model (``rm_shipment_versions``, allocations, VEUs, rules, their changes,
the position index's country list, the position) holding exactly the rows of the
per-event Python fold the SQL fold of recorded shipments replaced
(``fold_reference.py``), and hand ``position_index.note_batch`` exactly what that fold
handed it, batch by batch (above ``READ_BACK`` events, where note_batch reads the rows
for their countries only, less the recorded shipments' rows, whose countries the
batch notes itself: ``read_back_feed``; the position index's tables are then the same
as with every row read back). On the 10k bench ledger, on the seeded storage ledger and on
generated ledgers (corrections, voids, late reports, VEUs, allocations, declared die
areas), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
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
from projections import readmodel
from projections.readmodel import BATCH, READ_BACK, ReadModel
from projections.views import readmodel_quota
from tests.integration.storage.fold_reference import (
    Feed,
    event_rows,
    feed_of,
    fold,
    read_back_feed,
    table_rows,
)
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


def assert_rebuild_equals_reference(ledger: Ledger, batch: int = BATCH,
                                    read_back: int = READ_BACK) -> int:
    """Rebuild in batches of ``batch`` events (reading the recorded shipments' rows
    back in batches of at most ``read_back``); every table and every batch's feed
    equal the reference fold's. Returns how many shipment versions there are."""
    rm = ReadModel(ledger)
    rows = event_rows(rm)
    want, want_feeds = fold(rows, batch)
    with spied(batch) as feeds, pytest.MonkeyPatch.context() as mp:
        mp.setattr(readmodel, "READ_BACK", read_back)
        assert rm.rebuild() == len(rows)
    assert table_rows(rm) == want.rows()
    assert feeds == expected_feeds(want_feeds, read_back)
    return len(want.versions)


def expected_feeds(feeds: list[Feed], read_back: int = READ_BACK) -> list[Feed]:
    """The reference's feeds as the read model hands them (see read_back_feed)."""
    return [f if f.events <= read_back else read_back_feed(f) for f in feeds]


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
        assert_rebuild_equals_reference(seeded, batch, read_back=0)


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
            assert feeds == expected_feeds(want_feeds)
            assert_rebuild_equals_reference(ledger)
            assert_rebuild_equals_reference(ledger, batch, read_back=0)

    check()


def _index_tables(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    rm = ReadModel(ledger)
    with rm._tx(commit=False) as c:
        return {t: sorted((tuple(r) for r in c.execute(f"SELECT * FROM {t}").fetchall()),
                          key=repr) for t in position_index.TABLE_NAMES}


def test_a_large_catch_up_leaves_the_position_index_as_reading_every_row_back(
        db_url: str, tmp_path: Path) -> None:
    """Pairs built on part of the bench ledger, then the rest appended in one large
    batch: the index's tables (marks, lowered pairs, countries) and the answers are
    the same whether the batch reads its recorded shipments' rows back or not."""
    path = tmp_path / "bench.jsonl"
    write_jsonl(path, 10_000)
    lines = path.read_text().splitlines(keepends=True)
    head, tail = tmp_path / "head.jsonl", tmp_path / "tail.jsonl"
    head.write_text("".join(lines[:2_500]))
    tail.write_text("".join(lines[2_500:]))
    as_of = dt.date(2025, 9, 30)
    got = []
    for read_back in (READ_BACK, 10 ** 9):
        with fresh_ledger(db_url) as ledger, pytest.MonkeyPatch.context() as mp:
            mp.setattr(readmodel, "READ_BACK", read_back)
            import_file(ledger, head, actor="test")
            for country in ("CN", "MX", "IN", "BR", "AE"):
                readmodel_quota(ledger, country, as_of, rule_id="ai-diffusion-2025")
            import_file(ledger, tail, actor="test")
            assert ReadModel(ledger).catch_up() > READ_BACK
            tables = _index_tables(ledger)
            assert tables["rm_quota_pairs"] and tables["rm_quota_marks"]
            answers = [readmodel_quota(ledger, country, as_of, rule_id="ai-diffusion-2025")
                       for country in ("CN", "MX", "IN", "BR", "AE")]
            got.append((tables, answers))
    assert got[0] == got[1]


def test_recorded_shipments_with_an_escaped_nul_fold_in_python(seeded: Ledger) -> None:
    """Stored JSON holding the escape \\u0000 (an authorization ref once took any text;
    a stored event's text is not checked again): PostgreSQL's jsonb refuses it anywhere
    in the document (the whole batch failed, though the column values hold none) and
    SQLite's json_extract cut a string at it (the row named another license). Such a
    shipment is folded in Python: the rows are the reference fold's. (A NUL in a
    column value cannot be stored in a PostgreSQL text column at all, by either fold.)"""
    import json

    rm = ReadModel(seeded)
    recorded = [r for r in event_rows(rm) if r[2].endswith(":ShipmentRecorded")]
    (pos_a, _, _, state_a), (pos_b, _, _, state_b) = recorded[3], recorded[4]
    elsewhere = json.loads(bytes(state_b))
    elsewhere["actor"] = "clerk\x00"
    tampered = [(pos_b, elsewhere)]
    if not rm.pg:
        with_ref = json.loads(bytes(state_a))
        with_ref["shipment"]["authorization"]["ref"] = "LIC-1\x00-old"
        tampered.append((pos_a, with_ref))
    where = "notification_id" if rm.pg else "rowid"
    with rm._tx() as c:
        for position, data in tampered:
            stored = json.dumps(data).encode()
            assert b"\\u0000" in stored
            c.execute(f"UPDATE {rm.events_table} SET state = ? WHERE {where} = ?",
                      (stored, position))
    assert_rebuild_equals_reference(seeded)
    if not rm.pg:
        with rm._tx(commit=False) as c:
            refs = c.execute("SELECT auth_ref FROM rm_shipment_versions WHERE "
                             "first_position = ?", (pos_a,)).fetchall()
        assert {r[0] for r in refs} == {"LIC-1\x00-old"}
