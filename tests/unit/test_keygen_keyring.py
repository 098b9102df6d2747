"""``ledger keygen --keyring FILE``: the public key goes into the keyring file that
``ledger consume --keyring`` reads, and a message signed with the private key
verifies against it. A key id already in the ring, or a broken ring, is refused
before any key is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from consumers.signing import Keyring, load_private_key, sign
from ledger.cli import main


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_keygen_creates_then_extends_a_keyring(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    first = run("keygen", "--exporter", "acme", "--key-id", "acme-2025",
                "--out", str(tmp_path / "a.pem"), "--keyring", str(ring))
    assert first.exit_code == 0, first.output
    second = run("keygen", "--exporter", "globex", "--out", str(tmp_path / "g.pem"),
                 "--keyring", str(ring))
    assert second.exit_code == 0, second.output
    loaded = Keyring.load(ring)
    assert len(loaded) == 2
    key = loaded.get("acme-2025")
    assert key is not None and key.exporter_id == "acme"
    message = b'{"schema_version": 1}'
    signature = sign(load_private_key(tmp_path / "a.pem"), message)
    assert key.verify(signature, message)
    printed = json.loads(first.stdout.strip().splitlines()[-1])
    assert printed == json.loads(ring.read_text())["keys"][0]


def test_a_key_id_already_in_the_ring_is_refused_before_writing(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    assert run("keygen", "--exporter", "acme", "--out", str(tmp_path / "a.pem"),
               "--keyring", str(ring)).exit_code == 0
    before = ring.read_text()
    again = run("keygen", "--exporter", "acme", "--out", str(tmp_path / "b.pem"),
                "--keyring", str(ring))
    assert again.exit_code == 1 and "already has key id 'acme'" in again.output
    assert not (tmp_path / "b.pem").exists() and ring.read_text() == before


def test_a_broken_keyring_is_refused(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    ring.write_text('{"keys": [{"key_id": "x"}]}')
    r = run("keygen", "--exporter", "acme", "--out", str(tmp_path / "a.pem"),
            "--keyring", str(ring))
    assert r.exit_code == 1 and "entry 0" in r.output
    assert not (tmp_path / "a.pem").exists()
