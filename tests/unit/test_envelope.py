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


@pytest.mark.parametrize(("case", "reason", "field"), [
    ("malformed", "malformed-json", "(message)"),
    ("empty", "empty-message", "(message)"),
    ("array", "schema-violation", "(message)"),
    ("version", "unsupported-schema-version", "schema_version"),
    ("unsigned", "unsigned", "ql-signature"),
    ("unknown-key", "unknown-key", "auth.key_id"),
    ("tampered", "bad-signature", "ql-signature"),
    ("a-claims-b", "exporter-mismatch", "exporter_id"),
    ("foreign-payload", "exporter-mismatch", "payload.exporter_id"),
    ("admin", "admin-event", "payload.type"),
    ("wrong-type", "wrong-payload-type", "payload.type"),
    ("bad-field", "schema-violation", "payload.quantity"),
    ("extra-field", "schema-violation", "payload.colour"),
    ("country", "unknown-country", "payload.destination"),
    ("quantity", "non-positive-quantity", "payload.quantity"),
    ("product", "unknown-product", "payload.product_id"),
    ("future", "future-ship-date", "payload.ship_date"),
    ("key", "wrong-key", "(key)"),
])
def test_each_bad_message_is_rejected_with_its_reason(case: str, reason: str, field: str) -> None:
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
    else:
        value, headers = signed(envelope_dict())
        kafka_key = b"globex"
    error = reject(value, headers, key=kafka_key)
    assert (error.code, error.field) == (reason, field), str(error)
    assert str(error)


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


def test_schema_validates_a_real_message() -> None:
    from consumers.envelope import Envelope
    from consumers.schemas import schema_of

    schema = schema_of("x", Envelope)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"schema_version", "exporter_id", "message_id",
                                       "sent_at", "auth", "payload"}


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
        decode_message(value, headers, KEYRING, key=b"acme", catalog=bundled_catalog(), now=NOW)
    except Rejected as e:
        assert e.code and str(e)


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
