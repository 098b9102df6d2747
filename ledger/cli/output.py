"""Shared CLI output: TPP formatting, tables, JSON, errors.

TPP is shown as an integer with thousands separators and H100-equivalents beside it
(TPP / 15,832, one decimal); machine output (--json) carries integers only.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ledger.rulebook import H100_TPP


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
