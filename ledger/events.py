"""The ledger's published events: the four families, as frozen pydantic models.

An event is a fact, past tense, never changed once appended. Every event carries:

- ``originator_id`` / ``originator_version``: the aggregate it belongs to (a shipment,
  an allocation, a VEU or a rule revision) and its place in that aggregate's history;
- ``timestamp``: when the ledger created it (UTC; the authoritative recorded time is
  the store's stamp, see ``ledger.persistence``);
- ``effective_date``: the business date (valid time) the fact takes effect;
- ``actor``: who wrote it (``cli:<user>``, ``kafka:<topic>/<partition>/<offset>``).

Amounts are integer TPP; dates are ``date``; no floats anywhere. A published shape
never changes in place: bump ``class_version`` and add an upcaster.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ledger.countries import is_country_code
from ledger.rulebook import RuleBook

_M = TypeVar("_M", bound=BaseModel)

#: Namespace of the deterministic aggregate ids (uuid5 of "kind:natural key").
LEDGER_NAMESPACE = uuid.UUID("6f1c2a4e-9a43-4b7e-8f0e-0b6c1e2d3a57")


@functools.lru_cache(maxsize=1 << 16)  # asked twice per command (plan, then the event)
def shipment_id(exporter_id: str, shipment_ref: str) -> uuid.UUID:
    """The aggregate id of a shipment: one per (exporter id, shipment reference)."""
    return uuid.uuid5(LEDGER_NAMESPACE, f"shipment:{exporter_id}\x1f{shipment_ref}")


def allocation_aggregate_id(allocation_id: str) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, f"allocation:{allocation_id}")


def veu_aggregate_id(veu_id: str) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, f"veu:{veu_id}")


def rule_aggregate_id(rule_id: str) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, f"rule:{rule_id}")


def construct_validated(cls: type[_M], **values: Any) -> _M:
    """An instance of a model without validating again: for values that were all
    validated already (a new shipment's fields come from its validated command).
    A required field that is not given raises KeyError naming it; an optional one
    takes its default. Same instance as ``model_construct`` gives (field order,
    fields set), without its alias handling, which was a fifth of a bulk import; the
    models it is used for have no aliases, private attributes or post-init hooks."""
    obj = cls.__new__(cls)
    state = {name: values[name] if name in values or field.is_required()
             else field.get_default(call_default_factory=True)
             for name, field in cls.__pydantic_fields__.items()}
    object.__setattr__(obj, "__dict__", state)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values) & set(state))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


# --- value objects --------------------------------------------------------------------

#: Upper bounds on amounts. Far above anything real (10^8 chips in one shipment, a chip
#: of 10^12 TPP where a B200 has 36,000, 10^15 TPP ≈ 63 billion H100s, also the most
#: one shipment may carry in all), they keep every
#: amount and every shipment's TPP inside a signed 64-bit integer, which both stores
#: and every read model require; an absurd number is refused at the door, naming the
#: field, instead of poisoning a projection.
MAX_QUANTITY = 100_000_000
MAX_TPP_PER_UNIT = 10**12
MAX_TPP_AMOUNT = 10**15
#: Upper bound on a declared die area, in mm². A reticle-limited die is about 858 mm²
#: (26 x 33 mm); the largest chip ever made, a wafer-scale one, is about 46,000 mm².
#: 100,000 mm² leaves room for multi-die packages and refuses a figure in µm² or a
#: typo that would make every density negligible (and the chip "uncontrolled").
MAX_DIE_AREA_MM2 = 100_000
#: the longest ``actor`` an event accepts
MAX_ACTOR_LENGTH = 256

Identifier = str  # ids: 1..128 printable characters, validated where used
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$"
_ID = Field(min_length=1, max_length=128, pattern=ID_PATTERN)

#: The dates a command may carry (ship dates, validity, effective dates): a year-1 or
#: year-9999 date is a typo or an attack, never a fact about an AI-chip export.
DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
#: characters no id or text may hold: C0/C1 controls (NUL among them; PostgreSQL
#: cannot even store it), lone surrogates (not encodable) and the line/paragraph
#: separators (they break every line-oriented log and export)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


#: the validation context of events read back from the store: what was appended is a
#: fact and stays readable, even if today's rules for new input are stricter
STORED: dict[str, bool] = {"stored": True}
_ID_RE = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _in_range(v: dt.date, info: ValidationInfo) -> dt.date:
    if not DATE_MIN <= v <= DATE_MAX and not _stored(info):
        raise ValueError(f"date {v.isoformat()} is outside {DATE_MIN}..{DATE_MAX}")
    return v


def is_plain_text(v: str) -> bool:
    """True if ``v`` holds no character that ``Text`` refuses."""
    return _CONTROL.search(v) is None


def _plain_text(v: str, info: ValidationInfo) -> str:
    found = _CONTROL.search(v)
    if found is not None and not _stored(info):
        raise ValueError(f"control character {found.group()!r} at index {found.start()} "
                         "is not allowed")
    return v


def _an_id(v: str, info: ValidationInfo) -> str:
    if not _ID_RE.fullmatch(v) and not _stored(info):
        raise ValueError(f"String should match pattern '{ID_PATTERN}'")
    return v


#: a date of a command or a grant: YYYY-MM-DD on the wire, within DATE_MIN..DATE_MAX
Day = Annotated[dt.date, AfterValidator(_in_range)]
#: free text (reasons, entity names, references): no control characters
Text = Annotated[str, AfterValidator(_plain_text)]
#: an id in a field that once took any text (authorization refs, corrected consignee
#: and product, holders): checked on new input, not on events already stored
NewId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_an_id)]


def _a_json_number(v: Any, info: ValidationInfo) -> Any:
    """On the wire (strict JSON: import lines, Kafka) a die area is a JSON number, as
    quantities are JSON integers; a string is refused there, not coerced."""
    if info.mode != "json" or isinstance(v, bool):
        return v
    if isinstance(v, str) and not _stored(info):
        raise ValueError(f"must be a JSON number of mm² (e.g. 814.5), got the string {v!r}")
    if isinstance(v, float):
        # the parser's float, written back as its shortest repr: exact for any figure
        # within the bounds (at most 9 significant digits), so strict mode gets a Decimal
        return Decimal(repr(v))
    return Decimal(v) if isinstance(v, int) else v


def _plain_decimal(v: Decimal) -> Decimal:
    """1E+3 as 1000: stored, exported and shown as a plain number."""
    return v.quantize(Decimal(1)) if v.as_tuple().exponent > 0 else v  # type: ignore[operator]


#: a declared die area in mm² (``ledger.catalog.Product.die_area_mm2``'s unit): a positive
#: finite decimal, at most MAX_DIE_AREA_MM2, at most 3 decimal places (µm² precision is
#: beyond any datasheet). Stored as a JSON string, so it is read back exactly.
DieArea = Annotated[Decimal, BeforeValidator(_a_json_number),
                    Field(gt=0, le=MAX_DIE_AREA_MM2, decimal_places=3, allow_inf_nan=False),
                    AfterValidator(_plain_decimal),
                    WithJsonSchema({"type": "number", "exclusiveMinimum": 0,
                                    "maximum": MAX_DIE_AREA_MM2,
                                    "description": "die area in mm² (at most 3 decimal "
                                    "places) of a product not in the catalog, declared "
                                    "with its tpp_per_unit"})]


def _country(v: str, field: str = "country") -> str:
    if not isinstance(v, str) or not is_country_code(v):
        raise ValueError(f"{field} must be an ISO 3166-1 alpha-2 code, got {v!r}")
    return v


def check_shipment_tpp(quantity: int, tpp_per_unit: int) -> None:
    """A shipment's TPP (quantity x TPP per unit) may not exceed MAX_TPP_AMOUNT."""
    if quantity * tpp_per_unit > MAX_TPP_AMOUNT:
        raise ValueError(f"quantity {quantity} x tpp_per_unit {tpp_per_unit} exceeds "
                         f"{MAX_TPP_AMOUNT:,} TPP for one shipment")


def _not_before_start(v: dt.date | None, info: ValidationInfo) -> dt.date | None:
    """``valid_to`` may not precede ``valid_from`` (declared before it)."""
    start = info.data.get("valid_from")
    if v is not None and start is not None and v < start:
        raise ValueError(f"valid_to {v} is before valid_from {start}")
    return v


class Authorization(BaseModel):
    """How a shipment was authorized: none, LPP, a license (allocation) or a VEU."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["none", "lpp", "license", "veu"]
    ref: NewId | None = None

    @model_validator(mode="after")
    def _ref_matches_kind(self) -> Authorization:
        if self.kind in ("license", "veu") and self.ref is None:
            raise ValueError(f"authorization of kind {self.kind!r} needs a ref (the "
                             f"{'allocation' if self.kind == 'license' else 'VEU'} id)")
        if self.kind in ("none", "lpp") and self.ref is not None:
            raise ValueError(f"authorization of kind {self.kind!r} takes no ref, got {self.ref!r}")
        return self


class ShipmentFields(BaseModel):
    """The business fields of a shipment, as recorded (or as corrected)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ship_date: Day
    destination: str
    consignee_id: str = _ID
    product_id: str = _ID
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    tpp_per_unit: int = Field(gt=0, le=MAX_TPP_PER_UNIT)
    authorization: Authorization
    #: the die area declared with ``tpp_per_unit`` for a product not in the catalog
    #: (None: not declared); counting derives the performance density from it
    die_area_mm2: DieArea | None = None

    @field_validator("destination")
    @classmethod
    def _dest(cls, v: str) -> str:
        return _country(v, "destination")

    @model_validator(mode="after")
    def _bounded(self) -> ShipmentFields:
        check_shipment_tpp(self.quantity, self.tpp_per_unit)
        return self

    @property
    def tpp(self) -> int:
        """The shipment's TPP: quantity x TPP per unit."""
        return self.quantity * self.tpp_per_unit


class ShipmentChanges(BaseModel):
    """The fields a correction changes; absent fields keep their value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ship_date: Day | None = None
    destination: str | None = None
    consignee_id: NewId | None = None
    product_id: NewId | None = None
    quantity: int | None = Field(default=None, gt=0, le=MAX_QUANTITY)
    tpp_per_unit: int | None = Field(default=None, gt=0, le=MAX_TPP_PER_UNIT)
    authorization: Authorization | None = None
    #: a declared die area (products not in the catalog); see ``apply``
    die_area_mm2: DieArea | None = None

    @field_validator("destination")
    @classmethod
    def _dest(cls, v: str | None) -> str | None:
        return None if v is None else _country(v, "destination")

    def changed(self) -> dict[str, Any]:
        """The fields this correction sets, by name."""
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}

    def apply(self, fields: ShipmentFields) -> ShipmentFields:
        """The shipment's fields after this correction.

        A declared die area belongs to its product: a correction that names a product
        drops the die area unless it declares one itself (a die area of the old chip
        would give the new one a density nobody declared)."""
        update = self.changed()
        if self.product_id is not None and self.die_area_mm2 is None:
            update["die_area_mm2"] = None
        return fields.model_copy(update=update)


class VeuLimits(BaseModel):
    """A VEU's own limits. Universal: shares (see the rule book); national: a TPP cap.

    All optional: when absent the rule book's limits apply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the entity's total deployed AI compute in TPP (the base of a UVEU's shares)
    total_compute_tpp: int | None = Field(default=None, gt=0, le=MAX_TPP_AMOUNT)
    #: a national VEU's cumulative cap in TPP, if set by the authorization itself
    cap_tpp: int | None = Field(default=None, ge=0, le=MAX_TPP_AMOUNT)


class VeuChanges(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entity: Text | None = Field(default=None, min_length=1, max_length=256)
    covered_countries: list[str] | None = None
    valid_to: Day | None = None
    limits: VeuLimits | None = None

    @field_validator("covered_countries")
    @classmethod
    def _codes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_country(c, "covered_countries") for c in v]


# --- the event base -------------------------------------------------------------------


class LedgerEvent(BaseModel):
    """Base of every stored event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the family/type name used in JSON Lines, exports and the CLI
    type_name: ClassVar[str] = "event"
    class_version: ClassVar[int] = 1

    originator_id: uuid.UUID
    originator_version: int = Field(ge=1)
    timestamp: dt.datetime
    effective_date: dt.date
    actor: Text = Field(min_length=1, max_length=MAX_ACTOR_LENGTH)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is dt.UTC:  # the common case, without computing an offset
            return v
        if v.tzinfo is None or v.utcoffset() != dt.timedelta(0):
            raise ValueError(f"timestamp must be UTC, got {v.isoformat()}")
        return v

    def payload(self) -> dict[str, Any]:
        """The event's own fields, without the envelope (ids, version, timestamp)."""
        return self.model_dump(
            mode="json", exclude={"originator_id", "originator_version", "timestamp"}
        )


# --- rule revisions -------------------------------------------------------------------


class RuleRevisionPublished(LedgerEvent):
    """A rule revision published into the ledger.

    Version 2: the document may carry the instruments it is composed of, dated country
    groups, group references (tiers, license requirements, product rules), dated and
    GP10 product rules, clause instruments and unverified-date marks. All are optional
    with empty defaults, so a version-1 document reads unchanged."""

    type_name: ClassVar[str] = "rule.published"
    class_version: ClassVar[int] = 2
    rule_id: str
    document: RuleBook

    @classmethod
    def upcast_v1_v2(cls, state: dict[str, Any]) -> dict[str, Any]:
        """v1 documents had none of the version-2 fields: their defaults apply."""
        return state


# --- allocations ----------------------------------------------------------------------


class AllocationGrant(BaseModel):
    """The fields of an allocation grant, shared by the event and the command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allocation_id: str = _ID
    country: str
    tpp_amount: int = Field(gt=0, le=MAX_TPP_AMOUNT)
    valid_from: Day
    valid_to: Day | None = None
    holder: NewId | None = None
    reference: Text | None = Field(default=None, max_length=256)

    @field_validator("country")
    @classmethod
    def _c(cls, v: str) -> str:
        return _country(v)

    _valid_to = field_validator("valid_to")(_not_before_start)


class AllocationGranted(AllocationGrant, LedgerEvent):
    """A license allocation (``holder`` = exporter) or a country-level cap increase."""

    type_name: ClassVar[str] = "allocation.granted"


class AllocationAdjusted(LedgerEvent):
    type_name: ClassVar[str] = "allocation.adjusted"
    allocation_id: str = _ID
    tpp_amount: int = Field(gt=0, le=MAX_TPP_AMOUNT)
    reason: Text = Field(min_length=1, max_length=1000)


class AllocationRevoked(LedgerEvent):
    type_name: ClassVar[str] = "allocation.revoked"
    allocation_id: str = _ID
    reason: Text = Field(min_length=1, max_length=1000)


# --- verified end users ---------------------------------------------------------------


class VeuGrant(BaseModel):
    """The fields of a VEU grant, shared by the event and the command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    veu_id: str = _ID
    entity: Text = Field(min_length=1, max_length=256)
    kind: Literal["universal", "national"]
    headquarters_country: str
    covered_countries: list[str] = Field(min_length=1)
    valid_from: Day
    valid_to: Day | None = None
    limits: VeuLimits = Field(default_factory=VeuLimits)

    @field_validator("headquarters_country")
    @classmethod
    def _hq(cls, v: str) -> str:
        return _country(v, "headquarters_country")

    @field_validator("covered_countries")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return [_country(c, "covered_countries") for c in v]

    _valid_to = field_validator("valid_to")(_not_before_start)


class VeuGranted(VeuGrant, LedgerEvent):
    type_name: ClassVar[str] = "veu.granted"


class VeuAmended(LedgerEvent):
    type_name: ClassVar[str] = "veu.amended"
    veu_id: str = _ID
    changes: VeuChanges
    reason: Text | None = Field(default=None, min_length=1, max_length=1000)


class VeuRevoked(LedgerEvent):
    type_name: ClassVar[str] = "veu.revoked"
    veu_id: str = _ID
    reason: Text = Field(min_length=1, max_length=1000)


# --- shipments ------------------------------------------------------------------------


class ShipmentRecorded(LedgerEvent):
    """A shipment as first recorded.

    Version 2 added ``end_use`` (the declared end use, e.g. "model training"), which
    auditors asked to see in the trail. Version-1 events are stored without it and are
    read with ``end_use`` None; their stored bytes, which the hash chain covers, are
    never rewritten. Version 3 added ``shipment.die_area_mm2``, the die area declared
    with the TPP of a product not in the catalog; older events are read with None (a
    die area could not be declared then)."""

    type_name: ClassVar[str] = "shipment.recorded"
    class_version: ClassVar[int] = 3
    exporter_id: str = _ID
    shipment_ref: str = _ID
    shipment: ShipmentFields
    end_use: Text | None = Field(default=None, min_length=1, max_length=256)

    @classmethod
    def upcast_v1_v2(cls, state: dict[str, Any]) -> dict[str, Any]:
        """v1 had no end use: it was not declared."""
        state.setdefault("end_use", None)
        return state

    @classmethod
    def upcast_v2_v3(cls, state: dict[str, Any]) -> dict[str, Any]:
        """v2 had no die area: none was declared."""
        state["shipment"].setdefault("die_area_mm2", None)
        return state


class ShipmentCorrected(LedgerEvent):
    """A correction of a shipment's fields.

    Version 2 added ``changes.die_area_mm2`` (a correction may declare the die area of
    a product not in the catalog); version-1 corrections are read with None."""

    type_name: ClassVar[str] = "shipment.corrected"
    class_version: ClassVar[int] = 2
    exporter_id: str = _ID
    shipment_ref: str = _ID
    reason: Text = Field(min_length=1, max_length=1000)
    changes: ShipmentChanges

    @classmethod
    def upcast_v1_v2(cls, state: dict[str, Any]) -> dict[str, Any]:
        """v1 corrections could not declare a die area."""
        state["changes"].setdefault("die_area_mm2", None)
        return state


class ShipmentVoided(LedgerEvent):
    type_name: ClassVar[str] = "shipment.voided"
    exporter_id: str = _ID
    shipment_ref: str = _ID
    reason: Text = Field(min_length=1, max_length=1000)


EVENT_TYPES: tuple[type[LedgerEvent], ...] = (
    RuleRevisionPublished,
    AllocationGranted,
    AllocationAdjusted,
    AllocationRevoked,
    VeuGranted,
    VeuAmended,
    VeuRevoked,
    ShipmentRecorded,
    ShipmentCorrected,
    ShipmentVoided,
)
EVENT_BY_TYPE_NAME: dict[str, type[LedgerEvent]] = {c.type_name: c for c in EVENT_TYPES}
SHIPMENT_EVENTS = (ShipmentRecorded, ShipmentCorrected, ShipmentVoided)
