"""``ledger ship``: record, correct or void one shipment from the command line."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, open_ledger


def _authorization(value: str) -> dict[str, Any]:
    from ledger.errors import ValidationError

    kind, _, ref = value.partition(":")
    if kind in ("none", "lpp") and not ref:
        return {"kind": kind}
    if kind in ("license", "veu") and ref:
        return {"kind": kind, "ref": ref}
    raise ValidationError(
        f"--auth {value!r} must be none, lpp, license:ALLOCATION_ID or veu:VEU_ID",
        field="authorization", value=value)


def _submit(ctx: click.Context, data: dict[str, Any]) -> None:
    import json

    from ledger.application import BatchRejected
    from ledger.commands import parse_command_line

    # through the same strict reader as an import line (control characters, dates)
    command = parse_command_line(json.dumps({k: v for k, v in data.items() if v is not None}))
    ledger = open_ledger(ctx)
    try:
        result = ledger.submit([command])
    except BatchRejected as e:
        raise e.outcomes[0].error from None  # type: ignore[misc]
    outcome = result.outcomes[0]
    if outcome.duplicate:
        click.echo(f"{data['exporter_id']}/{data['shipment_ref']}: {outcome.note}")
    else:
        click.echo(f"{data['exporter_id']}/{data['shipment_ref']}: {data['type']} at position "
                   f"{result.positions[0]}")


@click.group()
def ship() -> None:
    """One shipment at a time (use 'ledger import' for files)."""


@ship.command("record")
@click.option("--exporter", required=True, help="Exporter id.")
@click.option("--ref", required=True, help="The exporter's shipment reference.")
@click.option("--date", "ship_date", type=DATE, required=True, help="Ship date.")
@click.option("--to", "destination", type=COUNTRY, required=True, help="Destination country.")
@click.option("--consignee", required=True, help="Ultimate consignee id.")
@click.option("--product", required=True, help="Product id, e.g. nvidia-h100-sxm.")
@click.option("--quantity", type=int, required=True, help="Number of units (> 0).")
@click.option("--tpp-per-unit", type=int, help="Required when the product is not in the catalog.")
@click.option("--auth", default="none", show_default=True,
              help="none | lpp | license:ALLOCATION_ID | veu:VEU_ID")
@click.option("--end-use", help="Declared end use, e.g. 'model training'.")
@click.pass_context
def record(ctx: click.Context, exporter: str, ref: str, ship_date: dt.date, destination: str,
           consignee: str, product: str, quantity: int, tpp_per_unit: int | None,
           auth: str, end_use: str | None) -> None:
    """Record one shipment. Recording the identical shipment again is a no-op."""
    _submit(ctx, {"type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
                  "ship_date": ship_date.isoformat(), "destination": destination,
                  "consignee_id": consignee, "product_id": product, "quantity": quantity,
                  "tpp_per_unit": tpp_per_unit, "authorization": _authorization(auth),
                  "end_use": end_use})


@ship.command("correct")
@click.option("--exporter", required=True)
@click.option("--ref", required=True)
@click.option("--reason", required=True, help="Why the shipment is corrected.")
@click.option("--date", "ship_date", type=DATE)
@click.option("--to", "destination", type=COUNTRY)
@click.option("--consignee")
@click.option("--product")
@click.option("--quantity", type=int)
@click.option("--tpp-per-unit", type=int)
@click.option("--auth")
@click.option("--command-id",
              help="Idempotency key. Without one, a correction identical to one already "
                   "applied (same values and reason) is a no-op; give a new id to return "
                   "deliberately to an earlier value.")
@click.pass_context
def correct(ctx: click.Context, exporter: str, ref: str, reason: str, ship_date: dt.date | None,
            destination: str | None, consignee: str | None, product: str | None,
            quantity: int | None, tpp_per_unit: int | None, auth: str | None,
            command_id: str | None) -> None:
    """Correct fields of a recorded shipment; it then counts with the new values."""
    _submit(ctx, {"type": "shipment.corrected", "exporter_id": exporter, "shipment_ref": ref,
                  "command_id": command_id,
                  "reason": reason, "ship_date": ship_date.isoformat() if ship_date else None,
                  "destination": destination, "consignee_id": consignee, "product_id": product,
                  "quantity": quantity, "tpp_per_unit": tpp_per_unit,
                  "authorization": _authorization(auth) if auth else None})


@ship.command("void")
@click.option("--exporter", required=True)
@click.option("--ref", required=True)
@click.option("--reason", required=True, help="Why the shipment is voided.")
@click.pass_context
def void(ctx: click.Context, exporter: str, ref: str, reason: str) -> None:
    """Void a recorded shipment: it no longer counts (the record stays)."""
    _submit(ctx, {"type": "shipment.voided", "exporter_id": exporter, "shipment_ref": ref,
                  "reason": reason})
