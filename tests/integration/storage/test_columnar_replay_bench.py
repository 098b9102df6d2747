"""The columnar replay gives what the per-shipment replay gives on the 10k bench ledger
(``bench.generate``, seed 2025: licenses, allocations, VEUs, LPP, corrections, voids,
late reports), on both backends, for every bundled rule revision: the whole result,
every change's JSON text and both CSVs; and ``ledger replay`` prints the same table
with either engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.application import Ledger
from ledger.cli import main
from ledger.rulebook import bundled_rulebooks
from projections.readmodel import ReadModel
from tests.integration.storage.storage_helpers import imported_bench_ledger
from projections.replay import replay
from projections.replay_columnar import replay_columns
from tests.model.test_columnar_replay import assert_same_result

SIZE = 10_000


@pytest.fixture
def bench_ledger(db_url: str, tmp_path: Path) -> Any:
    with imported_bench_ledger(db_url, tmp_path, SIZE) as ledger:
        yield ledger


def test_columnar_replay_equals_rows_on_the_bench_ledger(bench_ledger: Ledger) -> None:
    rm = ReadModel(bench_ledger)
    full = rm.full_state(None)
    state, cols = rm.shipment_columns(None)
    assert len(cols) > 0.95 * SIZE
    changed = 0
    for rule in [book.id for book in bundled_rulebooks()]:
        for against in ("in-force", "on-the-books"):
            rows = replay(full, rule, against)
            columns = replay_columns(state, cols, rule, against)
            assert_same_result(rows, columns)
            changed += len(rows.changes)
    assert changed > SIZE  # the lanes differ: the comparison is not of empty lists


def test_replay_table_is_the_same_with_either_engine(bench_ledger: Ledger) -> None:
    def table(engine: str) -> str:
        result = CliRunner().invoke(main, ["--db", bench_ledger.url, "replay", "--rule",
                                           "ai-diffusion-2025", "--quiet", "--engine", engine])
        assert result.exit_code == 0, result.output
        return result.stdout

    columnar = table("columnar")
    assert "Shipments whose treatment changes" in columnar
    assert columnar == table("rows")


def test_columnar_replay_equals_rows_for_fixed_revision_pairs(bench_ledger: Ledger) -> None:
    """Two fixed revisions (``--rule X --against Y``), pairs of the bundled ones: the
    same result, JSON texts included (the encoder caches each lane's fixed texts under
    that lane's own index of its revisions)."""
    rm = ReadModel(bench_ledger)
    full = rm.full_state(None)
    state, cols = rm.shipment_columns(None)
    ids = [book.id for book in bundled_rulebooks()]
    pairs = {(a, b) for a, b in zip(ids, ids[1:] + ids[:1], strict=True)}
    pairs |= {(a, ids[0]) for a in ids[1:]}
    for rule, against in sorted(pairs):
        assert_same_result(replay(full, rule, against),
                           replay_columns(state, cols, rule, against))
