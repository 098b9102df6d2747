"""Commands: what a user or an exporter asks the ledger to record.

A command is the JSON Lines import format too: one object per line with a ``type``
field (``shipment.recorded``, ``allocation.granted``, ...). Commands are validated
here (shape, codes, dates); whether they may be applied is decided in
``ledger.decide`` against what the ledger already holds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from decimal import Decimal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    field_validator,
)
from pydantic import ValidationError as PydanticError

from ledger.errors import ValidationError
from ledger.events import (
    _ID,
    ID_PATTERN,
    MAX_QUANTITY,
    MAX_TPP_AMOUNT,
    MAX_TPP_PER_UNIT,
    AllocationGrant,
    Authorization,
    Day,
    DieArea,
    ShipmentChanges,
    VeuGrant,
    Text,
    VeuLimits,
    _country,
)
from ledger.rulebook import RuleBook
from ledger.wire import duplicate_key


def _json_number(v: Decimal) -> int | float:
    """A die area as a JSON number (the wire refuses a string): exact, since a valid
    die area has at most 9 significant digits, which a float's shortest repr keeps."""
    return int(v) if v == v.to_integral_value() else float(v)


#: a die area in a command: a Decimal, written back to JSON as a number, so a command
#: serialized by the producer (or ``ledger export``) reads again on the strict wire
#: (events keep it as an exact decimal string)
WireDieArea = Annotated[DieArea, PlainSerializer(_json_number, when_used="json")]


class _Command(BaseModel):
    """Every command may carry a ``command_id``, its idempotency key: a command whose
    key was already applied to its aggregate is a no-op reported as a duplicate.
    Without one, the command's content is its key (see ``ledger.decide``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str | None = Field(default=None, min_length=1, max_length=128,
                                   pattern=ID_PATTERN)


class RecordShipment(_Command):
    type: Literal["shipment.recorded"] = "shipment.recorded"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    ship_date: Day
    destination: str
    consignee_id: str = _ID
    product_id: str = _ID
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    tpp_per_unit: int | None = Field(default=None, gt=0, le=MAX_TPP_PER_UNIT)
    authorization: Authorization
    end_use: Text | None = Field(default=None, min_length=1, max_length=256)
    #: the die area of a product not in the catalog, declared with its tpp_per_unit
    die_area_mm2: WireDieArea | None = None

    @field_validator("destination")
    @classmethod
    def _dest(cls, v: str) -> str:
        return _country(v, "destination")


class CorrectShipment(ShipmentChanges, _Command):
    """The fields to change (those of ``ShipmentChanges``) and whose shipment, and why."""

    type: Literal["shipment.corrected"] = "shipment.corrected"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    reason: Text = Field(min_length=1, max_length=1000)
    die_area_mm2: WireDieArea | None = None

    def changes(self) -> ShipmentChanges:
        fields = {k: v for k, v in self if k in ShipmentChanges.model_fields and v is not None}
        return ShipmentChanges(**fields)


class VoidShipment(_Command):
    type: Literal["shipment.voided"] = "shipment.voided"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    reason: Text = Field(min_length=1, max_length=1000)


class GrantAllocation(AllocationGrant, _Command):
    type: Literal["allocation.granted"] = "allocation.granted"


class AdjustAllocation(_Command):
    type: Literal["allocation.adjusted"] = "allocation.adjusted"
    allocation_id: str = _ID
    tpp_amount: int = Field(gt=0, le=MAX_TPP_AMOUNT)
    effective_date: Day
    reason: Text = Field(min_length=1, max_length=1000)


class RevokeAllocation(_Command):
    type: Literal["allocation.revoked"] = "allocation.revoked"
    allocation_id: str = _ID
    effective_date: Day
    reason: Text = Field(min_length=1, max_length=1000)


class GrantVeu(VeuGrant, _Command):
    type: Literal["veu.granted"] = "veu.granted"


class AmendVeu(_Command):
    type: Literal["veu.amended"] = "veu.amended"
    veu_id: str = _ID
    effective_date: Day
    reason: Text | None = Field(default=None, min_length=1, max_length=1000)
    entity: Text | None = Field(default=None, min_length=1, max_length=256)
    covered_countries: list[str] | None = None
    valid_to: Day | None = None
    limits: VeuLimits | None = None

    @field_validator("covered_countries")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_country(c, "covered_countries") for c in v]


class RevokeVeu(_Command):
    type: Literal["veu.revoked"] = "veu.revoked"
    veu_id: str = _ID
    effective_date: Day
    reason: Text = Field(min_length=1, max_length=1000)


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
    kind = first["type"]
    if kind == "json_invalid":
        return f"malformed JSON: {msg.removeprefix('Invalid JSON: ')}", "(line)", None
    if kind in ("model_attributes_type", "model_type", "dict_type") and not loc:
        return (f"expected a JSON object, got {_json_type(value)}", "(line)",
                _short(value))
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return (f"field {field!r} must be a JSON object, got {_json_type(value)} "
                f"(value: {_quoted(value)})", field, value)
    if kind == "missing":
        return f"field {field!r} is required", field, None
    if kind == "extra_forbidden":
        return f"field {field!r} is not allowed here (value: {_quoted(value)})", field, value
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        tag = value.get("type") if isinstance(value, dict) else None
        return (f"field 'type' must be one of {', '.join(COMMAND_TYPES)}, got {tag!r}",
                "type", tag)
    return f"field {field!r}: {msg} (value: {_quoted(value)})", field, value


#: longest value text an error message quotes (a refused 1 MB string is not echoed)
MAX_QUOTED = 200


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_QUOTED:
        return value[:MAX_QUOTED] + "..."
    return value


def _quoted(value: Any) -> str:
    """The value as Python writes it, cut to MAX_QUOTED characters."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "..."


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def parse_command(data: Any) -> Command:
    """Validate one object built in Python (the CLI, the demo, tests) as a command;
    raise ValidationError naming the field and the value. Wire input (files, Kafka)
    goes through ``parse_command_line``, which is strict."""
    if not isinstance(data, dict):
        raise ValidationError(f"expected a JSON object, got {type(data).__name__}",
                              field="(line)", value=data)
    try:
        return COMMAND_ADAPTER.validate_python(data)
    except PydanticError as e:
        msg, field, value = describe_pydantic_error(e)
        raise ValidationError(msg, field=field, value=value) from e


def parse_command_line(line: str | bytes) -> Command:
    """Parse one JSON Lines line into a command, strictly: integers must be JSON
    integers, dates ``YYYY-MM-DD`` strings in the documented range, no key twice.
    Raises ValidationError naming the field and the value, whatever the bytes."""
    try:
        command = COMMAND_ADAPTER.validate_json(line, strict=True)
    except PydanticError as e:
        msg, field, value = describe_pydantic_error(e)
        raise ValidationError(msg, field=field, value=value) from None
    duplicate = duplicate_key(line)
    if duplicate is not None:
        key, first, second = duplicate
        raise ValidationError(
            f"field {key!r} is given twice ({_quoted(first)} then {_quoted(second)}); "
            "a line names each field once", field=key, value=second)
    return command
