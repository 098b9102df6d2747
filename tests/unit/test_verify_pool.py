"""Signature checks on every core (``consumers.verify``): the workers' answers and how
the decoder uses them. Real worker processes, no broker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from consumers.envelope import Rejected, decode_message, signature_of
from consumers.producer import MessageSigner
from consumers.signing import Keyring, PublicKey, generate_private_key
from consumers.verify import MIN_POOL_BATCH, SignatureChecker, verified_key_ids
from ledger.catalog import bundled_catalog

ACME = generate_private_key()
GLOBEX = generate_private_key()
STRANGER = generate_private_key()
KEYRING = Keyring([PublicKey("acme", "acme", ACME.public_key()),
                   PublicKey("globex", "globex", GLOBEX.public_key())])
NOW = dt.datetime(2025, 9, 1, 12, tzinfo=dt.UTC)


def _message(ref: str, key: Any = ACME, exporter: str = "acme") -> tuple[bytes, list[Any]]:
    shipment = {"type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
                "ship_date": "2025-06-02", "destination": "MX", "consignee_id": "c-1",
                "product_id": "nvidia-h100-sxm", "quantity": 10,
                "authorization": {"kind": "none"}}
    _key, value, headers = MessageSigner(exporter, key).message(shipment)
    return value, headers


def _batch() -> tuple[list[tuple[bytes, list[Any]]], list[str | None]]:
    """A batch with good messages of two exporters and every kind of bad one."""
    good_acme = [_message(f"A-{i}") for i in range(MIN_POOL_BATCH)]
    good_globex = [_message(f"G-{i}", GLOBEX, "globex") for i in range(3)]
    value, headers = _message("X-1")
    altered = (value.replace(b'"quantity":10', b'"quantity":11'), headers)
    unknown = _message("U-1", STRANGER, "stranger")
    wrong_key = _message("W-1", GLOBEX, "acme")  # claims acme, signed by globex's key
    unsigned = (_message("N-1")[0], [])
    messages = [*good_acme, *good_globex, altered, unknown, wrong_key, unsigned,
                (b"not json", headers)]
    want: list[str | None] = ["acme"] * MIN_POOL_BATCH + ["globex"] * 3 + [None] * 5
    return messages, want


def test_the_pool_answers_the_verified_key_id_of_each_message() -> None:
    messages, want = _batch()
    checker = SignatureChecker.for_keyring(KEYRING, workers=2)
    items = [(v, signature_of(h)) for v, h in messages]
    try:
        # the first large batch starts the workers in the background and is left to
        # the consumer; once they are ready, they answer
        assert checker.check(items) is None
        checker._ready.wait(timeout=120)
        got = checker.check(items)
    finally:
        checker.close()
    assert got == want


def test_a_small_batch_or_no_workers_is_left_to_the_consumer() -> None:
    messages, _ = _batch()
    items = [(v, signature_of(h)) for v, h in messages]
    assert SignatureChecker.for_keyring(KEYRING, workers=2).check(items[:3]) is None
    assert SignatureChecker.for_keyring(KEYRING, workers=0).check(items) is None


@pytest.fixture
def worker_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process holds the keys as a worker does, without a worker's parent watcher
    (``_init_worker``'s thread would end pytest at once if its parent process changed)."""
    from consumers import verify

    monkeypatch.setattr(verify, "_keys", {k.key_id: k.key for k in KEYRING.keys()})


@pytest.mark.usefixtures("worker_keys")
def test_verified_messages_decode_as_before_and_bad_ones_keep_their_reason() -> None:
    messages, _ = _batch()
    answers = verified_key_ids([(v, signature_of(h)) for v, h in messages])
    for (value, headers), answer in zip(messages, answers, strict=True):
        plain = _decode(value, headers, None)
        helped = _decode(value, headers, answer)
        assert plain == helped  # same envelope, or the same refusal


def test_a_verified_key_id_skips_the_check_only_for_that_key() -> None:
    value, headers = _message("A-1")
    altered = value.replace(b'"quantity":10', b'"quantity":11')
    # a worker's answer for other bytes or another key never lets a forgery through
    assert _decode(altered, headers, "globex")[0] == "bad-signature"
    assert _decode(altered, headers, None)[0] == "bad-signature"


#: every payload type an exporter may send
PAYLOADS: dict[str, dict[str, Any]] = {
    "shipment.recorded": {"type": "shipment.recorded", "exporter_id": "acme",
                          "shipment_ref": "A-1", "ship_date": "2025-06-02", "destination": "MX",
                          "consignee_id": "c-1", "product_id": "nvidia-h100-sxm",
                          "quantity": 10, "authorization": {"kind": "none"}},
    "shipment.corrected": {"type": "shipment.corrected", "exporter_id": "acme",
                           "shipment_ref": "A-1", "quantity": 12, "reason": "recount"},
    "shipment.voided": {"type": "shipment.voided", "exporter_id": "acme",
                        "shipment_ref": "A-1", "reason": "order cancelled"},
}


@pytest.mark.usefixtures("worker_keys")
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_worker_verifies_every_payload_type_but_no_forgery_or_tampering_of_it(
        payload: str) -> None:
    _key, value, headers = MessageSigner("acme", ACME).message(PAYLOADS[payload])
    # globex signs in acme's name, naming acme's key: a forged void would erase a shipment
    _key, forged, forged_headers = MessageSigner("acme", GLOBEX, "acme").message(
        PAYLOADS[payload])
    tampered = value.replace(b'"shipment_ref":"A-1"', b'"shipment_ref":"A-2"')
    assert tampered != value
    messages = [(value, headers), (forged, forged_headers), (tampered, headers)]
    answers = verified_key_ids([(v, signature_of(h)) for v, h in messages])
    assert answers == ["acme", None, None]
    assert _decode(value, headers, answers[0])[0] == "ok"
    for (v, h), answer in zip(messages[1:], answers[1:], strict=True):
        assert _decode(v, h, answer)[0] == "bad-signature"


def _decode(value: bytes, headers: list[Any], verified: str | None) -> tuple[str, Any]:
    try:
        envelope = decode_message(value, headers, KEYRING, catalog=bundled_catalog(), now=NOW,
                                  verified_key_id=verified)
    except Rejected as e:
        return e.code, str(e)
    return "ok", envelope


@pytest.fixture(autouse=True)
def _clean_worker_keys() -> Any:
    from consumers import verify

    yield
    verify._keys.clear()


def test_workers_end_when_their_consumer_is_killed(tmp_path: Any) -> None:
    """A consumer killed with SIGKILL cannot shut its pool down: its workers must not
    stay behind waiting for work."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "consumer.py"
    pids = tmp_path / "workers.txt"
    script.write_text(
        "import os, sys\n"
        "from consumers.verify import SignatureChecker\n"
        "if __name__ == '__main__':\n"
        "    checker = SignatureChecker({}, workers=2)\n"
        "    checker.start()\n"
        "    assert checker._ready.wait(600)\n"
        "    with open(sys.argv[1], 'w') as f:\n"
        "        f.write(' '.join(str(p) for p in checker._pool._processes))\n"
        "    os.kill(os.getpid(), 9)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # no pipes: the workers inherit the parent's descriptors and outlive it briefly
    proc = subprocess.Popen([sys.executable, str(script), str(pids)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.wait(timeout=660)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # a zombie is gone for our purpose (init reaps it)
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 120
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers)
