"""``ReadModel.shipment_columns`` reads the live shipment rows as a dozen texts per
chunk of first positions (``columns.bulk_select``); it must give exactly the columns
packed from the rows themselves (``columns.from_chunks`` over the plain query), for
any chunk size (chunks of one position, chunks that end inside a run of corrected or
voided shipments, one chunk for everything) and as known at past positions, on both
backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from projections import columns
from projections.columns import ShipmentColumns
from projections.readmodel import ReadModel
from tests.integration.storage.storage_helpers import imported_bench_ledger
from tests.unit.test_columns_bulk import assert_same_columns

SIZE = 400


@pytest.fixture
def small_ledger(db_url: str, tmp_path: Path) -> Any:
    with imported_bench_ledger(db_url, tmp_path, SIZE) as ledger:
        yield ledger


def rows_columns(rm: ReadModel, cut: int) -> ShipmentColumns:
    """The reference: the rows of the plain query, packed as they come."""
    with rm._tx(commit=False) as c:
        rows = c.execute(f"SELECT {columns.SELECT} FROM rm_shipment_versions WHERE "
                         "recorded_from <= ? AND (recorded_to IS NULL OR recorded_to > ?) "
                         "AND voided = 0", (cut, cut)).fetchall()
    return columns.from_chunks([rows[:5], [], rows[5:]])


def test_bulk_columns_equal_the_rows_for_every_chunk_size(small_ledger: Ledger) -> None:
    rm = ReadModel(small_ledger)
    head = rm.full_state(None).position
    with rm._tx(commit=False) as c:
        corrected = c.execute("SELECT count(*) FROM rm_shipment_versions "
                              "WHERE recorded_to IS NOT NULL").fetchall()[0][0]
        voided = c.execute("SELECT count(*) FROM rm_shipment_versions "
                           "WHERE voided = 1").fetchall()[0][0]
    assert corrected and voided  # the ledger has versions to skip
    for known_at in (None, head // 3, 2 * head // 3):
        expected = rows_columns(rm, head if known_at is None else known_at)
        assert len(expected) > 0
        for chunk in (1, 2, 7, 64, 50_000):
            state, cols = rm.shipment_columns(known_at, chunk=chunk)
            assert_same_columns(cols, expected)
            assert state.shipments == {}


def test_bulk_columns_of_a_ledger_without_shipments(db_url: str) -> None:
    ledger = Ledger(db_url, create=True)
    try:
        _state, cols = ReadModel(ledger).shipment_columns(None)
        assert len(cols) == 0 and cols.exporters == []
    finally:
        ledger.close()
