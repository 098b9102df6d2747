"""``ledger demo``: a sample ledger and the tier-2 quota table, in one screen."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import open_ledger
from ledger.cli.output import STATUS_STYLE, Col, console, h100, print_fitted, tpp

AS_OF = dt.date(2025, 6, 30)
COUNTERFACTUAL = "ai-diffusion-2025"


@click.command()
@click.option("--seed", default=2025, show_default=True, help="Seed of the sample.")
@click.option("--shipments", default=3_000, show_default=True, help="How many shipments.")
@click.option("--wide", is_flag=True, help="Every column, however narrow the terminal "
                                          "(default: drop H100e left, shipped, in force, "
                                          "first breach in that order to fit).")
@click.pass_context
def demo(ctx: click.Context, seed: int, shipments: int, wide: bool) -> None:
    """Load the bundled rules and a deterministic sample, then show the quota table.

    The sample (fictitious exporters and consignees) has licenses, a
    government-to-government allocation, VEUs, LPP shipments, tier 1/2/3
    destinations, late-reported shipments, a correction and a void. Running the
    demo again on the same database appends nothing: every event is already there.
    """
    from ledger.commands import PublishRuleRevision, parse_command
    from ledger.demo import build
    from ledger.rulebook import bundled_rulebooks

    ledger = open_ledger(ctx, create=True)
    sample = build(seed, shipments)
    out = console()
    with out.status("Recording the sample ledger…"):
        rules = ledger.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()],
                              actor="demo")
        setup = ledger.submit([parse_command(c) for c in sample.setup], actor="demo")
        main = ledger.submit([parse_command(c) for c in sample.shipments], actor="demo")
        late_commands = [parse_command(c) for c in sample.late]
        late = ledger.submit(late_commands, actor="demo")
        on_time_head = before_late_reports(ledger, late_commands)
    appended = rules.appended + setup.appended + main.appended + late.appended
    out.print(f"[bold]quota-ledger demo[/bold] on {ledger.shown_url}: {appended} events appended "
              f"({len(sample.shipments) + len(sample.late) - 2} shipments, "
              f"{len(sample.setup)} allocations and VEUs, {len(bundled_rulebooks())} rule "
              "revisions); late reports, a correction and a void recorded last", soft_wrap=True)
    print_demo_table(ledger, on_time_head, wide=wide)


def before_late_reports(ledger: Any, late_commands: list[Any]) -> int:
    """The last position recorded before the first late report, read from the ledger
    (not assumed from this run: a rerun appends nothing, and its head is past them)."""
    from ledger.commands import RecordShipment
    from ledger.decide import aggregate_id_of

    ids = [aggregate_id_of(c) for c in late_commands if isinstance(c, RecordShipment)]
    firsts = ledger.first_positions(ids).values()
    if not firsts:
        return int(ledger.max_position())
    return int(ledger.last_position_before(min(firsts)))


#: the demo table's columns; ``drop`` is the order they go when the terminal is narrow
DEMO_COLUMNS = [
    Col("country"), Col("shipped", "right", drop=2), Col("in force", drop=3),
    Col("cap", "right"), Col("committed", "right"), Col("remaining", "right"),
    Col("H100e left", "right", drop=1), Col("status"), Col("first breach", drop=4),
]


def print_demo_table(ledger: Any, on_time_head: int, *, wide: bool = False) -> None:
    from rich import box

    from projections.views import load_state, quota_all, select_rule

    state = load_state(ledger)
    in_force = select_rule(state, AS_OF, None)
    in_force_id = in_force.id if in_force else "none"
    now = {p.country: p for p in quota_all(state, AS_OF)}
    what_if = quota_all(state, AS_OF, rule_id=COUNTERFACTUAL, tier=2)
    shipped: dict[str, int] = {}
    for row in state.shipments.values():
        if not row.voided and row.fields.ship_date <= AS_OF:
            shipped[row.fields.destination] = shipped.get(row.fields.destination, 0) + row.tpp

    rows = []
    for p in sorted(what_if, key=lambda p: (p.remaining_tpp or 0)):
        style = STATUS_STYLE[p.status]
        breach = ""
        if p.first_breach is not None:
            b = p.first_breach
            breach = (f"{b.date} {b.shipment_ref}" if b.type == "shipment"
                      else f"{b.date} {b.allocation_id}")
        rows.append([p.country, tpp(shipped.get(p.country, 0)),
                     now[p.country].status if p.country in now else "—", tpp(p.cap_tpp),
                     tpp(p.committed_tpp), tpp(p.remaining_tpp), h100(p.remaining_tpp),
                     f"[{style}]{p.status}[/{style}]", breach])
    out = console()
    out.print(f"[bold]Tier-2 quota positions as of {AS_OF}[/bold]: in force "
              f"({in_force_id}) vs. {COUNTERFACTUAL} had it been enforced", soft_wrap=True)
    dropped = print_fitted(out, DEMO_COLUMNS, rows, wide=wide, box=box.SIMPLE_HEAD,
                           pad_edge=False)
    out.print("TPP" + ("; H100e = TPP / 15,832" if "H100e left" not in dropped else ""),
              soft_wrap=True)
    over = [p for p in what_if if p.status == "over-cap"]
    out.print(f"Under {in_force_id} no tier-2 country has a cap; under {COUNTERFACTUAL} "
              f"{len(over)} of {len(what_if)} would be over it. Computed at recorded position "
              f"{state.position}.", soft_wrap=True)
    # commands are never broken by the table's wrapping: the terminal wraps them whole
    out.print("[dim]Next: ledger quota --country MX --as-of 2025-06-30 --rule ai-diffusion-2025"
              f"\n      ledger quota --all --as-of 2025-06-30 --rule ai-diffusion-2025 "
              f"--known-at {on_time_head}   (before the late reports)[/dim]", soft_wrap=True)
