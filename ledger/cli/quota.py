"""``ledger quota``: a country's quota position on a date, as known at a moment."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, open_ledger
from ledger.cli.output import console, h100, print_json, tpp, tpp_h100
from ledger.countries import country_name


@click.command()
@click.option("--country", "-c", type=COUNTRY, help="ISO 3166-1 alpha-2 code, e.g. MX.")
@click.option("--all", "all_", is_flag=True, help="Every country with activity.")
@click.option("--tier", type=click.IntRange(1, 3), help="With --all: only this tier.")
@click.option("--as-of", type=DATE, required=True, help="Effective date of the position.")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--rule", "rule_id", help="Apply this rule revision to every date "
                                         "(counterfactual) instead of the one in force.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def quota(ctx: click.Context, country: str | None, all_: bool, tier: int | None,
          as_of: dt.date, known_at: str | None, rule_id: str | None, as_json: bool) -> None:
    """Cap, committed, remaining and status of a country's quota on a date.

    \b
    Without --rule the revision in force on --as-of applies; with --rule that
    revision applies (what-if). --known-at answers as the ledger stood at a past
    recorded position or time.

    \b
    Examples:
      ledger quota --country MX --as-of 2025-06-30
      ledger quota --country MX --as-of 2025-06-30 --rule ai-diffusion-2025 --json
      ledger quota --all --as-of 2025-06-30 --known-at 2025-07-01T00:00:00Z
    """
    from ledger.errors import ValidationError
    from projections.views import readmodel_quota, readmodel_quota_all

    if (country is None) == (not all_):
        raise ValidationError("give exactly one of --country CC or --all", field="country",
                              value=country)
    ledger = open_ledger(ctx)
    position = ledger.resolve_known_at(known_at)
    # answered from the read model (caught up first), not by replaying the log
    if country is not None:
        p = readmodel_quota(ledger, country, as_of, rule_id=rule_id, known_at=position)
        if as_json:
            print_json(p.model_dump(mode="json", exclude_none=False, exclude={"contributions"}))
        else:
            _print_position(p)
        return
    positions = readmodel_quota_all(ledger, as_of, rule_id=rule_id, known_at=position, tier=tier)
    if as_json:
        print_json([p.model_dump(mode="json", exclude={"contributions"}) for p in positions])
    else:
        print_table(positions, title=f"Quota positions as of {as_of}")


def _print_position(p: Any) -> None:
    out = console()
    rule = p.rule or "no rule revision in force"
    known = "everything recorded" if p.known_at is None else f"known at position {p.known_at}"
    out.print(f"[bold]{country_name(p.country)} ({p.country})[/bold] as of {p.as_of}, "
              f"rule {rule}, tier {p.tier if p.tier is not None else '—'}, {known}")
    out.print(f"  cap        {tpp_h100(p.cap_tpp)}")
    out.print(f"  committed  {tpp_h100(p.committed_tpp)}")
    out.print(f"  remaining  {tpp_h100(p.remaining_tpp) if p.cap_tpp is not None else '—'}")
    style = {"over-cap": "bold red", "within-cap": "green", "no-cap": "dim"}[p.status]
    status = p.status
    if p.status == "over-cap":
        status += f" by {tpp(-p.remaining_tpp)} TPP"
    out.print(f"  status     [{style}]{status}[/{style}]")
    if p.first_breach is not None:
        b = p.first_breach
        who = (f"shipment {b.exporter_id}/{b.shipment_ref}" if b.type == "shipment"
               else f"{b.type} {b.allocation_id}")
        out.print(f"  first breach {b.date}: {who} (committed {tpp(b.committed_tpp)} > "
                  f"cap {tpp(b.cap_tpp)})")
    for flag, total in p.flagged.items():
        out.print(f"  flagged {flag}: {total.count} shipments, {tpp_h100(total.tpp)}")
    out.print(f"[dim]computed at recorded position {p.computed_at_position}; rerun with "
              f"--known-at {p.computed_at_position} to reproduce[/dim]")


def print_table(positions: list[Any], *, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in [("country", "left"), ("tier", "right"), ("rule", "left"),
                          ("cap TPP", "right"), ("committed TPP", "right"),
                          ("H100e", "right"), ("remaining TPP", "right"),
                          ("status", "left"), ("first breach", "left"),
                          ("flagged", "left")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in positions:
        style = {"over-cap": "bold red", "within-cap": "green", "no-cap": "dim"}[p.status]
        breach = ""
        if p.first_breach is not None:
            b = p.first_breach
            breach = f"{b.date} {b.exporter_id}/{b.shipment_ref}" if b.type == "shipment" \
                else f"{b.date} {b.allocation_id}"
        flags = ", ".join(f"{k} {v.count}" for k, v in p.flagged.items())
        table.add_row(p.country, str(p.tier or "—"), p.rule or "—", tpp(p.cap_tpp),
                      tpp(p.committed_tpp), h100(p.committed_tpp), tpp(p.remaining_tpp),
                      f"[{style}]{p.status}[/{style}]", breach, flags)
    out = console()
    out.print(table)
    if positions:
        out.print(f"[dim]computed at recorded position {positions[0].computed_at_position}[/dim]")
