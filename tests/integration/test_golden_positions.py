"""Golden positions: small ledgers (``tests/golden/positions/*.jsonl``) imported with
``ledger import`` and answered by ``ledger quota --json`` on each backend, against the
figures in ``cases.json``. They pin the day rule and the readings decided in issue 9
(README, "Position"): the four defects' minimal ledgers, same-day changes, a license
across the cap period's start, and a breach at the start of a day."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent.parent / "golden" / "positions"
CASES = json.loads((GOLDEN / "cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['file']}@{c.get('as_of', 'refused')}")
def test_golden_position(run_cli: Any, case: dict[str, Any]) -> None:
    assert run_cli("rules", "load", "--bundled").exit_code == 0
    result = run_cli("import", str(GOLDEN / case["file"]))
    refused = case.get("refused")
    if refused is not None:
        assert result.exit_code == 1, result.output
        for word in ("line " + str(refused["line"]), refused["field"], refused["value"],
                     "never revives"):
            assert word in result.output, (word, result.output)
        return
    assert result.exit_code == 0, result.output
    answer = run_cli("quota", "--country", case["country"], "--as-of", case["as_of"],
                     "--rule", case["rule"], "--json")
    assert answer.exit_code == 0, answer.output
    got = json.loads(answer.output)
    assert {k: got[k] for k in case["expect"]} == case["expect"]
