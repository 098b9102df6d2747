"""``ledger history``: the story of a country's quota, item by item, with running totals."""

from __future__ import annotations

import datetime as dt

import click

from ledger.cli.common import COUNTRY, DATE, open_ledger, require_rules
from ledger.cli.output import console, print_json, tpp


@click.command()
@click.option("--country", "-c", type=COUNTRY, required=True, help="ISO 3166-1 alpha-2 code.")
@click.option("--from", "from_date", type=DATE, help="First effective date listed.")
@click.option("--to", "to_date", type=DATE,
              help="Last effective date (default: the latest effective date recorded).")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--rule", "rule_id", help="Count under this rule revision instead of the one "
                                         "in force on --to.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def history(ctx: click.Context, country: str, from_date: dt.date | None,
            to_date: dt.date | None, known_at: str | None, rule_id: str | None,
            as_json: bool) -> None:
    """Every event that touched a country's position, in effective-date order.

    \b
    Shows the running committed amount against the cap and marks events that
    arrived LATE (recorded after an event with a later effective date).

    \b
    Examples:
      ledger history --country MX --rule ai-diffusion-2025
      ledger history --country MX --from 2025-04-01 --to 2025-06-30 --known-at 20 --json
    """
    from ledger.errors import ValidationError
    from projections.history import country_history, last_change_date
    from projections.views import load_state, select_rule

    ledger = open_ledger(ctx)
    require_rules(ledger)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    if to_date is None:
        # where 'ledger quota' as of that date stands after everything known
        to_date = last_change_date(state) or dt.date.today()
    if from_date is not None and from_date > to_date:
        raise ValidationError(f"--from {from_date} is after --to {to_date}", field="from",
                              value=str(from_date))
    rule = select_rule(state, to_date, rule_id)
    h = country_history(state, country, rule, from_date=from_date, to_date=to_date,
                        known_at=position)
    if as_json:
        print_json(h.model_dump(mode="json"))
        return
    from rich.table import Table

    title = (f"{country} history {from_date or 'start'}..{to_date}, rule "
             f"{h.rule or 'none in force'}")
    table = Table(title=title, title_justify="left")
    for name in ("date", "pos", "event", "identity", "bucket", "TPP", "Δ committed",
                 "committed", "cap", "late"):
        table.add_column(name, justify="right" if name in ("pos", "TPP", "Δ committed",
                                                           "committed", "cap") else "left")
    for e in h.entries:
        over = e.cap_tpp is not None and e.committed_tpp > e.cap_tpp
        table.add_row(str(e.date), str(e.position), e.kind, e.identity,
                      e.bucket + (f" [{e.flag}]" if e.flag else ""), tpp(e.tpp),
                      f"{e.committed_delta:+,}", f"[red]{tpp(e.committed_tpp)}[/red]" if over
                      else tpp(e.committed_tpp), tpp(e.cap_tpp),
                      f"late (after {e.late_after})" if e.late else "")
    out = console()
    out.width = max(out.width, 160)  # a wide table: do not squeeze it into 80 columns
    out.print(table)
    out.print(f"[dim]computed at recorded position {h.computed_at_position}; rerun with "
              f"--known-at {h.computed_at_position} to reproduce[/dim]")
