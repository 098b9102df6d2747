"""The wire format of exporters' shipment messages, and the decoder that checks them.

A Kafka message from an exporter is:

- **key**: the exporter id (UTF-8), so one exporter's messages stay in order on one
  partition;
- **value**: the JSON of an ``Envelope`` (schema version 1): exporter id, message id,
  sent time, ``auth`` (algorithm and key id) and ``payload``, one shipment command
  (``shipment.recorded``, ``shipment.corrected`` or ``shipment.voided``, the same
  objects ``ledger import`` reads);
- **header** ``ql-signature``: the base64 Ed25519 signature of the value's exact bytes.
  Signing the bytes as sent (not a re-serialization) means no canonical JSON is
  needed in any language, and the auth block is covered by the signature too.

``decode_message`` turns (key, value, headers) into a checked ``Envelope`` or raises
``Rejected`` with a reason code and a message naming the field and the value; it
never raises anything else, whatever the bytes (a hypothesis test feeds it noise).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticError

from consumers.signing import ALGORITHM, Keyring
from ledger.catalog import Catalog
from ledger.commands import COMMAND_TYPES, CorrectShipment, RecordShipment, VoidShipment
from ledger.decide import FUTURE_TOLERANCE
from ledger.errors import LedgerError
from ledger.events import _ID
from ledger.wire import duplicate_key

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (SCHEMA_VERSION,)
SIGNATURE_HEADER = "ql-signature"
SHIPMENT_TYPES = ("shipment.recorded", "shipment.corrected", "shipment.voided")
#: written only by administrators through the CLI, never accepted from an exporter
ADMIN_TYPES = tuple(t for t in COMMAND_TYPES if t not in SHIPMENT_TYPES)
#: longest value repr carried in a reason (a dead-letter header must stay small)
MAX_VALUE_REPR = 200
#: largest message value accepted: one shipment is well under 2 KiB
MAX_MESSAGE_BYTES = 64 * 1024

ShipmentPayload = Annotated[
    RecordShipment | CorrectShipment | VoidShipment, Field(discriminator="type")
]


class Auth(BaseModel):
    """How the message is signed; the signature itself is the ``ql-signature`` header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["ed25519"] = Field(description="signature algorithm (only ed25519)")
    key_id: str = Field(min_length=1, max_length=128,
                        description="the keyring entry of the key that signed the value")


class Envelope(BaseModel):
    """The value of an exporter's Kafka message (schema version 1). Send it with the
    exporter_id as the message key and a ql-signature header: the base64 Ed25519
    signature of exactly these value bytes, by the key auth.key_id names."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="ShipmentMessage")

    schema_version: Literal[1] = Field(description="wire format version; 1 is current")
    exporter_id: str = _ID
    message_id: uuid.UUID = Field(
        description="the message's idempotency key: a message whose id was already applied "
                    "to its shipment is a no-op (ledger produce derives it from the exporter "
                    "and the payload, so republishing a file is harmless)")
    sent_at: AwareDatetime = Field(description="when the exporter sent it, with offset")
    auth: Auth
    payload: ShipmentPayload


ENVELOPE_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(Envelope)


class Rejected(LedgerError):
    """A message that cannot be appended, with a specific reason ``code``."""

    def __init__(self, code: str, message: str, *, field: str | None = None,
                 value: object = None) -> None:
        super().__init__(message)
        self.code = code  # per instance: the dead-letter reason
        self.field = field
        self.value = value


def short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_REPR else text[:MAX_VALUE_REPR] + "..."


# --- building (producer side) --------------------------------------------------------


def encode_envelope(envelope: Envelope) -> bytes:
    """Compact UTF-8 JSON of an envelope: the exact bytes that get signed and sent."""
    return json.dumps(envelope.model_dump(mode="json", exclude_none=True),
                      separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(signature: bytes) -> tuple[str, bytes]:
    return SIGNATURE_HEADER, base64.b64encode(signature)


# --- decoding (consumer side) --------------------------------------------------------


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def signature_of(headers: Sequence[tuple[str, bytes | None]]) -> bytes | None:
    """The signature header's value, as the decoder reads it (the first one)."""
    return _header(headers, SIGNATURE_HEADER)


def _describe(e: PydanticError) -> Rejected:
    """The specific reason for the first validation error, naming field and value."""
    first = e.errors()[0]
    # drop the union tag pydantic puts in the location of a discriminated payload
    loc = [str(p) for p in first["loc"] if str(p) not in SHIPMENT_TYPES]
    field = ".".join(loc) or "(message)"
    value = first.get("input")
    msg = first["msg"].removeprefix("Value error, ")
    kind = first["type"]
    leaf = loc[-1] if loc else ""
    if kind == "missing":
        return Rejected("schema-violation", f"field {field!r} is required", field=field)
    if kind == "extra_forbidden":
        return Rejected("schema-violation",
                        f"field {field!r} is not allowed here (value: {short_repr(value)})",
                        field=field, value=value)
    if leaf == "destination" and kind == "value_error":
        return Rejected("unknown-country", f"field {field!r}: {msg}", field=field, value=value)
    if leaf in ("quantity", "tpp_per_unit") and kind == "greater_than":
        return Rejected("non-positive-quantity",
                        f"field {field!r} must be a positive integer, got {short_repr(value)}",
                        field=field, value=value)
    return Rejected("schema-violation", f"field {field!r}: {msg} (value: {short_repr(value)})",
                    field=field, value=value)


def decode_message(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    keyring: Keyring,
    *,
    key: bytes | None = None,
    catalog: Catalog | None = None,
    now: dt.datetime | None = None,
    max_age: dt.timedelta | None = None,
    verified_key_id: str | None = None,
) -> Envelope:
    """Check one message: size, shape, signature, identity, authorization, and (given
    a catalog and a clock) product, ship date and, with ``max_age``, that it is not
    stale. Returns the envelope; raises ``Rejected`` and nothing else.

    ``verified_key_id``: the key id whose signature of exactly ``value`` a worker
    already verified (``consumers.verify``); the Ed25519 check is then skipped for
    that key id only, every other check runs as always."""
    try:
        envelope = _decode(value, headers, keyring, key, catalog, now, verified_key_id)
        if now is not None and max_age is not None:
            _check_sent_at(envelope, now, max_age)
        return envelope
    except Rejected:
        raise
    except Exception as e:
        raise Rejected("invalid", f"message could not be checked: {type(e).__name__}: {e}") from e


def _decode(value: bytes | None, headers: Sequence[tuple[str, bytes | None]], keyring: Keyring,
            key: bytes | None, catalog: Catalog | None, now: dt.datetime | None,
            verified_key_id: str | None = None) -> Envelope:
    if not value:
        raise Rejected("empty-message", "message value is empty", field="(message)")
    if len(value) > MAX_MESSAGE_BYTES:
        raise Rejected("message-too-large",
                       f"message value is {len(value):,} bytes; at most {MAX_MESSAGE_BYTES:,} "
                       "are accepted", field="(message)", value=len(value))
    try:
        data: Any = json.loads(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Rejected("malformed-json", f"message value is not JSON: {e}",
                       field="(message)") from None
    if not isinstance(data, dict):
        raise Rejected("schema-violation",
                       f"message must be a JSON object, got {type(data).__name__}",
                       field="(message)", value=data)
    version = data.get("schema_version")
    if "schema_version" not in data:
        raise Rejected("schema-violation", "field 'schema_version' is required",
                       field="schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        raise Rejected("unsupported-schema-version",
                       f"schema_version {short_repr(version)} is not supported "
                       f"(supported: {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))})",
                       field="schema_version", value=version)

    # authenticity first: nothing below is trusted before the signature checks out
    sig_text = _header(headers, SIGNATURE_HEADER)
    if not sig_text:
        raise Rejected("unsigned", f"message has no {SIGNATURE_HEADER} header",
                       field=SIGNATURE_HEADER)
    auth = data.get("auth")
    if not isinstance(auth, dict) or not isinstance(auth.get("key_id"), str):
        raise Rejected("schema-violation", "field 'auth.key_id' is required (a string)",
                       field="auth.key_id", value=auth)
    if auth.get("alg") != ALGORITHM:
        raise Rejected("schema-violation",
                       f"field 'auth.alg' must be {ALGORITHM!r}, got {short_repr(auth.get('alg'))}",
                       field="auth.alg", value=auth.get("alg"))
    key_id: str = auth["key_id"]
    public = keyring.get(key_id)
    if public is None:
        raise Rejected("unknown-key", f"key id {short_repr(key_id)} is not in the keyring",
                       field="auth.key_id", value=key_id)
    try:
        signature = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("bad-signature", f"{SIGNATURE_HEADER} header is not base64",
                       field=SIGNATURE_HEADER) from None
    if verified_key_id != key_id and not public.verify(signature, value):
        raise Rejected("bad-signature",
                       f"signature does not verify with key {key_id!r} of exporter "
                       f"{public.exporter_id!r} (message altered or signed with another key)",
                       field=SIGNATURE_HEADER)
    claimed = data.get("exporter_id")
    if claimed != public.exporter_id:
        raise Rejected("exporter-mismatch",
                       f"message claims exporter_id {short_repr(claimed)} but is signed with "
                       f"key {key_id!r} of exporter {public.exporter_id!r}",
                       field="exporter_id", value=claimed)

    # authorization: exporters publish shipments, nothing else
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise Rejected("schema-violation", "field 'payload' must be a JSON object",
                       field="payload", value=payload)
    kind = payload.get("type")
    if kind in ADMIN_TYPES:
        raise Rejected("admin-event",
                       f"payload type {kind!r} is written only by administrators through the "
                       "CLI; the exporter topic takes shipment events only",
                       field="payload.type", value=kind)
    if kind not in SHIPMENT_TYPES:
        raise Rejected("wrong-payload-type",
                       f"payload type {short_repr(kind)} is not one of {', '.join(SHIPMENT_TYPES)}",
                       field="payload.type", value=kind)
    duplicate = duplicate_key(value)
    if duplicate is not None:
        name, first, second = duplicate
        raise Rejected("duplicate-key",
                       f"field {name!r} is given twice ({short_repr(first)} then "
                       f"{short_repr(second)})", field=name, value=second)
    try:
        envelope = Envelope.model_validate_json(value, strict=True)
    except PydanticError as e:
        raise _describe(e) from None
    if envelope.payload.exporter_id != envelope.exporter_id:
        raise Rejected("exporter-mismatch",
                       f"exporter {envelope.exporter_id!r} sent a shipment in the name of "
                       f"{envelope.payload.exporter_id!r}",
                       field="payload.exporter_id", value=envelope.payload.exporter_id)
    if key is not None and key != envelope.exporter_id.encode():
        raise Rejected("wrong-key",
                       f"Kafka message key {short_repr(key)} must be the exporter id "
                       f"{envelope.exporter_id!r} (it keeps an exporter's messages in order)",
                       field="(key)", value=key)
    if catalog is not None:
        _check_product(envelope.payload, catalog)
    if now is not None:
        _check_ship_date(envelope.payload, now)
    return envelope


def _check_product(command: RecordShipment | CorrectShipment | VoidShipment,
                   catalog: Catalog) -> None:
    if isinstance(command, VoidShipment) or command.product_id is None:
        return
    if command.tpp_per_unit is None and catalog.get(command.product_id) is None:
        raise Rejected("unknown-product",
                       f"product_id {command.product_id!r} is not in the catalog and no "
                       "tpp_per_unit is given", field="payload.product_id",
                       value=command.product_id)
    if command.die_area_mm2 is not None and catalog.get(command.product_id) is not None:
        raise Rejected("die-area-for-catalog-product",
                       f"die_area_mm2 {command.die_area_mm2} is given for "
                       f"{command.product_id!r}, which is in the catalog (its density comes "
                       "from there); a die area is declared only for a product not in the "
                       "catalog", field="payload.die_area_mm2", value=str(command.die_area_mm2))


def _check_ship_date(command: RecordShipment | CorrectShipment | VoidShipment,
                     now: dt.datetime) -> None:
    day = getattr(command, "ship_date", None)
    if day is not None and day > (now + FUTURE_TOLERANCE).date():
        raise Rejected("future-ship-date",
                       f"ship_date {day.isoformat()} is in the future (today is "
                       f"{now.date().isoformat()}, tolerance {FUTURE_TOLERANCE.days} day)",
                       field="payload.ship_date", value=day.isoformat())


def _check_sent_at(envelope: Envelope, now: dt.datetime, max_age: dt.timedelta) -> None:
    """A message older than ``max_age`` is refused: a replay of an old signed message
    cannot be applied even where its message id is no longer remembered (a ledger
    restored from an export)."""
    sent = envelope.sent_at
    if sent < now - max_age:
        raise Rejected("stale-message",
                       f"sent_at {sent.isoformat()} is older than the accepted "
                       f"{max_age} (now {now.isoformat(timespec='seconds')}); "
                       "send it again as a new message", field="sent_at",
                       value=sent.isoformat())
    if sent > now + FUTURE_TOLERANCE:
        raise Rejected("future-sent-at",
                       f"sent_at {sent.isoformat()} is in the future (now "
                       f"{now.isoformat(timespec='seconds')})", field="sent_at",
                       value=sent.isoformat())


def reason_of(error: LedgerError) -> str:
    """The dead-letter reason of an error the ledger returned for a decoded command."""
    from ledger.errors import ConflictingDuplicate, InvalidTransition, NotFound, UnknownProduct

    if isinstance(error, Rejected):
        return error.code
    if isinstance(error, ConflictingDuplicate):
        return "conflicting-duplicate"
    if isinstance(error, NotFound):
        return "unknown-shipment"
    if isinstance(error, InvalidTransition):
        return "voided-shipment"
    if isinstance(error, UnknownProduct):
        return "unknown-product"
    if getattr(error, "field", None) == "ship_date":
        return "future-ship-date"
    if getattr(error, "field", None) == "die_area_mm2":
        # a correction's die area for a shipment whose product is in the catalog: only
        # the ledger, which knows the shipment's product, can tell
        return "die-area-for-catalog-product"
    return error.code
