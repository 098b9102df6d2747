"""``ledger rules``: load, list and show rule revisions."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.cli.common import open_ledger
from ledger.cli.output import console, print_json, tpp_h100


@click.group()
def rules() -> None:
    """Rule revisions: load the bundled ones or your own, list them, show one."""


@rules.command("load")
@click.option("--bundled", is_flag=True, help="Load every bundled rule revision.")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def load(ctx: click.Context, bundled: bool, files: tuple[Path, ...]) -> None:
    """Publish rule revisions (YAML or JSON rule books) into the ledger.

    Re-loading an identical revision is a no-op; a different document under an
    existing id is refused.
    """
    from ledger.application import BatchRejected
    from ledger.commands import PublishRuleRevision
    from ledger.errors import ValidationError
    from ledger.rulebook import bundled_rulebooks, parse_rulebook

    if not bundled and not files:
        raise ValidationError("give --bundled or one or more rule book files",
                              field="files", value=None)
    books = list(bundled_rulebooks()) if bundled else []
    books += [parse_rulebook(f.read_text(encoding="utf-8"), origin=str(f)) for f in files]
    ledger = open_ledger(ctx)
    try:
        result = ledger.submit([PublishRuleRevision(document=b) for b in books])
    except BatchRejected as e:
        e.details = [f"{books[o.index].id}: {o.error}" for o in e.errors_only()]  # type: ignore[attr-defined]
        raise
    for o in result.outcomes:
        state = "already loaded" if o.duplicate else "loaded"
        click.echo(f"{books[o.index].id}: {state}")


@rules.command("list")
@click.option("--known-at", help="Only revisions recorded up to this position or ISO time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, known_at: str | None, as_json: bool) -> None:
    """The rule revisions in the ledger, with their enforcement dates."""
    from projections.views import load_state

    ledger = open_ledger(ctx)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    books = state.rule_books()
    if as_json:
        print_json([{"id": b.id, "title": b.title, "citation": b.citation,
                     "published": b.published, "effective": b.effective,
                     "enforcement": b.enforcement.model_dump(mode="json")} for b in books])
        return
    from rich.table import Table

    table = Table(title="Rule revisions in the ledger", title_justify="left")
    for col in ("id", "published", "effective", "enforced from", "suspended", "rescinded"):
        table.add_column(col, no_wrap=True)
    for b in books:
        e = b.enforcement
        table.add_row(b.id, str(b.published), str(b.effective), str(e.begins or "never"),
                      str(e.suspended or ""), str(e.rescinded or ""))
    console().print(table)
    if not books:
        click.echo("No rule revisions yet: run 'ledger rules load --bundled'.")
    at = state.position if position is None else min(position, state.position)
    click.echo(f"computed at recorded position {at}; rerun with --known-at {at} to reproduce")


@rules.command("show")
@click.argument("rule_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole rule book as JSON.")
@click.pass_context
def show(ctx: click.Context, rule_id: str, as_json: bool) -> None:
    """One rule revision: dates, tiers, caps, exceptions and sources."""
    from ledger.errors import UnknownRule
    from ledger.rulebook import bundled_rulebook
    from projections.views import load_state

    book = load_state(open_ledger(ctx)).rule(rule_id)
    if book is None:
        try:
            book = bundled_rulebook(rule_id)
        except UnknownRule:
            raise UnknownRule(f"rule {rule_id!r} is neither in the ledger nor bundled") from None
    if as_json:
        print_json(book.model_dump(mode="json"))
        return
    out = console()
    out.print(f"[bold]{book.id}[/bold]: {book.title}")
    out.print(f"  citation   {book.citation}")
    out.print(f"  published  {book.published}   effective {book.effective}")
    e = book.enforcement
    out.print(f"  enforced   from {e.begins or 'never'}"
              + (f", suspended {e.suspended}" if e.suspended else "")
              + (f", rescinded {e.rescinded}" if e.rescinded else ""))
    if book.tiers is not None:
        by_tier: dict[int, list[str]] = {}
        for code, tier in sorted(book.tiers.countries.items()):
            by_tier.setdefault(tier, []).append(code)
        for tier_no, codes in sorted(by_tier.items()):
            out.print(f"  tier {tier_no}     {' '.join(codes)}")
        out.print(f"  default    tier {book.tiers.default}")
    if book.caps.tier2 is not None:
        cap = book.caps.tier2
        out.print(f"  tier-2 cap {tpp_h100(cap.tpp)} for {cap.period.start}..{cap.period.end}"
                  + (" (secondary)" if cap.secondary else ""))
    if book.caps.tier3_tpp is not None:
        out.print(f"  tier-3 cap {tpp_h100(book.caps.tier3_tpp)}")
    if book.exceptions.lpp is not None:
        out.print(f"  LPP limit  {tpp_h100(book.exceptions.lpp.limit_tpp_per_consignee_year)} "
                  "per consignee per calendar year")
    out.print("  sources:")
    for s in book.sources:
        out.print(f"    - {s.title}" + (f" ({s.citation})" if s.citation else ""))
    for n in book.notes:
        out.print(f"  note: {n}")
