"""Shared CLI output: TPP formatting, tables, JSON, errors.

TPP is shown as an integer with thousands separators and H100-equivalents beside it
(TPP / 15,832, one decimal); machine output (--json) carries integers only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _enc_str  # the C encoder
from typing import Any

import click

from ledger.units import H100_TPP


#: how a position's status is shown in every table
STATUS_STYLE = {"over-cap": "bold red", "within-cap": "green", "no-cap": "dim",
                "outside-cap-period": "yellow"}


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


#: width of the output when it is not a terminal and $COLUMNS is not set (logs, pipes)
PIPE_WIDTH = 150


def console(stderr: bool = False) -> Any:
    """A rich console as wide as the terminal; when not a terminal (pipes, files, CI
    logs) as wide as $COLUMNS, else 150 columns instead of rich's 80."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH
    class QuietConsole(Console):
        def on_broken_pipe(self) -> None:
            # the reader stopped (``ledger ... | head``): what it wanted was printed;
            # rich would exit 1 here, the ledger ends quietly with 0 (exitcodes.OK)
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(0)

    return QuietConsole(stderr=stderr, highlight=False, soft_wrap=False, width=width)


# --- tables that fit -----------------------------------------------------------------
#
# A table is declared as columns, each with the order in which it is dropped when the
# terminal is too narrow (``drop``: 1 first, 0 never) and whether its text may wrap
# (never a number). ``fit_table`` drops columns in that order until what is left fits
# without cutting a cell; ``--wide`` keeps every column (the terminal then wraps long
# lines, but no number is ever cut or abbreviated by the table itself).


@dataclass(frozen=True)
class Col:
    name: str
    justify: str = "left"
    #: 1 is dropped first when the table does not fit; 0 is never dropped
    drop: int = 0
    #: the cells are text that may wrap onto several lines (never numbers)
    wrap: bool = False


def _cell_len(text: str) -> int:
    from rich.text import Text

    return max((Text.from_markup(line).cell_len for line in text.split("\n")), default=0)


def _longest_word(text: str) -> int:
    from rich.text import Text

    plain = Text.from_markup(text).plain
    return max((len(w) for w in plain.split()), default=0)


def _build(cols: list[Col], rows: list[list[str]], keep: list[int],
           sections: list[bool] | None = None, **table_kw: Any) -> Any:
    from rich.table import Table

    table = Table(**table_kw)
    for i in keep:
        c = cols[i]
        # a wrapping column never narrower than its longest word: words stay whole
        least = max([_longest_word(c.name), *(_longest_word(r[i]) for r in rows)]) \
            if c.wrap else None
        table.add_column(c.name, justify=c.justify,  # type: ignore[arg-type]
                         no_wrap=not c.wrap, overflow="fold", min_width=least)
    for n, row in enumerate(rows):
        table.add_row(*[row[i] for i in keep],
                      end_section=bool(sections and sections[n]))
    return table


def _natural_width(table: Any) -> int:
    import io

    from rich.console import Console

    probe = Console(width=100_000, file=io.StringIO(), highlight=False, soft_wrap=False)
    with probe.capture() as cap:
        probe.print(table)
    return max((len(line) for line in cap.get().splitlines()), default=0)


def fit_table(cols: list[Col], rows: list[list[str]], *, width: int, wide: bool = False,
              sections: list[bool] | None = None, **table_kw: Any
              ) -> tuple[Any, int, list[str]]:
    """(table, the width to print it at, the names of the dropped columns).

    Columns are dropped in their ``drop`` order until the table fits ``width`` with
    every unwrappable cell whole; wrappable columns may then wrap (never inside a
    word). With ``wide`` the table keeps its natural width; when nothing more can be
    dropped it is printed at the least width that cuts nothing. ``sections`` marks
    the rows after which a section line (or blank line) goes."""
    keep = list(range(len(cols)))
    order = sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: cols[i].drop)
    while True:
        table = _build(cols, rows, keep, sections, **table_kw)
        natural = _natural_width(table)
        shrink = sum(max(_cell_len(c.name), *(_cell_len(r[i]) for r in rows))
                     - max(_longest_word(c.name), *(_longest_word(r[i]) for r in rows))
                     for i, c in ((i, cols[i]) for i in keep) if c.wrap and rows)
        minimum = natural - shrink
        if wide or not order or minimum <= width:
            at = natural if wide else max(minimum, min(natural, width))
            return table, at, [cols[i].name for i in range(len(cols)) if i not in keep]
        keep.remove(order.pop(0))


def print_fitted(out: Any, cols: list[Col], rows: list[list[str]], *, wide: bool = False,
                 note_dropped: bool = True, sections: list[bool] | None = None,
                 **table_kw: Any) -> list[str]:
    """Print a table fitted to ``out``'s width; says which columns were left out (and
    that --wide shows them). Returns the dropped column names."""
    table, width, dropped = fit_table(cols, rows, width=out.width, wide=wide,
                                      sections=sections, **table_kw)
    saved = out.width
    out.width = max(saved, width)
    out.print(table)
    out.width = saved
    if dropped and note_dropped:
        out.print(f"[dim]not shown at {saved} columns: {', '.join(dropped)} "
                  "(--wide shows every column)[/dim]", soft_wrap=True)
    return dropped


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


#: ``encode(items, start, stop)``: the texts of ``items[start:stop]``, each exactly
#: ``dumps_indented(item, 2)`` (a faster encoder for one kind of items)
SliceEncoder = Callable[[Any, int, int], list[str]]


def echo_json_stream(head: dict[str, Any], key: str, items: Any, *, slice_size: int = 2000,
                     encode: SliceEncoder | None = None) -> None:
    """Print ``head`` with ``head[key] = items`` exactly as ``print_json`` would, writing
    ``items`` (a large list) a slice at a time instead of building the whole text."""
    keys = sorted({*head, key})
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
        out = sys.stdout
        for start in range(0, len(items), slice_size):
            texts = (encode(items, start, start + slice_size) if encode is not None
                     else [dumps_indented(v, 2) for v in items[start:start + slice_size]])
            text = ("," if start else "") + sep + ("," + sep).join(texts)
            # click.echo would only strip ANSI escapes (off a terminal), which encoded
            # JSON cannot hold (ESC is written \u001b); its regex over every slice cost
            # ~0.2 s for a million-shipment replay
            if "\x1b" in text:
                click.echo(text, nl=False)
            else:
                out.write(text)
                out.flush()  # as click.echo does: its stream may be another wrapper
        click.echo("\n" + _INDENT + "]", nl=False)
    click.echo("\n}")


def print_error(e: Exception) -> None:
    click.secho(f"error: {e}", fg="red", err=True)
    for line in getattr(e, "details", []) or []:
        click.echo(f"  {line}", err=True)


def print_error_json(code: str, message: str, *, exit_code: int, field: str | None = None,
                     value: Any = None, details: list[str] | None = None) -> None:
    """An error under ``--json``: one JSON object on stderr (stdout stays parseable),
    ``{"error": {"code", "message", "field", "value", "details"}, "exit_code"}``."""
    click.echo(json.dumps({"error": {"code": code, "message": message, "field": field,
                                     "value": value, "details": details or []},
                           "exit_code": exit_code}, sort_keys=True, default=str), err=True)


def progress(total: int | None, description: str, *, quiet: bool = False) -> Any:
    """A rich progress bar on stderr, hidden when stderr is not a terminal or quiet."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    disable = quiet or not sys.stderr.isatty()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=console(stderr=True), disable=disable,
                   transient=True)
    return bar, bar.add_task(description, total=total)
