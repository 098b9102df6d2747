"""Exporters' Ed25519 keys: key files, the keyring file, signing and verifying. Every bad
file is refused with a ConfigurationError naming the file (and the entry)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key as ec_key

from consumers.signing import (
    Keyring,
    PublicKey,
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_from_text,
    public_key_text,
    sign,
)
from ledger.errors import ConfigurationError

KEY = generate_private_key()


def test_a_signature_verifies_only_for_the_exact_bytes_and_the_right_key() -> None:
    public = PublicKey("acme-2025", "acme", KEY.public_key())
    signature = sign(KEY, b"message")
    assert len(signature) == 64
    assert public.verify(signature, b"message") is True
    assert public.verify(signature, b"message ") is False
    assert public.verify(sign(generate_private_key(), b"message"), b"message") is False


def test_public_key_text_round_trips_as_32_raw_bytes() -> None:
    text = public_key_text(KEY.public_key())
    assert len(base64.b64decode(text)) == 32
    assert public_key_text(public_key_from_text(text)) == text
    with pytest.raises(ConfigurationError, match=r"entry 3: public_key must be the base64 of 32"):
        public_key_from_text(base64.b64encode(b"short").decode(), "entry 3")
    with pytest.raises(ConfigurationError, match=r"^public key: public_key must be the base64 "
                                                 r"of 32 raw Ed25519 bytes, got 'not base64!'$"):
        public_key_from_text("not base64!")
    # characters outside the base64 alphabet are refused, not skipped
    with pytest.raises(ConfigurationError, match="public_key must be the base64"):
        public_key_from_text(text[:8] + "!" + text[8:])


def test_private_key_file_round_trips_with_and_without_a_passphrase(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pem"
    plain.write_bytes(private_key_pem(KEY))
    assert private_key_pem(KEY).startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_key_text(load_private_key(plain).public_key()) == \
        public_key_text(KEY.public_key())
    locked = tmp_path / "locked.pem"
    locked.write_bytes(KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    loaded = load_private_key(locked, b"secret")
    assert public_key_text(loaded.public_key()) == public_key_text(KEY.public_key())
    with pytest.raises(ConfigurationError, match="or the passphrase is wrong"):
        load_private_key(locked, b"wrong")


def test_bad_private_key_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError,
                       match=f"cannot read key file {str(missing)!r}: No such file"):
        load_private_key(missing)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(ConfigurationError, match=f"key file {str(junk)!r} is not a PEM private"):
        load_private_key(junk)
    ec = tmp_path / "ec.pem"
    ec.write_bytes(ec_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ConfigurationError,
                       match=f"key file {str(ec)!r} holds a ECPrivateKey, not an "
                             "Ed25519 key"):
        load_private_key(ec)


def keyring_file(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(data))
    return path


def entry(key_id: str, exporter_id: str = "acme") -> dict[str, str]:
    return {"key_id": key_id, "exporter_id": exporter_id,
            "public_key": public_key_text(KEY.public_key())}


def test_a_keyring_file_gives_each_key_id_its_exporter(tmp_path: Path) -> None:
    ring = Keyring.load(keyring_file(tmp_path, {"keys": [entry("a-1"), entry("g-1", "globex")]}))
    assert len(ring) == 2
    a1, g1 = ring.get("a-1"), ring.get("g-1")
    assert a1 is not None and (a1.key_id, a1.exporter_id) == ("a-1", "acme")
    assert g1 is not None and g1.exporter_id == "globex"
    assert g1.verify(sign(KEY, b"x"), b"x")
    assert ring.get("nobody") is None
    assert len(Keyring([])) == 0


@pytest.mark.parametrize(("data", "says"), [
    ("[not json", "is not valid JSON"),
    ([1, 2], 'must be an object with a "keys" list'),
    ({"keys": {"a": 1}}, 'must be an object with a "keys" list'),
    ({"keys": [entry("a-1"), "a-2"]},
     "entry 1: needs string fields key_id, exporter_id and public_key"),
    ({"keys": [{**entry("a-1"), "exporter_id": ""}]}, "entry 0: needs string fields"),
    ({"keys": [{**entry("a-1"), "key_id": 7}]}, "entry 0: needs string fields"),
    ({"keys": [{"key_id": "a-1", "exporter_id": "acme"}]}, "entry 0: needs string fields"),
    ({"keys": [{**entry("a-1"), "public_key": "AAAA"}]},
     "entry 0: public_key must be the base64 of 32 raw Ed25519 bytes"),
    ({"keys": [entry("a-1"), entry("b-1"), entry("a-1", "globex")]},
     "key ids used twice: \\['a-1'\\]"),
])
def test_bad_keyrings_are_refused_naming_file_and_entry(tmp_path: Path, data: object,
                                                         says: str) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(ConfigurationError, match=f"keyring {str(path)!r}.*{says}"):
        Keyring.load(path)


def test_an_unreadable_keyring_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigurationError,
                       match=f"^cannot read keyring {str(missing)!r}: No such file"):
        Keyring.load(missing)
