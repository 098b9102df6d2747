"""The message decoder at its edges (pure, no broker): the exact size limit, the ship-date
and sent-at windows to the second, the repr cut-off in reasons, which signature header
is read, each early refusal with its exact words, and the dead-letter reason of every
error the ledger returns (``reason_of``)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from consumers.envelope import (
    MAX_MESSAGE_BYTES,
    MAX_VALUE_REPR,
    Envelope,
    Rejected,
    decode_message,
    encode_envelope,
    reason_of,
    short_repr,
    signature_header,
    signature_of,
)
from consumers.signing import sign
from ledger.catalog import bundled_catalog
from ledger.errors import (
    ConflictingDuplicate,
    InvalidTransition,
    LedgerError,
    NotFound,
    RevivesAllocation,
    StorageError,
    UnknownProduct,
    ValidationError,
)
from tests.unit.test_envelope import (
    ACME,
    KEYRING,
    NOW,
    PAYLOADS,
    SHIPMENT,
    envelope_dict,
    reject,
    signed,
)

WEEK = dt.timedelta(days=7)


def decode(value: bytes, headers: list[tuple[str, bytes]], **kw: Any) -> Envelope:
    return decode_message(value, headers, KEYRING, catalog=bundled_catalog(), now=NOW, **kw)


def test_a_message_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not() -> None:
    head, tail = b'{"padding":"', b'"}'
    value = head + b"x" * (MAX_MESSAGE_BYTES - len(head) - len(tail)) + tail
    assert len(value) == MAX_MESSAGE_BYTES == 65_536
    at_limit = reject(*signed(value))  # parsed: refused for its shape, not its size
    assert (at_limit.code, str(at_limit)) == ("schema-violation",
                                              "field 'schema_version' is required")
    over = reject(*signed(head + b"x" + value[len(head):]))
    assert (over.code, over.field, over.value) == ("message-too-large", "(message)", 65_537)
    assert str(over) == "message value is 65,537 bytes; at most 65,536 are accepted"


def test_a_ship_date_one_day_ahead_is_accepted_and_two_days_ahead_is_not() -> None:
    tomorrow = envelope_dict({**SHIPMENT, "ship_date": "2025-09-02"})
    assert str(decode(*signed(tomorrow)).payload.ship_date) == "2025-09-02"
    e = reject(*signed(envelope_dict({**SHIPMENT, "ship_date": "2025-09-03"})))
    assert (e.code, e.field, e.value) == ("future-ship-date", "payload.ship_date", "2025-09-03")
    assert str(e) == ("ship_date 2025-09-03 is in the future (today is 2025-09-01, "
                      "tolerance 1 day)")


def test_sent_at_exactly_max_age_old_or_a_day_ahead_is_accepted() -> None:
    for sent in (NOW - WEEK, NOW + dt.timedelta(days=1)):
        envelope = decode(*signed(envelope_dict(sent_at=sent.isoformat())), max_age=WEEK)
        assert envelope.sent_at == sent


def test_sent_at_a_second_too_old_is_stale_and_a_second_too_far_ahead_is_future() -> None:
    old = NOW - WEEK - dt.timedelta(seconds=1)
    e = reject(*signed(envelope_dict(sent_at=old.isoformat())), max_age=WEEK)
    assert (e.code, e.field, e.value) == ("stale-message", "sent_at", old.isoformat())
    assert str(e) == ("sent_at 2025-08-25T11:59:59+00:00 is older than the accepted "
                      "7 days, 0:00:00 (now 2025-09-01T12:00:00+00:00); send it again as a "
                      "new message")
    ahead = NOW + dt.timedelta(days=1, seconds=1)
    e = reject(*signed(envelope_dict(sent_at=ahead.isoformat())), max_age=WEEK)
    assert (e.code, e.field, e.value) == ("future-sent-at", "sent_at", ahead.isoformat())
    assert str(e) == ("sent_at 2025-09-02T12:00:01+00:00 is in the future "
                      "(now 2025-09-01T12:00:00+00:00)")


def test_without_max_age_the_sent_time_is_not_checked() -> None:
    old = (NOW - dt.timedelta(days=400)).isoformat()
    assert decode(*signed(envelope_dict(sent_at=old))).sent_at.isoformat() == old


def test_a_repr_of_the_limit_is_kept_and_a_longer_one_is_cut() -> None:
    assert MAX_VALUE_REPR == 200
    kept = "a" * 198  # its repr, with the quotes, is 200 characters
    assert short_repr(kept) == repr(kept)
    cut = "a" * 199
    assert short_repr(cut) == "'" + "a" * 199 + "..."
    e = reject(*signed(envelope_dict(auth={"alg": "ed25519", "key_id": cut})))
    assert str(e) == f"key id {short_repr(cut)} is not in the keyring"


def test_the_first_signature_header_is_the_one_read() -> None:
    value, headers = signed(envelope_dict())
    other = ("ql-signature", base64.b64encode(sign(ACME, b"another message")))
    noise = ("ql-trace", b"abc")
    assert signature_of([noise, *headers, other]) == headers[0][1]
    assert decode(value, [noise, *headers, other]).exporter_id == "acme"
    assert reject(value, [noise, other, *headers]).code == "bad-signature"
    assert signature_of([noise]) is None


def test_signature_header_is_the_base64_of_the_signature() -> None:
    assert signature_header(b"\x00\xff") == ("ql-signature", b"AP8=")


def test_encode_envelope_is_compact_utf8_json_without_nulls() -> None:
    payload = {**PAYLOADS["shipment.voided"], "reason": "annulé"}
    value, _ = signed(envelope_dict(payload))
    envelope = decode(value, signed(value)[1])
    encoded = encode_envelope(envelope)
    assert "annulé".encode() in encoded and b'", "' not in encoded and b'": ' not in encoded
    assert b"null" not in encoded and b"command_id" not in encoded
    assert json.loads(encoded) == json.loads(value) | {"payload": {
        k: v for k, v in json.loads(value)["payload"].items() if v is not None}}


@pytest.mark.parametrize(("change", "code", "field", "says"), [
    ({"schema_version": True}, "unsupported-schema-version", "schema_version",
     "schema_version True is not supported (supported: 1)"),
    ({"auth": "acme"}, "schema-violation", "auth.key_id",
     "field 'auth.key_id' is required (a string)"),
    ({"auth": {"alg": "ed25519", "key_id": 7}}, "schema-violation", "auth.key_id",
     "field 'auth.key_id' is required (a string)"),
    ({"auth": {"alg": "rsa", "key_id": "acme"}}, "schema-violation", "auth.alg",
     "field 'auth.alg' must be 'ed25519', got 'rsa'"),
    ({"payload": ["shipment.voided"]}, "schema-violation", "payload",
     "field 'payload' must be a JSON object"),
    ({"payload": {k: v for k, v in PAYLOADS["shipment.voided"].items() if k != "reason"}},
     "schema-violation", "payload.reason", "field 'payload.reason' is required"),
])
def test_each_early_refusal_names_its_field_exactly(change: dict[str, Any], code: str,
                                                    field: str, says: str) -> None:
    e = reject(*signed(envelope_dict(**change)))
    assert (e.code, e.field, str(e)) == (code, field, says)


def test_a_signature_header_that_is_empty_or_not_base64_is_refused() -> None:
    value, _ = signed(envelope_dict())
    e = reject(value, [("ql-signature", b"")])
    assert (e.code, e.field, str(e)) == ("unsigned", "ql-signature",
                                         "message has no ql-signature header")
    e = reject(value, [("ql-signature", b"not base64!")])
    assert (e.code, e.field, str(e)) == ("bad-signature", "ql-signature",
                                         "ql-signature header is not base64")


def test_a_key_id_the_worker_verified_skips_only_the_signature_check() -> None:
    value, headers = signed(envelope_dict())
    altered = value.replace(b'"quantity": 10', b'"quantity": 11')
    assert decode(altered, headers, verified_key_id="acme").payload.quantity == 11
    e = reject(altered, headers, verified_key_id="acme", key=b"globex")
    assert e.code == "wrong-key"


def test_without_a_kafka_key_or_catalog_those_checks_are_skipped() -> None:
    value, headers = signed(envelope_dict({**SHIPMENT, "product_id": "acme-chip-9"}))
    envelope = decode_message(value, headers, KEYRING, key=None, catalog=None, now=NOW)
    assert envelope.payload.product_id == "acme-chip-9"


@pytest.mark.parametrize(("payload", "accepted"), [
    (PAYLOADS["shipment.voided"], True),
    ({**PAYLOADS["shipment.corrected"], "quantity": 3}, True),
    ({**PAYLOADS["shipment.corrected"], "product_id": "acme-chip-9", "tpp_per_unit": 900},
     True),
    ({**PAYLOADS["shipment.corrected"], "product_id": "acme-chip-9"}, False),
    ({**SHIPMENT, "product_id": "acme-chip-9", "tpp_per_unit": 900}, True),
])
def test_an_unknown_product_is_refused_only_without_a_tpp_per_unit(payload: dict[str, Any],
                                                                   accepted: bool) -> None:
    value, headers = signed(envelope_dict(payload))
    if accepted:
        assert decode(value, headers).payload.type == payload["type"]
    else:
        e = reject(value, headers)
        assert (e.code, e.field, e.value) == ("unknown-product", "payload.product_id",
                                              "acme-chip-9")


@pytest.mark.parametrize(("error", "reason"), [
    (Rejected("stale-message", "old"), "stale-message"),
    (ConflictingDuplicate("x"), "conflicting-duplicate"),
    (NotFound("x"), "unknown-shipment"),
    (InvalidTransition("x"), "voided-shipment"),
    (RevivesAllocation("x"), "voided-shipment"),
    (UnknownProduct("x", field="product_id"), "unknown-product"),
    (ValidationError("x", field="ship_date"), "future-ship-date"),
    (ValidationError("x", field="quantity"), "invalid"),
    (StorageError("x"), "storage"),
    (LedgerError("x"), "ledger-error"),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v)
def test_the_dead_letter_reason_of_each_error(error: LedgerError, reason: str) -> None:
    assert reason_of(error) == reason


def test_a_value_error_is_quoted_without_pydantic_s_prefix() -> None:
    e = reject(*signed(envelope_dict({**SHIPMENT, "destination": "XX"})))
    assert (e.code, e.field, e.value) == ("unknown-country", "payload.destination", "XX")
    assert str(e) == ("field 'payload.destination': destination must be an ISO 3166-1 "
                      "alpha-2 code, got 'XX'")


def test_json_that_only_pydantic_refuses_is_a_violation_of_the_whole_message() -> None:
    """A lone surrogate escape passes ``json.loads`` but not pydantic's parser, whose
    error has no location: the reason names the message, not a field."""
    value = json.dumps(envelope_dict(PAYLOADS["shipment.voided"])).encode().replace(
        b'"order cancelled"', b'"\\ud800"')
    e = reject(*signed(value))
    assert (e.code, e.field) == ("schema-violation", "(message)")
    assert str(e).startswith("field '(message)': Invalid JSON: ")


@pytest.mark.parametrize(("change", "code", "field", "value", "says"), [
    ({"colour": "red"}, "schema-violation", "payload.colour", "red",
     "field 'payload.colour' is not allowed here (value: 'red')"),
    ({"quantity": 0}, "non-positive-quantity", "payload.quantity", 0,
     "field 'payload.quantity' must be a positive integer, got 0"),
    ({"tpp_per_unit": 0}, "non-positive-quantity", "payload.tpp_per_unit", 0,
     "field 'payload.tpp_per_unit' must be a positive integer, got 0"),
    ({"quantity": "many"}, "schema-violation", "payload.quantity", "many",
     "field 'payload.quantity': Input should be a valid integer (value: 'many')"),
])
def test_a_payload_refusal_carries_the_field_and_the_value(change: dict[str, Any], code: str,
                                                           field: str, value: Any,
                                                           says: str) -> None:
    e = reject(*signed(envelope_dict({**SHIPMENT, **change})))
    assert (e.code, e.field, e.value, str(e)) == (code, field, value, says)


ADMIN = {"type": "allocation.granted", "allocation_id": "L1", "country": "MX",
         "tpp_amount": 1, "valid_from": "2025-01-01"}


def _refusal(case: str) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """(value, headers, Kafka key) of one bad message."""
    if case == "empty":
        return b"", [], b"acme"
    if case == "array":
        return (*signed(b"[1, 2]"), b"acme")
    if case == "duplicate-key":
        text = json.dumps(envelope_dict()).replace('"quantity": 10',
                                                   '"quantity": 10, "quantity": 1000')
        return (*signed(text.encode()), b"acme")
    changes: dict[str, Any] = {
        "no-version": {"schema_version": None},
        "version": {"schema_version": 2},
        "unknown-key": {"auth": {"alg": "ed25519", "key_id": "nobody"}},
        "alg": {"auth": {"alg": "rsa", "key_id": "acme"}},
        "auth": {"auth": "acme"},
        "claims-b": {"exporter_id": "globex"},
        "payload": {"payload": ["x"]},
        "admin": {"payload": ADMIN},
        "wrong-type": {"payload": {**SHIPMENT, "type": "shipment.exploded"}},
        "foreign-payload": {"payload": {**SHIPMENT, "exporter_id": "globex"}},
    }.get(case, {})
    data = envelope_dict(**changes)
    if case == "no-version":
        del data["schema_version"]
    return (*signed(data), b"globex" if case == "wrong-key" else b"acme")


@pytest.mark.parametrize(("case", "code", "field", "value", "says"), [
    ("empty", "empty-message", "(message)", None, "message value is empty"),
    ("array", "schema-violation", "(message)", [1, 2], "message must be a JSON object, got list"),
    ("no-version", "schema-violation", "schema_version", None,
     "field 'schema_version' is required"),
    ("version", "unsupported-schema-version", "schema_version", 2,
     "schema_version 2 is not supported (supported: 1)"),
    ("auth", "schema-violation", "auth.key_id", "acme",
     "field 'auth.key_id' is required (a string)"),
    ("alg", "schema-violation", "auth.alg", "rsa",
     "field 'auth.alg' must be 'ed25519', got 'rsa'"),
    ("unknown-key", "unknown-key", "auth.key_id", "nobody",
     "key id 'nobody' is not in the keyring"),
    ("claims-b", "exporter-mismatch", "exporter_id", "globex",
     "message claims exporter_id 'globex' but is signed with key 'acme' of exporter 'acme'"),
    ("payload", "schema-violation", "payload", ["x"], "field 'payload' must be a JSON object"),
    ("admin", "admin-event", "payload.type", "allocation.granted",
     "payload type 'allocation.granted' is written only by administrators through the CLI; "
     "the exporter topic takes shipment events only"),
    ("wrong-type", "wrong-payload-type", "payload.type", "shipment.exploded",
     "payload type 'shipment.exploded' is not one of shipment.recorded, shipment.corrected, "
     "shipment.voided"),
    ("duplicate-key", "duplicate-key", "quantity", 1000,
     "field 'quantity' is given twice (10 then 1000)"),
    ("foreign-payload", "exporter-mismatch", "payload.exporter_id", "globex",
     "exporter 'acme' sent a shipment in the name of 'globex'"),
    ("wrong-key", "wrong-key", "(key)", b"globex",
     "Kafka message key b'globex' must be the exporter id 'acme' (it keeps an exporter's "
     "messages in order)"),
])
def test_each_refusal_carries_its_code_field_value_and_words(case: str, code: str, field: str,
                                                             value: Any, says: str) -> None:
    message, headers, kafka_key = _refusal(case)
    e = reject(message, headers, key=kafka_key)
    assert (e.code, e.field, e.value, str(e)) == (code, field, value, says)


def test_a_signature_header_with_a_character_outside_base64_is_refused() -> None:
    value, ((name, signature),) = signed(envelope_dict())
    e = reject(value, [(name, signature[:8] + b"*" + signature[8:])])
    assert (e.code, str(e)) == ("bad-signature", "ql-signature header is not base64")


def test_anything_else_that_goes_wrong_is_an_invalid_message_not_an_exception() -> None:
    value, _ = signed(envelope_dict())
    with pytest.raises(Rejected) as info:
        decode_message(value, [("ql-signature",)], KEYRING)  # type: ignore[list-item]
    e = info.value
    assert (e.code, e.field, str(e)) == (
        "invalid", None,
        "message could not be checked: ValueError: not enough values to unpack "
        "(expected 2, got 1)")


def test_a_die_area_for_a_catalog_product_is_refused_on_the_wire() -> None:
    e = reject(*signed(envelope_dict({**SHIPMENT, "die_area_mm2": 814})))
    assert (e.code, e.field, e.value, str(e)) == (
        "die-area-for-catalog-product", "payload.die_area_mm2", "814",
        "die_area_mm2 814 is given for 'nvidia-h100-sxm', which is in the catalog (its "
        "density comes from there); a die area is declared only for a product not in the "
        "catalog")
    assert reason_of(ValidationError("x", field="die_area_mm2")) \
        == "die-area-for-catalog-product"
