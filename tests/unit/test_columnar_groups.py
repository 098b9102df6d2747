"""``replay_columnar.group_codes``: the groups of rows equal in every column, numbered
in key order with each group's first row, exactly ``np.unique`` of the key tuples,
whether the key is ranked through a table or by sorting (``DENSE_SPAN``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import replay_columnar
from projections.replay_columnar import dense_rank, group_codes

ints = st.integers(-(2**40), 2**40)


@st.composite
def columns(draw: st.DrawFn) -> list[np.ndarray]:
    n = draw(st.integers(0, 60))
    k = draw(st.integers(1, 4))
    out = []
    for _ in range(k):
        pool = draw(st.lists(ints, min_size=1, max_size=6))
        out.append(np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)),
                            dtype=np.int64))
    return out


@pytest.mark.parametrize("span", [1, 5, 1 << 22])
@settings(max_examples=60, deadline=None)
@given(cols=columns())
def test_group_codes_are_unique_of_the_key_tuples(span: int, cols: list[np.ndarray]) -> None:
    saved = replay_columnar.DENSE_SPAN
    replay_columnar.DENSE_SPAN = span
    try:
        group, first = group_codes(*cols)
    finally:
        replay_columnar.DENSE_SPAN = saved
    rows = np.stack(cols, axis=1)
    _, want_first, want_group = np.unique(rows, axis=0, return_index=True,
                                          return_inverse=True)
    assert group.tolist() == want_group.reshape(-1).tolist()
    assert first.tolist() == want_first.tolist()


def test_dense_rank_of_a_wide_range_sorts() -> None:
    values = np.array([2**50, -3, 7, -3], dtype=np.int64)
    ranks, count = dense_rank(values)
    assert ranks.tolist() == [2, 0, 1, 0] and count == 3
    assert dense_rank(np.zeros(0, np.int64))[1] == 0
