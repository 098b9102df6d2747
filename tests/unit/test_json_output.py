"""The streamed JSON writer of ``ledger replay --json`` gives exactly the text of
``print_json`` (``json.dumps(indent=2, sort_keys=True, default=str)``)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import click
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.cli.output import dumps_indented, echo_json_stream, print_json

scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


def reference(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@settings(max_examples=300, deadline=None)
@given(values)
def test_dumps_indented_equals_json_dumps(value: Any) -> None:
    assert dumps_indented(value) == reference(value)


@dataclass(frozen=True)
class Inner:
    rule: str | None
    breach: bool


@dataclass(frozen=True)
class Row:
    ship_date: dt.date
    tpp: int
    note: str
    lane: Inner


def _run(fn: Any) -> str:
    @click.command()
    def cmd() -> None:
        fn()

    return CliRunner().invoke(cmd, catch_exceptions=False).output


def test_stream_equals_print_json_with_dataclasses_dates_and_slices() -> None:
    rows = [Row(dt.date(2025, 1, i + 1), i * 1000, "§ 740.27 “é”", Inner(None if i % 2
                else "r", i % 3 == 0)) for i in range(7)]
    head = {"rule": "ai-diffusion-2025", "known_at": None, "totals": {"a": [1, 2], "b": {}}}
    as_dicts = [{"ship_date": r.ship_date.isoformat(), "tpp": r.tpp, "note": r.note,
                 "lane": {"rule": r.lane.rule, "breach": r.lane.breach}} for r in rows]
    for items, dicts in ((rows, as_dicts), ([], [])):
        expected = _run(lambda d=dicts: print_json({**head, "changes": d}))
        got = _run(lambda i=items: echo_json_stream(head, "changes", i, slice_size=3))
        assert got == expected


def test_stream_slices_holding_an_escape_still_go_through_click_echo() -> None:
    """Slices are written straight to stdout unless they hold ESC (never in encoded
    JSON): those still go through click.echo, which strips ANSI escapes off a
    terminal, so the output is what it was with click.echo for every slice."""
    items = ["x"] * 5

    def styled(_items: Any, start: int, stop: int) -> list[str]:
        return ['"\x1b[1mx\x1b[0m"'] * len(items[start:stop])

    def plain(_items: Any, start: int, stop: int) -> list[str]:
        return ['"x"'] * len(items[start:stop])

    got = _run(lambda: echo_json_stream({"a": 1}, "changes", items, slice_size=2,
                                        encode=styled))
    assert got == _run(lambda: echo_json_stream({"a": 1}, "changes", items, slice_size=2,
                                                encode=plain))
    assert got == _run(lambda: print_json({"a": 1, "changes": items}))
