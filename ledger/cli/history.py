"""``ledger history``: the story of a country's quota, item by item, with running totals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, open_ledger, require_rules
from ledger.cli.output import Col, console, fit_table, print_fitted, print_json, tpp


@click.command()
@click.option("--country", "-c", type=COUNTRY, required=True, help="ISO 3166-1 alpha-2 code.")
@click.option("--from", "from_date", type=DATE, help="First effective date listed.")
@click.option("--to", "to_date", type=DATE,
              help="Last effective date (default: the latest effective date recorded).")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--rule", "rule_id", help="Count under this rule revision instead of the one "
                                         "in force on --to.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--wide", is_flag=True, help="Every column, however narrow the terminal "
                                          "(default: drop TPP, bucket, cap, Δ committed "
                                          "in that order to fit).")
@click.pass_context
def history(ctx: click.Context, country: str, from_date: dt.date | None,
            to_date: dt.date | None, known_at: str | None, rule_id: str | None,
            as_json: bool, wide: bool) -> None:
    """Every event that touched a country's position, in effective-date order.

    \b
    Shows the running committed amount against the cap, marks the FIRST BREACH
    (the event after which committed first exceeded the cap) and events that
    arrived LATE (recorded after an event with a later effective date). A
    correction shows each changed field old → new; a voided shipment keeps its
    original row, counting for nothing. Ids are never cut.

    \b
    Examples:
      ledger history --country MX --rule ai-diffusion-2025
      ledger history --country MX --from 2025-04-01 --to 2025-06-30 --known-at 20 --json
    """
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
        from ledger.errors import ValidationError

        raise ValidationError(f"--from {from_date} is after --to {to_date}", field="from",
                              value=str(from_date))
    rule = select_rule(state, to_date, rule_id)
    h = country_history(state, country, rule, from_date=from_date, to_date=to_date,
                        known_at=position)
    h = _with_corrections(ledger, h)
    if as_json:
        print_json(h.model_dump(mode="json"))
        return
    _print(h, from_date, wide=wide)


#: the history's columns; ``drop`` is the order they go when the terminal is narrow.
#: The event, its ids, committed and the breach mark never go; the detail wraps.
HISTORY_COLUMNS = [
    Col("date"), Col("pos", "right"), Col("event"), Col("identity"),
    Col("bucket", drop=2, wrap=True), Col("TPP", "right", drop=1),
    Col("Δ committed", "right", drop=4), Col("committed", "right"),
    Col("cap", "right", drop=3), Col("note", wrap=True),
]


def _with_corrections(ledger: Any, h: Any) -> Any:
    """The history with each correction's changed fields (old → new), read from the
    corrected shipments' own versions (one indexed query per corrected shipment)."""
    from ledger.events import shipment_id
    from projections.lookups import shipment_versions

    wanted = {e.identity for e in h.entries if e.kind == "shipment.corrected"}
    changes: dict[int, dict[str, list[Any]]] = {}
    for identity in sorted(wanted):
        exporter, _, ref = identity.partition("/")
        for v in shipment_versions(ledger.positioned_history(shipment_id(exporter, ref)), {}):
            if v.type == "shipment.corrected":
                changes[v.position] = v.changes
    entries = [e.model_copy(update={"changes": changes.get(e.position)})
               if e.kind == "shipment.corrected" else e for e in h.entries]
    return h.model_copy(update={"entries": entries})


def _note(e: Any) -> str:
    parts = []
    if e.first_breach:
        parts.append("[bold red]◀ FIRST BREACH[/bold red]")
    if e.changes:
        parts.append("; ".join(f"{k} {_v(old)} → {_v(new)}" for k, (old, new)
                               in e.changes.items()))
    if e.voided:
        parts.append(f"voided at pos {e.last_position}: counts 0")
    elif e.kind == "shipment.voided":
        parts.append(f"void of the row at pos {e.detail.split('position ')[1].split(')')[0]}"
                     if "position " in e.detail else e.detail)
    elif e.kind == "shipment.corrected" and (not e.changes or "moved" in e.detail):
        parts.append(e.detail)
    if e.late:
        parts.append(f"[yellow]late (after {e.late_after})[/yellow]")
    return "; ".join(parts)


def _v(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('kind')}:{value['ref']}" if value.get("ref") else str(
            value.get("kind"))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print(h: Any, from_date: dt.date | None, *, wide: bool) -> None:
    from rich import box

    out = console()
    out.print(f"[bold]{h.country} history {from_date or 'start'}..{h.to_date}[/bold], rule "
              f"{h.rule or 'none in force'}", soft_wrap=True)
    rows = []
    for e in h.entries:
        over = e.cap_tpp is not None and e.committed_tpp > e.cap_tpp
        committed = tpp(e.committed_tpp)
        rows.append([
            str(e.date), str(e.position), e.kind.removeprefix("shipment."), e.identity,
            e.bucket + (f" ({e.flag})" if e.flag else ""), tpp(e.tpp),
            f"{e.committed_delta:+,}",
            f"[bold red]{committed}[/bold red]" if over else committed, tpp(e.cap_tpp),
            _note(e)])
    style: dict[str, Any] = {"box": box.SIMPLE_HEAD, "pad_edge": False}
    _table, need, _dropped = fit_table(HISTORY_COLUMNS, rows, width=out.width, wide=wide,
                                       **style)
    if wide or need <= out.width:
        print_fitted(out, HISTORY_COLUMNS, rows, wide=wide, **style)
    else:
        # too narrow for a note column beside the ids: each note goes on a line of its
        # own under its row, in the identity column (ids never wrap: they have no spaces)
        cols = [Col("identity / note", wrap=True) if c.name == "identity" else c
                for c in HISTORY_COLUMNS if c.name != "note"]
        at = [c.name for c in HISTORY_COLUMNS].index("identity")
        narrow: list[list[str]] = []
        for row in rows:
            narrow.append(row[:-1])
            if row[-1]:
                narrow.append(["" if i != at else f"↳ {row[-1]}" for i in range(len(cols))])
        print_fitted(out, cols, narrow, **style)
    breach = next((e for e in h.entries if e.first_breach), None)
    if breach is not None:
        out.print(f"[bold red]First breach[/bold red] {breach.date}: {breach.identity} at "
                  f"position {breach.position} took committed to {tpp(breach.committed_tpp)} "
                  f"TPP, over the cap of {tpp(breach.cap_tpp)}", soft_wrap=True)
    out.print(f"[dim]computed at recorded position {h.computed_at_position}; rerun with "
              f"--known-at {h.computed_at_position} to reproduce[/dim]", soft_wrap=True)
