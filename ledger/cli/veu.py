"""``ledger veu``: a verified end user's usage against its limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, lookup_options, open_ledger, require_rules
from ledger.cli.output import Col, console, print_fitted, print_json, tpp, tpp_h100


@click.group()
def veu() -> None:
    """Verified end users (VEU): usage against the universal shares or national caps."""


#: the list's columns; ``drop`` is the order they go when the terminal is narrow
LIST_COLUMNS = [
    Col("id"), Col("entity", drop=4, wrap=True), Col("kind", drop=3), Col("HQ", drop=5),
    Col("covers", wrap=True), Col("status"), Col("valid", drop=2),
    Col("shipped", "right"), Col("limit", "right", drop=1),
]


@veu.command("list")
@click.option("--country", "-c", type=COUNTRY, help="Only VEUs covering this country.")
@click.option("--as-of", type=DATE, help="Terms (as amended) and shipments as of this date "
                                         "[default: today].")
@lookup_options
@click.pass_context
def list_cmd(ctx: click.Context, country: str | None, as_of: dt.date | None,
             known_at: str | None, as_json: bool, wide: bool) -> None:
    """Every verified end user: entity, kind, covered countries, validity, what
    shipped under it (valid shipments only) and its limit.

    \b
    Narrow terminals drop limit, valid, kind, entity, HQ in that order.

    \b
    Examples:
      ledger veu list
      ledger veu list --country AE --as-of 2025-06-30 --json
    """
    from projections.lookups import veu_rows
    from projections.views import load_state

    ledger = open_ledger(ctx)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    day = as_of or dt.date.today()
    rows = veu_rows(state, day, country=country)
    if as_json:
        print_json({"as_of": day.isoformat(), "computed_at_position": state.position,
                    "veus": [r.model_dump(mode="json") for r in rows]})
        return
    from rich import box

    out = console()
    out.print(f"[bold]Verified end users{' covering ' + country if country else ''} as of "
              f"{day}[/bold] ({len(rows)})", soft_wrap=True)
    table_rows = []
    for r in rows:
        limit = (f"cap {tpp(r.cap_tpp)}" if r.cap_tpp is not None else
                 f"base {tpp(r.total_compute_tpp)}" if r.total_compute_tpp is not None
                 else "rule book's")
        table_rows.append([r.veu_id, r.entity, r.kind, r.headquarters_country,
                           " ".join(r.covered_countries), r.status,
                           f"{r.valid_from}..{r.valid_to or ''}", tpp(r.shipped_tpp), limit])
    print_fitted(out, LIST_COLUMNS, table_rows, wide=wide, box=box.SIMPLE_HEAD,
                 pad_edge=False)
    out.print(f"[dim]TPP; 'ledger veu status ID --as-of DATE' checks a VEU against its "
              f"limits; computed at recorded position {state.position}[/dim]", soft_wrap=True)


@veu.command("status")
@click.argument("veu_id")
@click.option("--as-of", type=DATE, required=True, help="Effective date of the status.")
@click.option("--rule", "rule_id", help="Apply this revision's VEU limits instead of the "
                                         "revision in force on --as-of.")
@click.option("--on-the-books", "books", is_flag=True,
              help="Use the revision on the books on --as-of (legal text).")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def status(ctx: click.Context, veu_id: str, as_of: dt.date, rule_id: str | None, books: bool,
           known_at: str | None, as_json: bool) -> None:
    """Usage of VEU_ID against each of its limits on --as-of, and any breach.

    \b
    Universal VEU: shares of the entity's whole deployed compute (the grant's
    total_compute_tpp, else everything shipped under the VEU, tier 1 and the US
    included): at most 7% in any single non-tier-1 country, at most 25% outside
    tier 1, at least 50% in the US for a US-headquartered entity.
    National VEU: cumulative caps by period (the rule book's, or the grant's
    cap_tpp). Exit code 4 when a limit is breached.

    \b
    Example:
      ledger veu status uveu-1 --as-of 2025-12-31 --rule ai-diffusion-2025
    """
    from projections.veu import veu_status
    from projections.views import load_state, select_rule

    if books and rule_id is not None:
        raise click.UsageError(f"--on-the-books and --rule {rule_id!r} both choose the "
                               "revision: give one")
    ledger = open_ledger(ctx)
    require_rules(ledger)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    rule = select_rule(state, as_of, rule_id, on_the_books=books)
    result = veu_status(state, veu_id, as_of, rule, known_at=position)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _print(result)
    if result.breaches:
        from ledger.cli.exitcodes import CHECK_FAILED

        ctx.exit(CHECK_FAILED)


def _pct(share: str | None) -> str:
    return "—" if share is None else f"{float(share) * 100:.2f}%"


def _print(s: Any) -> None:
    from rich import box
    from rich.table import Table

    out = console()
    out.print(f"[bold]{s.veu_id}[/bold] {s.entity}: {s.kind} VEU, headquartered in "
              f"{s.headquarters_country}, as of {s.as_of}, rule {s.rule or 'none'}"
              + ("" if s.valid_on_as_of else " [yellow](not valid on this date)[/yellow]"))
    out.print(f"  shipped under it  {tpp_h100(s.shipped_tpp)} in {s.shipments} shipments: "
              + ", ".join(f"{c} {tpp(t)}" for c, t in s.by_country.items()))
    if s.base_tpp is not None:
        out.print(f"  base of shares    {tpp_h100(s.base_tpp)} ({s.base_source})")
    if s.not_valid_shipments:
        out.print(f"  [yellow]{s.not_valid_shipments} shipments ({tpp(s.not_valid_tpp)} TPP) "
                  "name this VEU but it was not valid for them: not counted here[/yellow]")
    if s.note:
        out.print(f"  [dim]{s.note}[/dim]")
    if s.limits:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name, justify in [("limit", "left"), ("used TPP", "right"), ("share", "right"),
                              ("limit", "right"), ("remaining TPP", "right"),
                              ("status", "left")]:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for lim in s.limits:
            if lim.kind == "cap":
                bound = tpp(lim.cap_tpp)
                share = "—"
            else:
                sign = "≤" if lim.kind == "max-share" else "≥"
                bound = f"{sign} {_pct(lim.limit_share)}"
                share = _pct(lim.share)
            state = ("[bold red]BREACH[/bold red]" if lim.breach else "[green]ok[/green]"
                     if lim.assessable else "[yellow]not assessable[/yellow]")
            if lim.first_breach is not None:
                b = lim.first_breach
                state += f" from {b.date} {b.exporter_id}/{b.shipment_ref}"
            table.add_row(lim.scope if lim.kind != "max-share" or lim.scope.startswith("outside")
                          else f"single country {lim.scope}", tpp(lim.used_tpp), share,
                          bound, tpp(lim.remaining_tpp), state)
        out.print(table)
    out.print(f"[dim]computed at recorded position {s.computed_at_position}[/dim]")
