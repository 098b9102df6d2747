"""The wire format and its decoder, without a broker: every rejection reason, forgery,
the JSON Schema files, and a hypothesis fuzz (only ``Rejected`` ever escapes)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from consumers.envelope import Rejected, decode_message, encode_envelope
from consumers.producer import MessageSigner, shipment_command
from consumers.signing import Keyring, PublicKey, generate_private_key, sign
from ledger.catalog import bundled_catalog
from ledger.errors import ValidationError

ACME = generate_private_key()
GLOBEX = generate_private_key()
KEYRING = Keyring([PublicKey("acme", "acme", ACME.public_key()),
                   PublicKey("globex", "globex", GLOBEX.public_key())])
NOW = dt.datetime(2025, 9, 1, 12, tzinfo=dt.UTC)

SHIPMENT: dict[str, Any] = {
    "type": "shipment.recorded", "exporter_id": "acme", "shipment_ref": "A-1",
    "ship_date": "2025-06-02", "destination": "MX", "consignee_id": "c-1",
    "product_id": "nvidia-h100-sxm", "quantity": 10, "authorization": {"kind": "none"},
}

#: one object of every payload type an exporter may send
PAYLOADS: dict[str, dict[str, Any]] = {
    "shipment.recorded": SHIPMENT,
    "shipment.corrected": {"type": "shipment.corrected", "exporter_id": "acme",
                           "shipment_ref": "A-1", "quantity": 12, "reason": "recount"},
    "shipment.voided": {"type": "shipment.voided", "exporter_id": "acme",
                        "shipment_ref": "A-1", "reason": "order cancelled"},
}
#: every reason a decoded message can be rejected with (the dead-letter reasons)
REASONS = {
    "empty-message", "malformed-json", "schema-violation", "unsupported-schema-version",
    "unsigned", "unknown-key", "bad-signature", "exporter-mismatch", "admin-event",
    "wrong-payload-type", "unknown-country", "non-positive-quantity", "wrong-key",
    "unknown-product", "future-ship-date", "die-area-for-catalog-product",
}


def envelope_dict(payload: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    data = json.loads(encode_envelope(MessageSigner("acme", ACME).envelope(
        shipment_command(SHIPMENT, "acme"))))
    if payload is not None:
        data["payload"] = payload
    data.update(changes)
    return data


def signed(data: dict[str, Any] | bytes, key: Any = ACME) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = data if isinstance(data, bytes) else json.dumps(data).encode()
    return value, [("ql-signature", base64.b64encode(sign(key, value)))]


def reject(value: bytes | None, headers: list[tuple[str, bytes]], **kw: Any) -> Rejected:
    with pytest.raises(Rejected) as info:
        decode_message(value, headers, KEYRING, catalog=bundled_catalog(), now=NOW, **kw)
    return info.value


def test_a_signed_message_decodes_to_its_shipment() -> None:
    key, value, headers = MessageSigner("acme", ACME).message(SHIPMENT)
    envelope = decode_message(value, headers, KEYRING, key=key, catalog=bundled_catalog(),
                              now=NOW)
    assert envelope.exporter_id == "acme"
    assert envelope.payload == shipment_command(SHIPMENT, "acme")
    assert key == b"acme"


@pytest.mark.parametrize(("case", "reason", "field", "says"), [
    ("malformed", "malformed-json", "(message)", "message value is not JSON"),
    ("empty", "empty-message", "(message)", "message value is empty"),
    ("array", "schema-violation", "(message)", "must be a JSON object, got list"),
    ("version", "unsupported-schema-version", "schema_version",
     "schema_version 2 is not supported (supported: 1)"),
    ("unsigned", "unsigned", "ql-signature", "message has no ql-signature header"),
    ("unknown-key", "unknown-key", "auth.key_id", "key id 'nobody' is not in the keyring"),
    ("tampered", "bad-signature", "ql-signature",
     "signature does not verify with key 'acme' of exporter 'acme'"),
    ("a-claims-b", "exporter-mismatch", "exporter_id",
     "message claims exporter_id 'globex' but is signed with key 'acme'"),
    ("foreign-payload", "exporter-mismatch", "payload.exporter_id",
     "exporter 'acme' sent a shipment in the name of 'globex'"),
    ("admin", "admin-event", "payload.type",
     "payload type 'allocation.granted' is written only by administrators"),
    ("wrong-type", "wrong-payload-type", "payload.type",
     "payload type 'shipment.exploded' is not one of"),
    ("bad-field", "schema-violation", "payload.quantity", "field 'payload.quantity'"),
    ("extra-field", "schema-violation", "payload.colour",
     "field 'payload.colour' is not allowed here (value: 'red')"),
    ("country", "unknown-country", "payload.destination", "field 'payload.destination'"),
    ("quantity", "non-positive-quantity", "payload.quantity",
     "field 'payload.quantity' must be a positive integer, got 0"),
    ("product", "unknown-product", "payload.product_id",
     "product_id 'acme-chip-9' is not in the catalog and no tpp_per_unit is given"),
    ("die-area", "die-area-for-catalog-product", "payload.die_area_mm2",
     "die_area_mm2 814.5 is given for 'nvidia-h100-sxm', which is in the catalog"),
    ("die-area-string", "schema-violation", "payload.die_area_mm2",
     "must be a JSON number of mm² (e.g. 814.5), got the string '814.5'"),
    ("die-area-zero", "schema-violation", "payload.die_area_mm2", "greater than 0"),
    ("future", "future-ship-date", "payload.ship_date",
     "ship_date 2025-09-05 is in the future (today is 2025-09-01, tolerance 1 day)"),
    ("key", "wrong-key", "(key)", "Kafka message key b'globex' must be the exporter id 'acme'"),
])
def test_each_bad_message_is_rejected_with_its_reason(case: str, reason: str, field: str,
                                                     says: str) -> None:
    kafka_key = b"acme"
    if case == "malformed":
        value, headers = signed(b"{not json")
    elif case == "empty":
        value, headers = b"", []
    elif case == "array":
        value, headers = signed(b"[1, 2]")
    elif case == "version":
        value, headers = signed(envelope_dict(schema_version=2))
    elif case == "unsigned":
        value, headers = json.dumps(envelope_dict()).encode(), []
    elif case == "unknown-key":
        value, headers = signed(envelope_dict(auth={"alg": "ed25519", "key_id": "nobody"}))
    elif case == "tampered":
        value, headers = signed(envelope_dict())
        value = value.replace(b'"quantity": 10', b'"quantity": 1')
    elif case == "a-claims-b":
        value, headers = signed(envelope_dict(exporter_id="globex"))
    elif case == "foreign-payload":
        value, headers = signed(envelope_dict({**SHIPMENT, "exporter_id": "globex"}))
    elif case == "admin":
        value, headers = signed(envelope_dict({"type": "allocation.granted", "allocation_id": "L1",
                                               "country": "MX", "tpp_amount": 1,
                                               "valid_from": "2025-01-01"}))
    elif case == "wrong-type":
        value, headers = signed(envelope_dict({**SHIPMENT, "type": "shipment.exploded"}))
    elif case == "bad-field":
        value, headers = signed(envelope_dict({**SHIPMENT, "quantity": "many"}))
    elif case == "extra-field":
        value, headers = signed(envelope_dict({**SHIPMENT, "colour": "red"}))
    elif case == "country":
        value, headers = signed(envelope_dict({**SHIPMENT, "destination": "XX"}))
    elif case == "quantity":
        value, headers = signed(envelope_dict({**SHIPMENT, "quantity": 0}))
    elif case == "product":
        value, headers = signed(envelope_dict({**SHIPMENT, "product_id": "acme-chip-9"}))
    elif case == "future":
        value, headers = signed(envelope_dict({**SHIPMENT, "ship_date": "2025-09-05"}))
    elif case == "die-area":
        value, headers = signed(envelope_dict({**SHIPMENT, "die_area_mm2": 814.5}))
    elif case == "die-area-string":
        value, headers = signed(envelope_dict({**SHIPMENT, "product_id": "acme-chip-9",
                                               "tpp_per_unit": 2368, "die_area_mm2": "814.5"}))
    elif case == "die-area-zero":
        value, headers = signed(envelope_dict({**SHIPMENT, "product_id": "acme-chip-9",
                                               "tpp_per_unit": 2368, "die_area_mm2": 0}))
    else:
        value, headers = signed(envelope_dict())
        kafka_key = b"globex"
    error = reject(value, headers, key=kafka_key)
    assert (error.code, error.field) == (reason, field), str(error)
    assert says in str(error)


# --- forgery and tampering, for every payload type an exporter may send ----------------


def message_of(payload: str, key: Any = ACME, key_id: str = "acme",
               exporter: str = "acme") -> tuple[bytes, list[tuple[str, bytes]]]:
    """A message of ``payload`` type claiming ``exporter``, signed by ``key``, naming
    ``key_id``."""
    data = envelope_dict({**PAYLOADS[payload], "exporter_id": exporter},
                         exporter_id=exporter, auth={"alg": "ed25519", "key_id": key_id})
    return signed(data, key)


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_payload_type_decodes_when_signed_by_its_exporter(payload: str) -> None:
    envelope = decode_message(*message_of(payload), KEYRING, key=b"acme",
                              catalog=bundled_catalog(), now=NOW)
    assert envelope.payload.type == payload
    assert envelope.payload.model_dump(mode="json", exclude_none=True) == PAYLOADS[payload]


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_payload_type_tampered_after_signing_is_refused(payload: str) -> None:
    value, headers = message_of(payload)
    tampered = value.replace(b'"shipment_ref": "A-1"', b'"shipment_ref": "A-2"')
    assert tampered != value
    error = reject(tampered, headers, key=b"acme")
    assert (error.code, error.field) == ("bad-signature", "ql-signature")


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_payload_type_forged_with_another_key_is_refused(payload: str) -> None:
    # globex signs a message in acme's name, naming acme's key: a forged void would
    # erase acme's shipment
    error = reject(*message_of(payload, key=GLOBEX), key=b"acme")
    assert (error.code, error.field) == ("bad-signature", "ql-signature")
    assert "signature does not verify with key 'acme'" in str(error)


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_payload_type_with_a_signature_of_another_message_is_refused(payload: str
                                                                          ) -> None:
    value, _ = message_of(payload)
    _, other_headers = message_of("shipment.recorded" if payload != "shipment.recorded"
                                  else "shipment.voided")
    assert reject(value, other_headers, key=b"acme").code == "bad-signature"


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_payload_type_unsigned_or_signed_by_its_own_key_for_another_is_refused(
        payload: str) -> None:
    value, _ = message_of(payload)
    assert reject(value, [], key=b"acme").code == "unsigned"
    assert reject(value, [("ql-signature", b"not base64!")], key=b"acme").code == "bad-signature"
    # globex signs honestly with its own key but claims to be acme
    error = reject(*message_of(payload, key=GLOBEX, key_id="globex"), key=b"acme")
    assert (error.code, error.field) == ("exporter-mismatch", "exporter_id")


def test_reasons_name_the_value() -> None:
    error = reject(*signed(envelope_dict({**SHIPMENT, "quantity": "many"})))
    assert "'many'" in str(error) and "payload.quantity" in str(error)
    error = reject(*signed(envelope_dict({**SHIPMENT, "destination": "XX"})))
    assert "'XX'" in str(error)


def test_a_message_signed_by_a_claiming_b_is_refused_even_with_b_key_id() -> None:
    # acme signs but names globex's key: the signature cannot verify
    data = envelope_dict({**SHIPMENT, "exporter_id": "globex"}, exporter_id="globex",
                         auth={"alg": "ed25519", "key_id": "globex"})
    assert reject(*signed(data, ACME)).code == "bad-signature"


def test_signature_covers_the_exact_bytes() -> None:
    value, headers = signed(envelope_dict())
    # same JSON meaning, different bytes: not what was signed
    respaced = json.dumps(json.loads(value), indent=1).encode()
    assert reject(respaced, headers).code == "bad-signature"


def test_producer_refuses_admin_events_and_other_exporters() -> None:
    with pytest.raises(ValidationError, match="cannot be published by an exporter"):
        shipment_command({"type": "rule.published", "document": {}}, "acme")
    with pytest.raises(ValidationError, match="'globex' is not the publishing exporter"):
        shipment_command({**SHIPMENT, "exporter_id": "globex"}, "acme")


def test_checked_in_json_schemas_match_the_models() -> None:
    from consumers.schemas import drift

    assert drift() == [], "run: python -m consumers.schemas"


def published_schema() -> Draft202012Validator:
    """The checked-in JSON Schema of the message, as an exporter would use it."""
    from consumers.schemas import SCHEMA_DIR

    schema = json.loads((SCHEMA_DIR / "shipment-message.v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _with_context(errors: list[Any]) -> list[Any]:
    out = []
    for e in errors:
        out.append(e)
        out.extend(_with_context(list(e.context or [])))
    return out


DECLARED = {**SHIPMENT, "product_id": "acme-chip-9", "tpp_per_unit": 2368,
            "die_area_mm2": "814.5"}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_the_published_schema_accepts_a_real_message(payload: str) -> None:
    _, value, _ = MessageSigner("acme", ACME).message(PAYLOADS[payload])
    errors = list(published_schema().iter_errors(json.loads(value)))
    assert errors == []


@pytest.mark.parametrize(("change", "path", "says"), [
    ({"payload": {**SHIPMENT, "quantity": 0}}, ["payload", "quantity"], "0 is less than or equal"),
    ({"payload": {**SHIPMENT, "colour": "red"}}, ["payload"], "'colour' was unexpected"),
    ({"schema_version": 2}, ["schema_version"], "1 was expected"),
    ({"auth": {"alg": "rsa", "key_id": "acme"}}, ["auth", "alg"], "'ed25519' was expected"),
    ({"message_id": None}, ["message_id"], "None is not of type 'string'"),
    ({"payload": {**SHIPMENT, "product_id": "acme-chip-9", "tpp_per_unit": 2368,
                  "die_area_mm2": "814"}}, ["payload", "die_area_mm2"], "is not of type"),
    ({"payload": {**SHIPMENT, "product_id": "acme-chip-9", "tpp_per_unit": 2368,
                  "die_area_mm2": 0}}, ["payload", "die_area_mm2"], "less than or equal"),
])
def test_the_published_schema_rejects_a_bad_message(change: dict[str, Any], path: list[str],
                                                    says: str) -> None:
    errors = list(published_schema().iter_errors(envelope_dict(**change)))
    assert errors, f"the schema accepted {change}"
    # the payload is one of three shapes: the reason is inside the failed alternative
    reasons = [(list(e.absolute_path), e.message) for e in _with_context(errors)]
    assert any(where == path and says in message for where, message in reasons), reasons
    # the decoder refuses the same message
    assert reject(*signed(envelope_dict(**change))).code in REASONS


# --- fuzz ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=15), children, max_size=6),
    max_leaves=30,
)
envelope_like = st.fixed_dictionaries(
    {"schema_version": st.sampled_from([1, 2, "1", None, True]),
     "exporter_id": st.sampled_from(["acme", "globex", "", 7]),
     "auth": st.sampled_from([{"alg": "ed25519", "key_id": "acme"}, {"key_id": "acme"}, None]),
     "payload": st.one_of(json_values, st.fixed_dictionaries(
         {k: st.one_of(st.just(v), json_values) for k, v in SHIPMENT.items()}))},
    optional={"message_id": json_values, "sent_at": json_values, "extra": json_values},
)


def _decode_or_reject(value: bytes, headers: list[tuple[str, bytes]]) -> None:
    try:
        envelope = decode_message(value, headers, KEYRING, key=b"acme",
                                  catalog=bundled_catalog(), now=NOW)
    except Rejected as e:
        # a documented reason, never the catch-all for an exception the decoder did not
        # expect, and the field it is about
        assert e.code in REASONS, (e.code, str(e))
        assert e.field is not None, (e.code, str(e))
    else:
        # only a message signed by acme's key, claiming acme, gets through
        assert envelope.exporter_id == "acme" and envelope.auth.key_id == "acme"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.tuples(st.sampled_from(["ql-signature", "x"]),
                                                   st.binary(max_size=90)), max_size=2))
def test_fuzz_random_bytes_only_raise_rejected(value: bytes, headers: list[tuple[str, bytes]]
                                               ) -> None:
    _decode_or_reject(value, headers)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_random_json_only_raises_rejected(data: Any) -> None:
    _decode_or_reject(*signed(json.dumps(data).encode()))


@settings(max_examples=300, deadline=None)
@given(envelope_like)
def test_fuzz_signed_envelope_shapes_only_raise_rejected(data: dict[str, Any]) -> None:
    # signed with a valid key, so the decoder goes past the signature into the payload
    _decode_or_reject(*signed(json.dumps(data).encode()))


def test_a_declared_die_area_is_sent_as_a_json_number_and_decodes_exactly() -> None:
    """The producer validates a line leniently (a CSV cell is text), but the wire is
    strict: the die area goes out as a JSON number, and comes back exact."""
    _, value, headers = MessageSigner("acme", ACME).message(DECLARED)
    assert json.loads(value)["payload"]["die_area_mm2"] == 814.5
    assert list(published_schema().iter_errors(json.loads(value))) == []
    envelope = decode_message(value, headers, KEYRING, key=b"acme", catalog=bundled_catalog(),
                              now=NOW)
    assert str(envelope.payload.die_area_mm2) == "814.5"
