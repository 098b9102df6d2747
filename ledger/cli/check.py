"""``ledger check``: the pre-shipment check a shipping system calls before a truck
leaves. Nothing is written."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, open_ledger
from ledger.cli.output import console, print_json, tpp
from ledger.cli.ship import AUTH, DIE_AREA
from ledger.countries import country_name


def _proposed(line: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The shipment.recorded object to check: the JSON line, or the options."""
    from ledger.errors import ValidationError

    if line is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        if given:
            raise click.UsageError(f"give the shipment as a JSON line or as options, not "
                                   f"both (also given: {', '.join(given)})")
        text = sys.stdin.read() if line == "-" else line
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationError(f"the shipment is not JSON: {e}", field="(line)",
                                  value=text[:80]) from e
        if isinstance(data, dict):
            data.setdefault("type", "shipment.recorded")
            if data["type"] != "shipment.recorded":
                raise ValidationError(f"type {data['type']!r}: only a shipment.recorded "
                                      "can be checked", field="type", value=data["type"])
        return data  # type: ignore[no-any-return]
    missing = [f"--{k.replace('_', '-')}" for k in
               ("exporter", "ref", "date", "to", "consignee", "product", "quantity")
               if options.get(k) is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give the shipment as a "
                               "JSON line)")
    data = {"type": "shipment.recorded", "exporter_id": options["exporter"],
            "shipment_ref": options["ref"], "ship_date": options["date"].isoformat(),
            "destination": options["to"], "consignee_id": options["consignee"],
            "product_id": options["product"], "quantity": options["quantity"],
            "tpp_per_unit": options["tpp_per_unit"], "die_area_mm2": options["die_area"],
            "authorization": options["auth"] or {"kind": "none"},
            "end_use": options["end_use"]}
    return {k: v for k, v in data.items() if v is not None}


def _fields(ledger: Any, data: dict[str, Any]) -> tuple[str, str, Any]:
    """(exporter, ref, ShipmentFields) validated exactly as 'ledger ship record' would,
    except that a planned ship date in the future is allowed."""
    from ledger.commands import RecordShipment, parse_command
    from ledger.errors import ValidationError

    command = parse_command(data)
    if not isinstance(command, RecordShipment):
        raise ValidationError("only a shipment.recorded can be checked", field="type",
                              value=data.get("type"))
    ship_day = dt.datetime.combine(command.ship_date, dt.time(), tzinfo=dt.UTC)
    now = max(dt.datetime.now(dt.UTC), ship_day)
    outcome = ledger.plan([command], actor="check", now=now)[0]
    if outcome.error is not None:
        raise outcome.error
    if outcome.duplicate:
        raise ValidationError(
            f"{command.exporter_id}/{command.shipment_ref} is already recorded with these "
            f"values: see 'ledger shipment show {command.exporter_id} "
            f"{command.shipment_ref}'", field="shipment_ref", value=command.shipment_ref)
    event = outcome.events[0]
    return command.exporter_id, command.shipment_ref, event.shipment


@click.command("check")
@click.argument("line", required=False, metavar="[JSON_LINE | -]")
@click.option("--exporter", help="Exporter id.")
@click.option("--ref", help="The exporter's shipment reference.")
@click.option("--date", type=DATE, help="Ship date (a planned future date is allowed).")
@click.option("--to", type=COUNTRY, help="Destination country.")
@click.option("--consignee", help="Ultimate consignee id.")
@click.option("--product", help="Product id, e.g. nvidia-h100-sxm.")
@click.option("--quantity", type=int, help="Number of units (> 0).")
@click.option("--tpp-per-unit", type=int, help="Required when the product is not in the catalog.")
@click.option("--die-area", type=DIE_AREA,
              help="Die area in mm² of a product not in the catalog (with --tpp-per-unit).")
@click.option("--auth", type=AUTH, help="none | lpp | license:ALLOCATION_ID | veu:VEU_ID "
                                        "[default: none]")
@click.option("--end-use", help="Declared end use.")
@click.option("--rule", "rule_id", help="Check under this revision instead of the one in "
                                         "force on the ship date (counterfactual).")
@click.option("--rule-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check under a draft rule that is not in the ledger (validated like "
                   "'rules load'); the answer names the file and its SHA-256.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def check(ctx: click.Context, /, line: str | None, rule_id: str | None,
          rule_file: Path | None, as_json: bool, **options: Any) -> None:
    """Would this shipment fit? Answers without writing anything.

    Give the shipment with the options of 'ledger ship record', or as one JSON
    line with the fields of shipment.recorded (JSON_LINE, or - to read it from
    stdin). Says how it would count under the rule in force on its ship date
    (bucket, flag, clause), which authorization it draws on and what is left of it
    afterwards (license, the consignee's LPP year, the VEU's limits, the country
    cap), and whether it would breach anything.

    \b
    Exit code 0 when it fits, 4 when it would breach a limit or is prohibited,
    1 when the shipment itself is invalid (e.g. an unknown product).

    \b
    Examples:
      ledger check --exporter acme --ref PO-4711 --date 2025-06-30 --to MX \\
        --consignee mx-dc-1 --product nvidia-h100-sxm --quantity 64 --auth lpp
      ledger check --rule ai-diffusion-2025 --json '{"exporter_id": "acme", ...}'
      echo '{"exporter_id": "acme", ...}' | ledger check - --json
      ledger check --rule-file draft.yaml --exporter acme ...   # under a draft rule
    """
    from ledger.errors import ConfigurationError
    from projections.check import check_shipment
    from projections.views import load_state, select_rule

    if rule_id is not None and rule_file is not None:
        raise click.UsageError(f"--rule {rule_id!r} and --rule-file both choose the "
                               "revision: give one")
    data = _proposed(line, options)
    ledger = open_ledger(ctx)
    exporter, ref, fields = _fields(ledger, data)
    state = load_state(ledger)
    if not state.rules:
        raise ConfigurationError("the ledger has no rule revision, so nothing can be "
                                 "checked; load them with 'ledger rules load --bundled'")
    draft = None
    rule: Any
    if rule_file is not None:
        from ledger.drafts import load_draft

        draft = load_draft(rule_file.read_bytes(), str(rule_file), state.rule_books())
        rule = draft.book
    else:
        rule = select_rule(state, fields.ship_date, rule_id)
    result = check_shipment(state, exporter, ref, fields, rule)
    source = ("--rule" if rule_id else "--rule-file" if draft is not None
              else "in force on the ship date")
    if as_json:
        data_out = result.model_dump(mode="json")
        data_out["rule_source"] = source
        if draft is not None:
            data_out["draft"] = draft.describe()
        print_json(data_out)
    else:
        if draft is not None:
            click.echo(draft.line())
        _print(result, named=source)
    if not result.fits:
        from ledger.cli.exitcodes import CHECK_FAILED

        ctx.exit(CHECK_FAILED)


def _print(r: Any, *, named: str) -> None:
    out = console()
    s = r.shipment
    auth = s["authorization"]
    auth_text = auth["kind"] + (f":{auth['ref']}" if auth.get("ref") else "")
    out.print(f"[bold]Pre-shipment check[/bold] {r.exporter_id}/{r.shipment_ref}: "
              f"{s['quantity']:,} × {s['product_id']} = {tpp(r.tpp)} TPP to "
              f"{country_name(s['destination'])} ({s['destination']}), consignee "
              f"{s['consignee_id']}, {s['ship_date']}, authorization {auth_text}",
              soft_wrap=True)
    how = (f"in force on {s['ship_date']}" if named.startswith("in force")
           else f"named with {named}")
    out.print(f"  rule         {r.rule or 'none in force'} ({how})", soft_wrap=True)
    flag = f" ({r.flag})" if r.flag else ""
    out.print(f"  counts as    {r.bucket}{flag}, clause {r.clause}: {r.detail}", soft_wrap=True)
    if r.citation:
        out.print(f"               {r.citation}", soft_wrap=True)
    _print_draws(out, r)
    if r.fits:
        out.print("[bold green]FITS[/bold green]: nothing would be breached (exit 0)")
    else:
        out.print("[bold red]WOULD BREACH[/bold red] (exit 4):")
        for p in r.problems:
            out.print(f"  {p.kind}: {p.message}", soft_wrap=True)
    for w in r.warnings:
        out.print(f"  [yellow]warning[/yellow] {w.kind}: {w.message}", soft_wrap=True)
    out.print(f"[dim]nothing was recorded; positions as of {r.as_of}, computed at recorded "
              f"position {r.computed_at_position}[/dim]", soft_wrap=True)


def _print_draws(out: Any, r: Any) -> None:
    c = r.cap
    if c.cap_tpp is None:
        out.print(f"  country cap  {c.country}: no cap under {r.rule or 'no revision'}; "
                  f"committed {tpp(c.committed_before_tpp)} → {tpp(c.committed_after_tpp)}",
                  soft_wrap=True)
    else:
        out.print(f"  country cap  {c.country} tier {c.tier}: cap {tpp(c.cap_tpp)}; committed "
                  f"{tpp(c.committed_before_tpp)} → {tpp(c.committed_after_tpp)} "
                  f"({r.committed_delta_tpp:+,}); remaining {tpp(c.remaining_before_tpp)} → "
                  f"{tpp(c.remaining_after_tpp)}", soft_wrap=True)
    if r.license is not None:
        lic = r.license
        state = "" if lic.valid else f" [yellow]not valid: {lic.reason}[/yellow]"
        amount = "—" if lic.amount_tpp is None else tpp(lic.amount_tpp)
        out.print(f"  license      {lic.allocation_id}: amount {amount}; shipped "
                  f"{tpp(lic.shipped_before_tpp)} → {tpp(lic.shipped_after_tpp)}; remaining "
                  f"{tpp(lic.remaining_after_tpp)}{state}", soft_wrap=True)
    if r.lpp is not None:
        p = r.lpp
        out.print(f"  LPP          consignee {p.consignee_id}, {p.year}: limit "
                  f"{tpp(p.limit_tpp)}; used {tpp(p.used_before_tpp)} → "
                  f"{tpp(p.used_after_tpp)}; remaining {tpp(p.remaining_after_tpp)}",
                  soft_wrap=True)
    if r.veu is not None:
        v = r.veu
        if not v.valid:
            out.print(f"  VEU          {v.veu_id}: [yellow]not valid: {v.reason}[/yellow]",
                      soft_wrap=True)
        for lim in v.limits_after:
            used = tpp(lim.used_tpp)
            bound = (f"cap {tpp(lim.cap_tpp)}" if lim.kind == "cap"
                     else f"share {lim.share} (limit {lim.limit_share})")
            mark = " [red]BREACH[/red]" if lim.breach else ""
            out.print(f"  VEU          {v.veu_id} {lim.scope}: used {used}; {bound}; "
                      f"remaining {tpp(lim.remaining_tpp)}{mark}", soft_wrap=True)
