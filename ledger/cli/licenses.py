"""``ledger licenses``: allocations (licenses and country-level allocations) and what
shipped under each."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, lookup_options, open_ledger
from ledger.cli.output import Col, console, print_fitted, print_json, tpp
from ledger.countries import country_name

#: the list's columns; ``drop`` is the order they go when the terminal is narrow
LIST_COLUMNS = [
    Col("id"), Col("country", drop=5), Col("holder", drop=4), Col("status"),
    Col("amount", "right"), Col("shipped", "right"), Col("remaining", "right"),
    Col("valid", drop=2), Col("revoked", drop=1), Col("shipments", "right", drop=3),
]

#: the draws of ``licenses show``
DRAW_COLUMNS = [
    Col("date"), Col("shipment"), Col("consignee", drop=3), Col("qty", "right", drop=2),
    Col("TPP", "right"), Col("shipped after", "right"), Col("counts", wrap=True),
    Col("pos", "right", drop=1),
]


def _as_of_default(as_of: dt.date | None) -> dt.date:
    return as_of or dt.date.today()


@click.group()
def licenses() -> None:
    """Licenses and country-level allocations: amount, shipped, remaining, expiry."""


@licenses.command("list")
@click.option("--country", "-c", type=COUNTRY, help="Only this destination country.")
@click.option("--holder", help="Only licenses held by this exporter id.")
@click.option("--as-of", type=DATE, help="Amounts and shipments as of this date "
                                         "[default: today].")
@lookup_options
@click.pass_context
def list_cmd(ctx: click.Context, country: str | None, holder: str | None,
             as_of: dt.date | None, known_at: str | None, as_json: bool, wide: bool) -> None:
    """Every allocation with its amount, what shipped under it and what is left.

    \b
    A license has a holder (an exporter); a country-level allocation (e.g. a
    government-to-government arrangement) raises the country's cap instead.
    Narrow terminals drop revoked, valid, shipments, holder, country in that order.

    \b
    Examples:
      ledger licenses list --country MX --as-of 2025-06-30
      ledger licenses list --holder acme --json
    """
    from projections.lookups import license_rows
    from projections.views import load_state

    ledger = open_ledger(ctx)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    day = _as_of_default(as_of)
    rows = license_rows(state, day, country=country, holder=holder)
    if as_json:
        print_json({"as_of": day.isoformat(), "computed_at_position": state.position,
                    "licenses": [r.model_dump(mode="json") for r in rows]})
        return
    out = console()
    what = " ".join(x for x in (country, f"held by {holder}" if holder else None) if x)
    out.print(f"[bold]Allocations{' ' + what if what else ''} as of {day}[/bold] "
              f"({len(rows)})", soft_wrap=True)
    print_fitted(out, LIST_COLUMNS, [_list_row(r) for r in rows], wide=wide,
                 box=_box(), pad_edge=False)
    out.print(f"[dim]TPP; computed at recorded position {state.position}[/dim]")


def _box() -> Any:
    from rich import box

    return box.SIMPLE_HEAD


def _valid(r: Any) -> str:
    return f"{r.valid_from}..{r.valid_to or ''}"


def _list_row(r: Any) -> list[str]:
    status = {"active": "[green]active[/green]", "revoked": "[red]revoked[/red]"}.get(
        r.status, r.status)
    remaining = tpp(r.remaining_tpp)
    if r.remaining_tpp < 0:
        remaining = f"[bold red]{remaining}[/bold red]"
    return [r.allocation_id, r.country, r.holder or "(country)", status, tpp(r.amount_tpp),
            tpp(r.shipped_tpp), remaining, _valid(r), str(r.revoked_on or ""),
            str(r.shipments)]


@licenses.command("show")
@click.argument("allocation_id")
@click.option("--as-of", type=DATE, help="Amount and shipments as of this date "
                                         "[default: today].")
@lookup_options
@click.pass_context
def show_cmd(ctx: click.Context, allocation_id: str, as_of: dt.date | None,
             known_at: str | None, as_json: bool, wide: bool) -> None:
    """One allocation: amount (and each change), shipped, remaining, expiry,
    revocation, and every shipment drawn on it.

    \b
    A shipment naming the license while it was not valid for it (another holder or
    country, outside its dates, after revocation) is listed with the reason; it
    counts against the country cap instead (license-invalid).

    \b
    Example:
      ledger licenses show LIC-MX-ACME-1 --as-of 2025-12-31
    """
    from ledger.errors import NotFound
    from projections.lookups import license_detail
    from projections.views import load_state

    ledger = open_ledger(ctx)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    day = _as_of_default(as_of)
    detail = license_detail(state, allocation_id, day)
    if detail is None:
        known = ", ".join(sorted(state.allocations)[:20]) or "none recorded"
        raise NotFound(f"allocation {allocation_id!r} is not in the ledger (known: {known})")
    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    _print_detail(detail, wide=wide)


def _print_detail(d: Any, *, wide: bool) -> None:
    lic = d.license
    out = console()
    kind = (f"license held by {lic.holder}" if lic.kind == "license"
            else "country-level allocation (raises the cap)")
    out.print(f"[bold]{lic.allocation_id}[/bold]: {kind}, {country_name(lic.country)} "
              f"({lic.country}), as of {lic.as_of}", soft_wrap=True)
    if lic.reference:
        out.print(f"  reference  {lic.reference}", soft_wrap=True)
    changes = "".join(f"; {amount:,} from {day} (position {pos})"
                      for day, pos, amount in d.amounts[1:])
    out.print(f"  amount     {tpp(lic.amount_tpp)} TPP (granted {d.amounts[0][2]:,}{changes})",
              soft_wrap=True)
    out.print(f"  shipped    {tpp(lic.shipped_tpp)} TPP in {lic.shipments} "
              f"shipment{'' if lic.shipments == 1 else 's'}")
    left = tpp(lic.remaining_tpp)
    if lic.remaining_tpp < 0:
        left = f"[bold red]{left}[/bold red] (shipped past its amount: license-excess)"
    out.print(f"  remaining  {left} TPP")
    out.print(f"  valid      {lic.valid_from} .. {lic.valid_to or 'no end date'}  "
              f"status {lic.status}")
    out.print(f"  revoked    {lic.revoked_on or 'no'}")
    rows = []
    for w in d.draws:
        counts = ("[dim]voided[/dim]" if w.voided else "drawn" if w.valid
                  else f"[yellow]not valid: {w.reason}[/yellow]")
        if w.excess_tpp:
            counts += f" [red]({w.excess_tpp:,} past its amount)[/red]"
        rows.append([str(w.date), f"{w.exporter_id}/{w.shipment_ref}", w.consignee_id,
                     f"{w.quantity:,}", tpp(w.tpp), tpp(w.shipped_after_tpp), counts,
                     str(w.position)])
    if rows:
        out.print(f"Shipments naming {lic.allocation_id} ({len(rows)})")
        print_fitted(out, DRAW_COLUMNS, rows, wide=wide, box=_box(), pad_edge=False)
    else:
        out.print("  no shipment names it")
    out.print(f"[dim]computed at recorded position {d.computed_at_position}; rerun with "
              f"--known-at {d.computed_at_position} to reproduce[/dim]")
