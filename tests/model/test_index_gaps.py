"""Examples the slow model profile found, kept as regression tests (the profile's
10,000 ledgers do not run in CI)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.model.test_model import test_index_known_at_matches_the_reference as model_test

DATA = Path(__file__).parents[1] / "data" / "model"


def _example(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((DATA / name).read_text())
    found["days"] = [dt.date.fromisoformat(d) for d in found["days"]]
    return found


@pytest.mark.parametrize("name", [
    # BR: allocations granted, adjusted and revoked across three slices; at the last
    # refresh its past (15 rows) outgrew 4 x its live rows (3, after the revocations),
    # so its history restarts there and the fold answers the earlier slices' positions
    # (the model test once asserted the index answered them: 2026-11-30, slow profile)
    "index-miss-allocation-only-country.json",
])
def test_model_examples(name: str) -> None:
    model_test.hypothesis.inner_test(**_example(name))  # type: ignore[attr-defined]
