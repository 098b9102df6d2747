"""``ledger projections``: build, catch up and inspect the read models.

``rebuild`` drops the read-model tables and folds the whole log again (progress bar);
``catch-up`` folds what was recorded since the last run, once or, with ``--follow``,
forever (the deploy's catch-up service); ``status`` shows how far behind they are.
Queries catch up by themselves, so these are for operators, not a required step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ledger.cli.common import open_ledger
from ledger.cli.output import print_json, progress


def _read_model(ctx: click.Context) -> Any:
    from projections.readmodel import ReadModel

    return ReadModel(open_ledger(ctx))


@click.group()
def projections() -> None:
    """Read models that answer queries without replaying the log."""


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """The CLI's progress bar (``output.progress``) around a piece of work: yields the
    ``progress(done, total)`` callback to hand to it (None when ``quiet``)."""
    if quiet:
        yield None
        return
    bar, task = progress(None, label)
    with bar:
        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


INDEX_HELP = ("build the position index for every country under every rule revision, "
              "so no query pays for its (revision, country) pair")


def build_index(rm: Any, *, quiet: bool) -> dict[str, Any]:
    """Catch the read models up and build every (revision, country) pair of the
    position index; returns what was done (``index_line`` says it)."""
    from projections.position_index import PositionIndex

    start = time.perf_counter()
    with progress_bar("folding events", quiet) as report:
        folded = rm.catch_up(progress=report)
    with progress_bar("building the position index (countries)", quiet) as report:
        pairs = PositionIndex(rm).refresh_all(progress=report)
    return {"pairs": pairs, "events_folded": folded,
            "seconds": round(time.perf_counter() - start, 1)}


def index_line(built: dict[str, Any]) -> str:
    folded = built["events_folded"]
    return (f"position index built: {built['pairs']} (revision, country) pairs in "
            f"{built['seconds']:.1f} s" + (f" ({folded} events folded first)"
                                           if folded else ""))


@projections.command()
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--index/--no-index", default=True, show_default=True,
              help=f"Then {INDEX_HELP} (--no-index: each is built by its first query).")
@click.pass_context
def rebuild(ctx: click.Context, quiet: bool, index: bool) -> None:
    """Drop the read models and fold the whole event log again."""
    rm = _read_model(ctx)
    start = time.perf_counter()
    with progress_bar("folding events", quiet) as report:
        folded = rm.rebuild(progress=report)
    took = time.perf_counter() - start
    click.echo(f"read models rebuilt: {folded} events folded in {took:.1f} s, "
               f"at position {rm.position()}")
    if index:
        click.echo(index_line(build_index(rm, quiet=quiet)))


@projections.command("catch-up")
@click.option("--follow", is_flag=True, help="Keep polling for new events until stopped.")
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=1.0,
              show_default=True, help="With --follow: seconds between polls.")
@click.pass_context
def catch_up(ctx: click.Context, follow: bool, interval: float) -> None:
    """Fold the events recorded since the read models' position, and recompute the
    position index's stored days that the new events changed (for the countries and
    revisions queries have asked about), so the next query reads them."""
    from projections.position_index import PositionIndex

    rm = _read_model(ctx)
    index = PositionIndex(rm)
    while True:
        folded = rm.catch_up()
        if folded:
            index.refresh_stale()
        if folded or not follow:
            click.echo(f"folded {folded} events, read models at position {rm.position()}")
        if not follow:
            return
        time.sleep(interval)


@projections.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The read models' position beside the log's head."""
    rm = _read_model(ctx)
    position, head = rm.position(), rm.ledger.max_position()
    # positions are strictly increasing but not gap-free on PostgreSQL (a rolled-back
    # insert leaves a hole), so "behind" counts the events, not the positions
    behind = rm.ledger.count_events(after=position)
    if as_json:
        print_json({"db": rm.ledger.shown_url, "position": position, "head": head,
                    "behind": behind})
    else:
        click.echo(f"{rm.ledger.shown_url}: read models at position {position}, log head "
                   f"{head}, {behind} events behind")
