"""Shared CLI output: TPP formatting, tables, JSON, errors.

TPP is shown as an integer with thousands separators and H100-equivalents beside it
(TPP / 15,832, one decimal); machine output (--json) carries integers only.
"""

from __future__ import annotations

import json
import sys
from json.encoder import encode_basestring_ascii as _enc_str  # the C encoder
from typing import Any

import click

from ledger.units import H100_TPP


#: how a position's status is shown in every table
STATUS_STYLE = {"over-cap": "bold red", "within-cap": "green", "no-cap": "dim"}


def tpp(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def h100(value: int | None) -> str:
    return "—" if value is None else f"{value / H100_TPP:,.1f}"


def mtpp(value: int | None) -> str:
    """Millions of TPP, one decimal: '790.0'."""
    return "—" if value is None else f"{value / 1_000_000:,.1f}"


def tpp_h100(value: int | None) -> str:
    """'12,345,678 TPP (779.8 H100e)'."""
    return "no cap" if value is None else f"{value:,} TPP ({h100(value)} H100e)"


def console(stderr: bool = False) -> Any:
    """A rich console; when not a terminal (pipes, files, CI logs) it is 150 columns
    wide instead of rich's 80 (or $COLUMNS), so tables are not cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 150
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


# --- a faster encoder for large outputs ----------------------------------------------
#
# ``json.dumps`` with ``indent`` never uses the C encoder: it yields one small string
# per token from Python generators and joins them all at the end. For ``ledger replay
# --json`` (tens of MB at 100k shipments) that was a third of the run and, with the
# list of tokens plus the model_dump copy, most of its peak memory. ``dumps_indented``
# gives the same text as ``json.dumps(value, indent=2, sort_keys=True, default=str)``
# for the values the CLI prints (dicts with str keys, lists, str, int, bool, None,
# floats, dates and dataclasses as pydantic dumps them) by building each container
# with one join; ``echo_json_stream`` writes a top-level dict whose large list is
# encoded and written in slices, so the whole text never exists at once.

_INDENT = "  "


def dumps_indented(value: Any, level: int = 0) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, default=str)`` as if ``value``
    were nested ``level`` containers deep (its inner lines indented accordingly)."""
    if isinstance(value, str):
        return _enc_str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = "\n" + _INDENT * (level + 1)
        return ("{" + inner + ("," + inner).join(
            _enc_str(k) + ": " + dumps_indented(value[k], level + 1) for k in sorted(value))
            + "\n" + _INDENT * level + "}")
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = "\n" + _INDENT * (level + 1)
        return ("[" + inner + ("," + inner).join(dumps_indented(v, level + 1) for v in value)
                + "\n" + _INDENT * level + "]")
    if hasattr(value, "__dataclass_fields__"):  # pydantic dumps it as a dict of its fields
        return _dumps_dataclass(value, level)
    return _enc_str(str(value))  # default=str (dates: ISO format, as pydantic's JSON mode)


#: per (dataclass, level): (field name, the text before its value) in sorted order
_DATACLASS_LINES: dict[tuple[type, int], tuple[tuple[str, str], ...]] = {}


def _dumps_dataclass(value: Any, level: int) -> str:
    """A dataclass as ``dumps_indented`` of the dict of its fields, without building
    the dict: the replay writes tens of thousands of these, two levels deep."""
    lines = _DATACLASS_LINES.get((type(value), level))
    if lines is None:
        inner = "\n" + _INDENT * (level + 1)
        lines = _DATACLASS_LINES[(type(value), level)] = tuple(
            (name, inner + _enc_str(name) + ": ")
            for name in sorted(value.__dataclass_fields__))
    if not lines:
        return "{}"
    parts = []
    for name, lead in lines:
        v = getattr(value, name)
        # the common leaves inline; anything else through the general encoder
        if v.__class__ is str:
            parts.append(lead + _enc_str(v))
        elif v.__class__ is int:
            parts.append(lead + int.__repr__(v))
        else:
            parts.append(lead + dumps_indented(v, level + 1))
    return "{" + ",".join(parts) + "\n" + _INDENT * level + "}"


def echo_json_stream(head: dict[str, Any], key: str, items: Any, *, slice_size: int = 2000
                     ) -> None:
    """Print ``head`` with ``head[key] = items`` exactly as ``print_json`` would, writing
    ``items`` (a large list) a slice at a time instead of building the whole text."""
    keys = sorted({*head, key})
    parts: list[str] = []
    click.echo("{", nl=False)
    for i, k in enumerate(keys):
        lead = ("\n" if i == 0 else ",\n") + _INDENT + _enc_str(k) + ": "
        if k != key:
            click.echo(lead + dumps_indented(head[k], 1), nl=False)
            continue
        if not items:
            click.echo(lead + "[]", nl=False)
            continue
        click.echo(lead + "[", nl=False)
        sep = "\n" + _INDENT * 2
        for start in range(0, len(items), slice_size):
            parts = [sep + dumps_indented(v, 2) for v in items[start:start + slice_size]]
            click.echo(("," if start else "") + ",".join(parts), nl=False)
        click.echo("\n" + _INDENT + "]", nl=False)
    click.echo("\n}")


def print_error(e: Exception) -> None:
    click.secho(f"error: {e}", fg="red", err=True)
    for line in getattr(e, "details", []) or []:
        click.echo(f"  {line}", err=True)


def progress(total: int | None, description: str, *, quiet: bool = False) -> Any:
    """A rich progress bar on stderr, hidden when stderr is not a terminal or quiet."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    disable = quiet or not sys.stderr.isatty()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console(stderr=True), disable=disable,
                   transient=True)
    return bar, bar.add_task(description, total=total)
