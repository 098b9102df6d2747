"""Ed25519 keys for exporters: private key files, the consumer's keyring, sign and verify.

Each exporter holds an Ed25519 private key (a PEM file, PKCS#8, unencrypted or
protected by a passphrase); the ledger holds only the public keys, in a keyring file:

.. code-block:: json

    {"keys": [{"key_id": "acme-2025", "exporter_id": "acme",
               "public_key": "<base64 of the 32 raw public key bytes>"}]}

A key id names one key of one exporter, so an exporter can rotate keys (two entries
during the overlap). Ed25519 rather than HMAC: the ledger can verify but never sign,
so a leaked keyring cannot forge shipments, and a signed message is evidence an
auditor can check without trusting the ledger's operators.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import ConfigurationError

#: the only signature algorithm of schema version 1
ALGORITHM = "ed25519"


@dataclass(frozen=True)
class PublicKey:
    """One keyring entry: a key id, the exporter it belongs to, its public key."""

    key_id: str
    exporter_id: str
    key: Ed25519PublicKey

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` is this key's signature of exactly ``data``."""
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class Keyring:
    """The public keys the consumer accepts, by key id."""

    def __init__(self, keys: list[PublicKey]) -> None:
        self._by_id = {k.key_id: k for k in keys}

    def get(self, key_id: str) -> PublicKey | None:
        return self._by_id.get(key_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def keys(self) -> list[PublicKey]:
        return list(self._by_id.values())

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """Read a keyring file. Raises ConfigurationError naming the file and entry."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigurationError(f"cannot read keyring {str(path)!r}: {e.strerror}") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"keyring {str(path)!r} is not valid JSON: {e}") from e
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ConfigurationError(
                f'keyring {str(path)!r} must be an object with a "keys" list')
        keys: list[PublicKey] = []
        for i, entry in enumerate(entries):
            where = f"keyring {str(path)!r}, entry {i}"
            if not isinstance(entry, dict) or not all(
                    isinstance(entry.get(f), str) and entry.get(f)
                    for f in ("key_id", "exporter_id", "public_key")):
                raise ConfigurationError(
                    f"{where}: needs string fields key_id, exporter_id and public_key")
            keys.append(PublicKey(entry["key_id"], entry["exporter_id"],
                                  public_key_from_text(entry["public_key"], where)))
        ids = [k.key_id for k in keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ConfigurationError(f"keyring {str(path)!r}: key ids used twice: {dupes}")
        return cls(keys)


def public_key_from_text(text: str, where: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from the base64 of its 32 raw bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as e:
        raise ConfigurationError(
            f"{where}: public_key must be the base64 of 32 raw Ed25519 bytes, got {text!r}"
        ) from e


def public_key_text(key: Ed25519PublicKey) -> str:
    """The base64 of the 32 raw public key bytes (the keyring's format)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (protect the file with its permissions)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Read an exporter's Ed25519 private key (PEM). Raises ConfigurationError."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"cannot read key file {str(path)!r}: {e.strerror}") from e
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ConfigurationError(
            f"key file {str(path)!r} is not a PEM private key (or the passphrase is wrong): {e}"
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(
            f"key file {str(path)!r} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of exactly ``data``."""
    return key.sign(data)
