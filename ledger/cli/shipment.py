"""``ledger shipment show``: one shipment's every version and how it counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import DATE, open_ledger
from ledger.cli.output import console, print_json, tpp

#: the fields shown per version, in this order
FIELD_ORDER = ("ship_date", "destination", "consignee_id", "product_id", "quantity",
               "tpp_per_unit", "die_area_mm2", "tpp", "authorization", "end_use")


@click.group()
def shipment() -> None:
    """One shipment: every recorded version and how it counts."""


@shipment.command("show")
@click.argument("exporter")
@click.argument("ref")
@click.option("--as-of", type=DATE, help="How it counts as of this date "
                                         "[default: its ship date].")
@click.option("--rule", "rule_id", help="Count it under this revision [default: the one "
                                         "in force on --as-of].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def show(ctx: click.Context, exporter: str, ref: str, as_of: dt.date | None,
         rule_id: str | None, as_json: bool) -> None:
    """Every version of EXPORTER's shipment REF: recorded, each correction (old →
    new) and a void, with its position, recorded time, actor and reason; then how
    it counts as of a date (bucket, flag, clause and citation, what it adds to the
    country's committed amount).

    \b
    Examples:
      ledger shipment show acme S-100
      ledger shipment show acme S-100 --as-of 2025-12-31 --rule ai-diffusion-2025 --json
    """
    from ledger.errors import NotFound
    from ledger.events import shipment_id
    from projections.lookups import ShipmentStory, shipment_counting, shipment_versions
    from projections.views import load_state, select_rule

    ledger = open_ledger(ctx)
    events = ledger.positioned_history(shipment_id(exporter, ref))
    if not events:
        raise NotFound(f"shipment {exporter}/{ref} is not in the ledger (exporter "
                       f"{exporter!r}, reference {ref!r})")
    times = ledger.recorded_times(events[0][0], events[-1][0])
    versions = shipment_versions(events, times)
    last = versions[-1]
    state = load_state(ledger)
    day = as_of or dt.date.fromisoformat(str(last.fields["ship_date"]))
    rule = select_rule(state, day, rule_id)
    counting = shipment_counting(state, (exporter, ref), day, rule)
    story = ShipmentStory(exporter_id=exporter, shipment_ref=ref, versions=versions,
                          current=last.fields, voided=last.voided, tpp=int(last.fields["tpp"]),
                          counting=counting, computed_at_position=state.position)
    if as_json:
        print_json(story.model_dump(mode="json"))
        return
    _print(story)


def _value(field: str, v: Any) -> str:
    if isinstance(v, dict):
        return f"{v.get('kind')}:{v['ref']}" if v.get("ref") else str(v.get("kind"))
    if isinstance(v, int) and field in ("quantity", "tpp_per_unit", "tpp"):
        return f"{v:,}"
    return "—" if v is None else str(v)


def _print(s: Any) -> None:
    out = console()
    state = "[red]VOIDED[/red]" if s.voided else f"{len(s.versions)} version(s)"
    out.print(f"[bold]{s.exporter_id}/{s.shipment_ref}[/bold]: {state}, {tpp(s.tpp)} TPP now",
              soft_wrap=True)
    for v in s.versions:
        out.print(f"[bold]v{v.version}[/bold] {v.type} at position {v.position}, recorded "
                  f"{v.recorded_at or '?'} by {v.actor}"
                  + (f": {v.reason}" if v.reason else ""), soft_wrap=True)
        if v.type == "shipment.recorded":
            for k in FIELD_ORDER:
                if v.fields.get(k) is not None:
                    out.print(f"    {k:<14}{_value(k, v.fields[k])}", soft_wrap=True)
        for k, (old, new) in v.changes.items() if v.type == "shipment.corrected" else []:
            out.print(f"    {k:<14}{_value(k, old)} → {_value(k, new)}", soft_wrap=True)
        if v.type == "shipment.voided":
            out.print("    no longer counts; the record above stays", soft_wrap=True)
    c = s.counting
    if c is not None:
        how = c.bucket + (f" ({c.flag})" if c.flag else "")
        out.print(f"As of {c.as_of} under {c.rule or 'no rule revision'}: {how}, clause "
                  f"{c.clause}, adds {c.committed_delta:+,} TPP to committed", soft_wrap=True)
        out.print(f"    {c.detail}", soft_wrap=True)
        if c.citation:
            out.print(f"    {c.citation}", soft_wrap=True)
    out.print(f"[dim]computed at recorded position {s.computed_at_position}[/dim]")
