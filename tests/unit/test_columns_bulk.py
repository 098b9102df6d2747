"""The bulk texts of ``columns.bulk_select`` parse into the columns the rows give
(``from_bulk`` = ``from_chunks``), and anything the texts cannot carry exactly is
refused with ColumnsUnsupported (the replay then uses the per-shipment engine)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from projections.columns import (
    SEP,
    ColumnsUnsupported,
    ShipmentColumns,
    bulk_ints,
    bulk_texts,
    from_bulk,
    from_chunks,
)

ROWS: list[tuple[Any, ...]] = [
    (12, "2025-03-01", "EXP2", "S9", "MX", "C2", "nvidia-h100", 3, 2000, "license", "LIC-1",
     None),
    (5, "2025-01-07", "EXP1", "S1", "AE", "C1", "chip-x", 10, 1500, "none", None, "814.5"),
    (7, "2025-01-07", "EXP1", "S2", "AE", "C1", "chip-x", 1, 1500, "veu", "VEU-1", ""),
    (40, "2024-12-31", "EXP3", "S\u00e9", "MX", "C3", "nvidia-h100", 2, 2000, "lpp", "", None),
]


def bulk(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """What the bulk query returns for these rows (NULLs as COALESCE gives them)."""
    if not rows:
        return (0, *[None] * 12)
    (pos, day, exporter, ref, dest, consignee, product, qty, tpu, kind, auth_ref,
     die) = zip(*rows, strict=True)
    ints = [",".join(map(str, c)) for c in (pos, qty, tpu)]
    texts = [SEP.join(c) for c in (day, ref, exporter, dest, consignee, product, kind,
                                   [r or "" for r in auth_ref], [d or "" for d in die])]
    return (len(rows), *ints, *texts)


def assert_same_columns(got: ShipmentColumns, expected: ShipmentColumns) -> None:
    for f in fields(ShipmentColumns):
        a, b = getattr(got, f.name), getattr(expected, f.name)
        if isinstance(b, np.ndarray):
            assert a.dtype.kind == b.dtype.kind, f.name
            assert np.array_equal(a, b), f.name
        else:
            assert a == b, f.name


def test_from_bulk_equals_from_chunks_across_chunk_boundaries() -> None:
    expected = from_chunks([ROWS])
    for cut in range(len(ROWS) + 1):
        got = from_bulk([bulk(ROWS[:cut]), bulk([]), bulk(ROWS[cut:])])
        assert_same_columns(got, expected)
    assert [int(p) for p in expected.position] == [40, 5, 7, 12]  # (date, position)
    assert expected.die_areas == ["", "814.5"]


def test_bulk_ints() -> None:
    assert bulk_ints("1,-2,9223372036854775806", 3).tolist() == [1, -2, 2**63 - 2]
    for text, count in (("1,2", 3), ("1,x", 2), ("1,2.5", 2), ("9223372036854775807", 1),
                        ("9223372036854775808", 1), ("-9223372036854775808", 1)):
        with pytest.raises(ColumnsUnsupported):
            bulk_ints(text, count)


def test_bulk_texts_refuse_a_value_holding_the_separator() -> None:
    assert bulk_texts(SEP.join(["a", "", "b"]), 3) == ["a", "", "b"]
    with pytest.raises(ColumnsUnsupported, match="separator"):
        bulk_texts(SEP.join(["a", "b" + SEP + "c"]), 2)


def test_empty_bulk_is_empty_columns() -> None:
    cols = from_bulk([bulk([])])
    assert len(cols) == 0 and cols.tpp.dtype == np.int64
