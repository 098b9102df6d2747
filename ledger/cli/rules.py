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
    from ledger.rulebook import bundled_rulebooks, parse_rulebook

    if not bundled and not files:
        raise click.UsageError("give --bundled or one or more rule book files")
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
    from rich.markup import escape

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
    unverified = set(book.unverified)

    def mark(name: str) -> str:
        return " (unverified)" if name in unverified else ""

    out.print(f"  published  {book.published}{mark('published')}   "
              f"effective {book.effective}{mark('effective')}")
    e = book.enforcement
    out.print(f"  enforced   from {e.begins or 'never'}{mark('enforcement')}"
              + (f", suspended {e.suspended}" if e.suspended else "")
              + (f", rescinded {e.rescinded}" if e.rescinded else ""))
    for inst in book.instruments:
        life = inst.lifecycle
        dates = ", ".join(f"{k} {getattr(life, k)}" + (" (unverified)" if k in life.unverified
                                                          else "")
                          for k in ("published", "effective", "compliance", "suspended",
                                    "rescinded") if getattr(life, k) is not None)
        parts = ", ".join(inst.parts.present()) or "no counting parts"
        out.print(escape(f"  instrument {inst.id} ({inst.kind}): {dates}; sets {parts}"),
                  soft_wrap=True)
    for gid, group in book.groups.items():
        changes = "; ".join(
            f"{c.date or 'undated'}: "
            + " ".join([f"+{x}" for x in c.add] + [f"-{x}" for x in c.remove])
            for c in group.changes)
        out.print(escape(f"  group {gid}{' (partial)' if group.partial else ''}: {changes}"),
                  soft_wrap=True)
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
@click.option("--on-the-books", "instruments", is_flag=True,
              help="Chart every instrument on the books, one row each (enforced "
                   "stretches solid, on the books but not enforced shaded), with the "
                   "country-group changes.")
@click.option("--json", "as_json", is_flag=True, help="Print the periods as JSON.")
@click.pass_context
def timeline(ctx: click.Context, start: dt.date | None, end: dt.date | None,
             known_at: str | None, width: int | None, instruments: bool,
             as_json: bool) -> None:
    """Which revision governed which period: enforced, and on the books.

    \b
    The enforced lane follows enforcement (what 'ledger quota' uses by default);
    the on-the-books lane follows the legal text ('ledger quota --on-the-books'):
    every instrument on the books on a date, enforced or not, e.g. the Diffusion
    rule throughout, with the H20 notice and the H200 rule beside it.
    Country-group changes (Cambodia leaving D:5 on 2026-02-03) are listed below.

    \b
    ledger rules timeline --on-the-books --from 2025-01-01 --to 2026-06-30
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
    if instruments:
        print_instruments(result, width=width)
    else:
        print_timeline(result, width=width)
    print_group_changes(result)


def _axis(first: dt.date, last: dt.date, width: int) -> tuple[str, str]:
    """The axis line (years at each 1 January) and its tick marks."""
    span = max(1, (last - first).days + 1)
    axis, marks = [" "] * width, [" "] * width
    year = first.year + 1
    while dt.date(year, 1, 1) <= last:
        c = min(width - 1, (dt.date(year, 1, 1) - first).days * width // span)
        marks[c] = "|"
        for i, ch in enumerate(str(year)):
            if c + i < width:
                axis[c + i] = ch
        year += 1
    return "".join(axis), "".join(marks)


def print_instruments(result: dict[str, Any], *, width: int | None) -> None:
    """One row per instrument: on the books (░), enforced (█), with its dates."""
    first: dt.date = result["from"]
    last: dt.date = result["to"]
    rows = [i for i in result["instruments"] if i["on_the_books"] is not None]
    out = console()
    if not rows:
        out.print("No instrument is on the books in this period (revisions published "
                  "before instruments existed: see 'ledger rules timeline').")
        return
    label_w = max(len(i["instrument"]) for i in rows)
    pad = " " * (2 + label_w + 2 + 24 + 2)
    if width is None:
        width = max(20, out.width - len(pad) - 1)
    span = max(1, (last - first).days + 1)

    def col(day: dt.date) -> int:
        return min(width - 1, (day - first).days * width // span)

    axis, marks = _axis(first, last, width)
    out.print(f"[bold]Instruments on the books[/bold] {first} .. {last}  "
              "(░ on the books, █ also enforced)")
    out.print(pad + axis)
    out.print(pad + marks)
    for i in rows:
        books, enforced = i["on_the_books"], i["enforced"]
        bar = [" "] * width
        for c in range(col(books["from"]), col(books["to"]) + 1):
            bar[c] = "░"
        if enforced is not None:
            for c in range(col(enforced["from"]), col(enforced["to"]) + 1):
                bar[c] = "█"
        until = "…" if books["open_ended"] else str(books["to"])
        when = f"{i['lifecycle']['effective']} → {until}"
        out.print(f"  {i['instrument']:<{label_w}}  {when:<24}  [cyan]{''.join(bar)}[/cyan]")
    for i in rows:
        life = i["lifecycle"]
        dates = [f"{k} {life[k]}" + (" (unverified)" if k in life["unverified"] else "")
                 for k in ("published", "effective", "compliance", "suspended", "rescinded")
                 if life[k] is not None]
        state = ("never enforced" if i["enforced"] is None else
                 f"enforced from {life['compliance'] or life['effective']}")
        out.print(f"  [bold]{i['instrument']}[/bold] ({i['kind']}): {', '.join(dates)}; "
                  f"{state}", soft_wrap=True)


def print_group_changes(result: dict[str, Any]) -> None:
    changes = result.get("group_changes", [])
    if not changes:
        return
    out = console()
    out.print("[bold]Country-group changes[/bold]")
    for c in changes:
        what = ", ".join([f"+{x}" for x in c["add"]] + [f"-{x}" for x in c["remove"]])
        out.print(f"  {c['date']}  {c['group']:<6} {what}  ({c['source']})", soft_wrap=True)


def _label(period: dict[str, Any]) -> str:
    """A period's label: the revision id, or for a composition on the books the
    instrument it adds to the period before ('+ h20-notice-2025')."""
    layers = period.get("instruments")
    if layers:
        return layers[0] if len(layers) == 1 else f"+ {layers[-1]}"
    return str(period["rule"] or "")


def print_timeline(result: dict[str, Any], *, width: int | None) -> None:
    """A Gantt chart: one row per period, its bar placed on a shared date axis."""
    first: dt.date = result["from"]
    last: dt.date = result["to"]
    ids = sorted({_label(p) for periods in result["lanes"].values() for p in periods})
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
    axis, marks = _axis(first, last, width)
    out.print(f"[bold]Rule timeline[/bold] {first} .. {last}")
    out.print(pad + axis)
    out.print(pad + marks)
    names = {"enforced": "enforced (in force)",
             "on-the-books": "on the books (legal text; + the instrument each period adds, "
                             "--on-the-books for all)"}
    for lane, periods in result["lanes"].items():
        out.print(f"[bold]{names[lane]}[/bold]")
        for p in periods:
            rid = _label(p)
            a, b = col(p["from"]), col(p["to"])
            bar = " " * a + "█" * max(1, b - a + 1)
            until = "…" if p.get("open_ended") else str(p["to"])
            when = f"{p['from']} → {until}"
            label = rid or "(none in force)"
            style = colour[rid] if rid else "dim"
            out.print(f"  {when:<23}  [{style}]{label:<{label_w}}[/{style}]  "
                      f"[{style}]{bar}[/{style}]")


@rules.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the check as JSON.")
@click.pass_context
def check(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Validate a draft rule FILE and show what it would change; writes nothing.

    \b
    FILE is a draft instrument (kind: draft, layered on the revision in force on
    its effective date, or on 'layers_on') or a whole rule book. It is validated
    exactly like 'ledger rules load' and against this ledger (the revisions it names
    in supersedes must be here). Then the changes against the revision in force on
    its effective date are listed, as 'ledger rules diff' would. Exit 0: valid;
    1: refused, with the field and the value.

    \b
    ledger rules check draft.yaml
    ledger replay --rule-file draft.yaml        # then replay it
    """
    from ledger.drafts import load_draft
    from ledger.rulebook import in_force
    from projections.rules import diff as compute
    from projections.views import load_state

    state = load_state(open_ledger(ctx))
    draft = load_draft(file.read_bytes(), str(file), state.rule_books())
    base_id = draft.layers_on
    base = state.rule(base_id) if base_id else in_force(state.rule_books(),
                                                         draft.book.effective)
    result = None if base is None else compute(base, draft.book)
    if as_json:
        print_json({"valid": True, "draft": draft.describe(),
                    "instruments": [i.id for i in draft.book.instruments],
                    "against": None if base is None else base.id, "diff": result})
        return
    click.echo(f"OK: {draft.line()}")
    if draft.book.instruments:
        click.echo("  instruments: " + ", ".join(i.id for i in draft.book.instruments))
    if result is None:
        click.echo(f"  no revision is in force on {draft.book.effective} to compare with")
        return
    click.echo(f"  what it would change against {base.id}, the revision in force on "  # type: ignore[union-attr]
               f"{draft.book.effective}:")
    print_diff(result)


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
