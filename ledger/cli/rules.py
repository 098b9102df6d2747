"""``ledger rules``: load, list, show, diff rule revisions and chart their timeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from ledger.cli.common import DATE, open_ledger
from ledger.cli.output import console, print_json, tpp_h100


@click.group()
def rules() -> None:
    """Rule revisions: load, list, show one, diff two, chart the timeline."""


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
    ledger = open_ledger(ctx, create=True)
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


def _book(ctx: click.Context, rule_id: str, state: Any) -> Any:
    """A revision from the ledger, else a bundled one; UnknownRule names the id."""
    from ledger.errors import UnknownRule
    from ledger.rulebook import bundled_rulebook

    book = state.rule(rule_id)
    if book is None:
        try:
            book = bundled_rulebook(rule_id)
        except UnknownRule:
            known = ", ".join(b.id for b in state.rule_books()) or "none loaded"
            raise UnknownRule(f"rule {rule_id!r} is neither in the ledger (known: {known}) "
                              "nor bundled") from None
    return book


@rules.command("timeline")
@click.option("--from", "start", type=DATE, help="First day shown (default: the first "
                                                  "date of any revision).")
@click.option("--to", "end", type=DATE, help="Last day shown (default: a year after the "
                                              "last date of any revision).")
@click.option("--known-at", help="Only revisions recorded up to this position or ISO time.")
@click.option("--width", type=click.IntRange(20, 400),
              help="Width of the chart's bars, in characters (default: what the "
                   "terminal leaves, at least 20).")
@click.option("--json", "as_json", is_flag=True, help="Print the periods as JSON.")
@click.pass_context
def timeline(ctx: click.Context, start: dt.date | None, end: dt.date | None,
             known_at: str | None, width: int | None, as_json: bool) -> None:
    """Which revision governed which period: enforced, and on the books.

    \b
    The enforced lane follows enforcement (what 'ledger quota' uses by default);
    the on-the-books lane follows the legal text ('ledger quota --on-the-books'):
    a revision whose enforcement was suspended but never rescinded stays on the
    books, e.g. ai-diffusion-2025 after the non-enforcement of 2025-05-13.
    """
    from projections.rules import timeline as compute
    from projections.views import load_state

    ledger = open_ledger(ctx)
    state = load_state(ledger, ledger.resolve_known_at(known_at))
    books = state.rule_books()
    result = compute(books, start, end)
    if as_json:
        print_json(result)
        return
    if result["from"] is None:
        click.echo("No rule revisions yet: run 'ledger rules load --bundled'.")
        return
    print_timeline(result, width=width)


def print_timeline(result: dict[str, Any], *, width: int | None) -> None:
    """A Gantt chart: one row per period, its bar placed on a shared date axis."""
    first: dt.date = result["from"]
    last: dt.date = result["to"]
    ids = sorted({p["rule"] or "" for periods in result["lanes"].values() for p in periods})
    label_w = max(len(r) for r in [*ids, "(none in force)"])
    pad = " " * (2 + 23 + 2 + label_w + 2)
    out = console()
    if width is None:
        width = max(20, out.width - len(pad) - 1)
    span = max(1, (last - first).days + 1)

    def col(day: dt.date) -> int:
        return min(width - 1, (day - first).days * width // span)

    palette = ["cyan", "magenta", "yellow", "green", "blue", "red", "bright_cyan",
               "bright_magenta", "bright_yellow", "bright_green"]
    colour = {rid: palette[i % len(palette)] for i, rid in enumerate(ids)}
    # axis: a tick at each 1 January in range
    axis, marks = [" "] * width, [" "] * width
    year = first.year + 1
    while dt.date(year, 1, 1) <= last:
        c = col(dt.date(year, 1, 1))
        marks[c] = "|"
        for i, ch in enumerate(str(year)):
            if c + i < width:
                axis[c + i] = ch
        year += 1
    out.print(f"[bold]Rule timeline[/bold] {first} .. {last}")
    out.print(pad + "".join(axis))
    out.print(pad + "".join(marks))
    names = {"enforced": "enforced (in force)", "on-the-books": "on the books (legal text)"}
    for lane, periods in result["lanes"].items():
        out.print(f"[bold]{names[lane]}[/bold]")
        for p in periods:
            rid = p["rule"] or ""
            a, b = col(p["from"]), col(p["to"])
            bar = " " * a + "█" * max(1, b - a + 1)
            until = "…" if p.get("open_ended") else str(p["to"])
            when = f"{p['from']} → {until}"
            label = rid or "(none in force)"
            style = colour[rid] if rid else "dim"
            out.print(f"  {when:<23}  [{style}]{label:<{label_w}}[/{style}]  "
                      f"[{style}]{bar}[/{style}]")


@rules.command("diff")
@click.argument("rule_a")
@click.argument("rule_b")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
@click.pass_context
def diff(ctx: click.Context, rule_a: str, rule_b: str, as_json: bool) -> None:
    """What changes from revision RULE_A to revision RULE_B.

    Countries that move tier, caps, exception limits, thresholds, VEU limits,
    license requirements, product rules and dates. Revisions come from the ledger,
    else from the bundled rule books.
    """
    from projections.rules import diff as compute
    from projections.views import load_state

    state = load_state(open_ledger(ctx))
    result = compute(_book(ctx, rule_a, state), _book(ctx, rule_b, state))
    if as_json:
        print_json(result)
        return
    print_diff(result)


def _v(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list) and len(value) == 2 and all(isinstance(x, dt.date)
                                                           for x in value):
        return f"{value[0]}..{value[1]}"
    return str(value)


def _national(caps: list[dict[str, Any]]) -> str:
    return ", ".join(f"{c['h100_equivalents']:,} H100e through {c['through']}"
                     for c in caps) or "none"


def print_diff(result: dict[str, Any]) -> None:
    out = console()
    out.print(f"[bold]{result['from']} → {result['to']}[/bold]")
    sections = [k for k in result if k not in ("from", "to", "tier_moves_summary")]
    if not sections:
        out.print("  no differences")
        return
    for name, changes in result.get("dates", {}).items():
        out.print(f"  {name.replace('_', ' '):<34} {_v(changes['from'])} → {_v(changes['to'])}")
    if "tier_moves" in result:
        out.print("  [bold]countries that move tier[/bold] "
                  + ", ".join(f"{k.replace('->', ' → ')}: {n}"
                              for k, n in result["tier_moves_summary"].items()))
        groups: dict[str, list[str]] = {}
        for m in result["tier_moves"]:
            groups.setdefault(f"{m['from'] or 'none'} → {m['to'] or 'none'}", []).append(
                m["country"])
        for k, cs in groups.items():
            shown = " ".join(cs[:40]) + (f" … (+{len(cs) - 40})" if len(cs) > 40 else "")
            out.print(f"    tier {k}: {shown}")
    for section in ("caps", "exceptions", "veu"):
        for name, changes in result.get(section, {}).items():
            if name == "national_caps":
                out.print(f"  {'national VEU caps':<34} {_national(changes['from'])} → "
                          f"{_national(changes['to'])}")
                continue
            out.print(f"  {name.replace('_', ' '):<34} {_v(changes['from'])} → "
                      f"{_v(changes['to'])}")
    for section in ("thresholds", "license_required", "product_rules"):
        if section in result:
            ch = result[section]
            out.print(f"  {section.replace('_', ' ')}: "
                      + "; ".join([f"- {x}" for x in ch["removed"]]
                                  + [f"+ {x}" for x in ch["added"]]))
