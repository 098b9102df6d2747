"""``ledger ship``: record, correct or void one shipment from the command line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
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


class AuthorizationType(click.ParamType):  # type: ignore[type-arg]
    """``--auth``: a malformed value is a usage error (exit 2), named with the option."""

    name = "AUTH"

    def convert(self, value: Any, param: Any, ctx: Any) -> dict[str, Any]:
        from ledger.errors import ValidationError

        if isinstance(value, dict):
            return value
        try:
            return _authorization(str(value))
        except ValidationError:
            self.fail(f"{value!r} must be none, lpp, license:ALLOCATION_ID or veu:VEU_ID",
                      param, ctx)


AUTH = AuthorizationType()


class DieAreaType(click.ParamType):  # type: ignore[type-arg]
    """``--die-area``: a decimal number of mm², kept exact (never through a float)."""

    name = "MM2"

    def convert(self, value: Any, param: Any, ctx: Any) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            area = Decimal(str(value).strip())
        except InvalidOperation:
            area = Decimal("NaN")
        if not area.is_finite():
            self.fail(f"die_area_mm2 {value!r} is not a decimal number of mm² "
                      "(e.g. 814 or 814.5)", param, ctx)
        return area


DIE_AREA = DieAreaType()
#: stands for the die area in the JSON text until its exact digits are put in
_DIE_AREA_SLOT = "\u0000die_area_mm2\u0000"


def _submit(ctx: click.Context, data: dict[str, Any]) -> None:
    import json

    from ledger.application import BatchRejected
    from ledger.commands import parse_command_line

    # through the same strict reader as an import line (control characters, dates); a
    # die area goes in as a JSON number with the digits as typed, not through a float
    die_area = data.pop("die_area_mm2", None)
    if die_area is not None:
        data["die_area_mm2"] = _DIE_AREA_SLOT
    line = json.dumps({k: v for k, v in data.items() if v is not None})
    if die_area is not None:
        line = line.replace(json.dumps(_DIE_AREA_SLOT), str(die_area))
    command = parse_command_line(line)
    ledger = open_ledger(ctx, create=True)
    try:
        result = ledger.submit([command])
    except BatchRejected as e:
        raise e.outcomes[0].error from None  # type: ignore[misc]
    outcome = result.outcomes[0]
    if not outcome.duplicate and outcome.events:
        _warn_invalid_authorization(ledger, outcome.events[0])
    if outcome.duplicate:
        click.echo(f"{data['exporter_id']}/{data['shipment_ref']}: {outcome.note}")
    else:
        click.echo(f"{data['exporter_id']}/{data['shipment_ref']}: {data['type']} at position "
                   f"{result.positions[0]}")


def _warn_invalid_authorization(ledger: Any, event: Any) -> None:
    """Say on stderr when the license or VEU a recorded shipment names is not valid for
    it (unknown, another holder or country, outside its dates, revoked): the shipment is
    recorded all the same, as it happened, and counts against the country cap."""
    from ledger.events import ShipmentRecorded, allocation_aggregate_id, veu_aggregate_id
    from projections.positions import authorization_checks
    from projections.state import LedgerState, ShipmentRow, fold

    if not isinstance(event, ShipmentRecorded):
        return
    auth = event.shipment.authorization
    if auth.kind not in ("license", "veu") or auth.ref is None:
        return
    aggregate = (allocation_aggregate_id if auth.kind == "license" else veu_aggregate_id)(
        auth.ref)
    state = LedgerState()
    for position, e in enumerate(ledger.history_of(aggregate), start=1):
        fold(state, position, e)
    row = ShipmentRow(event.exporter_id, event.shipment_ref, event.shipment, 10**12, 10**12)
    lic, veu = authorization_checks(state, row)
    check = lic if auth.kind == "license" else veu
    if check is not None and not check.valid:
        flag = "license-invalid" if auth.kind == "license" else "veu-invalid"
        click.secho(f"warning: recorded, but {check.reason}: it counts as {flag} (against "
                    "the country cap where there is one)", fg="yellow", err=True)


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
@click.option("--die-area", type=DIE_AREA,
              help="Die area in mm² of a product not in the catalog, declared with "
                   "--tpp-per-unit: counting then knows its performance density.")
@click.option("--auth", type=AUTH, default="none", show_default=True,
              help="none | lpp | license:ALLOCATION_ID | veu:VEU_ID")
@click.option("--end-use", help="Declared end use, e.g. 'model training'.")
@click.pass_context
def record(ctx: click.Context, exporter: str, ref: str, ship_date: dt.date, destination: str,
           consignee: str, product: str, quantity: int, tpp_per_unit: int | None,
           die_area: Decimal | None, auth: dict[str, Any], end_use: str | None) -> None:
    """Record one shipment. Recording the identical shipment again is a no-op.

    A shipment is recorded as it happened: one naming a license or VEU that is not
    valid for it (unknown, another holder or country, outside its dates, revoked)
    is recorded all the same, with a warning on stderr; it counts as
    license-invalid / veu-invalid, against the country cap.

    \b
    Example:
      ledger ship record --exporter acme --ref PO-4711 --date 2025-06-02 --to MX \\
        --consignee mx-dc-1 --product nvidia-h100-sxm --quantity 64 --auth lpp
    """
    _submit(ctx, {"type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
                  "ship_date": ship_date.isoformat(), "destination": destination,
                  "consignee_id": consignee, "product_id": product, "quantity": quantity,
                  "tpp_per_unit": tpp_per_unit, "die_area_mm2": die_area,
                  "authorization": auth, "end_use": end_use})


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
@click.option("--die-area", type=DIE_AREA,
              help="Die area in mm² of a product not in the catalog (a new --product "
                   "drops the old die area unless this gives one).")
@click.option("--auth", type=AUTH, help="none | lpp | license:ALLOCATION_ID | veu:VEU_ID")
@click.option("--command-id",
              help="Idempotency key. Without one, a correction identical to one already "
                   "applied (same values and reason) is a no-op; give a new id to return "
                   "deliberately to an earlier value.")
@click.pass_context
def correct(ctx: click.Context, exporter: str, ref: str, reason: str, ship_date: dt.date | None,
            destination: str | None, consignee: str | None, product: str | None,
            quantity: int | None, tpp_per_unit: int | None, die_area: Decimal | None,
            auth: dict[str, Any] | None, command_id: str | None) -> None:
    """Correct fields of a recorded shipment; it then counts with the new values."""
    _submit(ctx, {"type": "shipment.corrected", "exporter_id": exporter, "shipment_ref": ref,
                  "command_id": command_id,
                  "reason": reason, "ship_date": ship_date.isoformat() if ship_date else None,
                  "destination": destination, "consignee_id": consignee, "product_id": product,
                  "quantity": quantity, "tpp_per_unit": tpp_per_unit,
                  "die_area_mm2": die_area, "authorization": auth})


@ship.command("void")
@click.option("--exporter", required=True)
@click.option("--ref", required=True)
@click.option("--reason", required=True, help="Why the shipment is voided.")
@click.pass_context
def void(ctx: click.Context, exporter: str, ref: str, reason: str) -> None:
    """Void a recorded shipment: it no longer counts (the record stays)."""
    _submit(ctx, {"type": "shipment.voided", "exporter_id": exporter, "shipment_ref": ref,
                  "reason": reason})
