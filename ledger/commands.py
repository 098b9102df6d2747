"""Commands: what a user or an exporter asks the ledger to record.

A command is the JSON Lines import format too: one object per line with a ``type``
field (``shipment.recorded``, ``allocation.granted``, ...). Commands are validated
here (shape, codes, dates); whether they may be applied is decided in
``ledger.decide`` against what the ledger already holds.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from pydantic import ValidationError as PydanticError

from ledger.errors import ValidationError
from ledger.events import (
    _ID,
    MAX_QUANTITY,
    MAX_TPP_AMOUNT,
    MAX_TPP_PER_UNIT,
    AllocationGrant,
    Authorization,
    ShipmentChanges,
    VeuGrant,
    VeuLimits,
    _country,
)
from ledger.rulebook import RuleBook


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordShipment(_Command):
    type: Literal["shipment.recorded"] = "shipment.recorded"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    ship_date: dt.date
    destination: str
    consignee_id: str = _ID
    product_id: str = _ID
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    tpp_per_unit: int | None = Field(default=None, gt=0, le=MAX_TPP_PER_UNIT)
    authorization: Authorization
    end_use: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("destination")
    @classmethod
    def _dest(cls, v: str) -> str:
        return _country(v, "destination")


class CorrectShipment(ShipmentChanges, _Command):
    """The fields to change (those of ``ShipmentChanges``) and whose shipment, and why."""

    type: Literal["shipment.corrected"] = "shipment.corrected"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    reason: str = Field(min_length=1)

    def changes(self) -> ShipmentChanges:
        fields = {k: v for k, v in self if k in ShipmentChanges.model_fields and v is not None}
        return ShipmentChanges(**fields)


class VoidShipment(_Command):
    type: Literal["shipment.voided"] = "shipment.voided"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    reason: str = Field(min_length=1)


class GrantAllocation(AllocationGrant, _Command):
    type: Literal["allocation.granted"] = "allocation.granted"


class AdjustAllocation(_Command):
    type: Literal["allocation.adjusted"] = "allocation.adjusted"
    allocation_id: str = _ID
    tpp_amount: int = Field(gt=0, le=MAX_TPP_AMOUNT)
    effective_date: dt.date
    reason: str = Field(min_length=1)


class RevokeAllocation(_Command):
    type: Literal["allocation.revoked"] = "allocation.revoked"
    allocation_id: str = _ID
    effective_date: dt.date
    reason: str = Field(min_length=1)


class GrantVeu(VeuGrant, _Command):
    type: Literal["veu.granted"] = "veu.granted"


class AmendVeu(_Command):
    type: Literal["veu.amended"] = "veu.amended"
    veu_id: str = _ID
    effective_date: dt.date
    reason: str | None = None
    entity: str | None = None
    covered_countries: list[str] | None = None
    valid_to: dt.date | None = None
    limits: VeuLimits | None = None

    @field_validator("covered_countries")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_country(c, "covered_countries") for c in v]


class RevokeVeu(_Command):
    type: Literal["veu.revoked"] = "veu.revoked"
    veu_id: str = _ID
    effective_date: dt.date
    reason: str = Field(min_length=1)


class PublishRuleRevision(_Command):
    type: Literal["rule.published"] = "rule.published"
    document: RuleBook


Command = Annotated[
    RecordShipment
    | CorrectShipment
    | VoidShipment
    | GrantAllocation
    | AdjustAllocation
    | RevokeAllocation
    | GrantVeu
    | AmendVeu
    | RevokeVeu
    | PublishRuleRevision,
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
COMMAND_TYPES = (
    "shipment.recorded", "shipment.corrected", "shipment.voided",
    "allocation.granted", "allocation.adjusted", "allocation.revoked",
    "veu.granted", "veu.amended", "veu.revoked", "rule.published",
)
SHIPMENT_COMMANDS = (RecordShipment, CorrectShipment, VoidShipment)


def describe_pydantic_error(e: PydanticError) -> tuple[str, str, Any]:
    """(message, field, value) for the first error: names the field and the value."""
    first = e.errors()[0]
    loc = [str(p) for p in first["loc"]]
    # drop the discriminator tag pydantic puts first in a union's location
    if loc and loc[0] in COMMAND_TYPES:
        loc = loc[1:]
    field = ".".join(loc) or "(line)"
    value = first.get("input")
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return f"field {field!r} is required", field, None
    if first["type"] == "extra_forbidden":
        return f"field {field!r} is not allowed here (value: {value!r})", field, value
    if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
        tag = value.get("type") if isinstance(value, dict) else None
        return (f"field 'type' must be one of {', '.join(COMMAND_TYPES)}, got {tag!r}",
                "type", tag)
    return f"field {field!r}: {msg} (value: {value!r})", field, value


def parse_command(data: Any) -> Command:
    """Validate one decoded JSON object as a command; raise ValidationError naming
    the field and the value."""
    if not isinstance(data, dict):
        raise ValidationError(f"expected a JSON object, got {type(data).__name__}",
                              field="(line)", value=data)
    try:
        return COMMAND_ADAPTER.validate_python(data)
    except PydanticError as e:
        msg, field, value = describe_pydantic_error(e)
        raise ValidationError(msg, field=field, value=value) from e


def parse_command_line(line: str | bytes) -> Command:
    """Parse one JSON Lines line into a command.

    Fast path: pydantic parses and validates the bytes in one step (a third cheaper
    than ``json.loads`` plus validation). Any line it refuses is parsed again the
    slow way, so a bad line's message is the same either way."""
    try:
        return COMMAND_ADAPTER.validate_json(line)
    except PydanticError:
        pass
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValidationError(f"malformed JSON: {e}", field="(line)", value=None) from e
    return parse_command(data)
