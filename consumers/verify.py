"""Signature checks of a batch on every core: a pool of worker processes.

With kafka-python's checksums compiled (``crc32c``), checking each message's Ed25519
signature (~185 µs) is the main cost of ingesting it, and one Python process checks
one at a time. ``SignatureChecker`` sends a batch's (value, signature header) pairs
to worker processes, which verify them in parallel and answer, per message, the key
id whose signature they verified (None when they could not: no JSON, no key id, an
unknown key, a bad signature). The consumer then decodes each message as before and
skips only the one ``verify`` call of a message a worker verified with the same key
id for the same bytes; every other message is checked in full in the consumer, so a
refused message gets exactly the reason it got before.

Workers are started with ``spawn`` (the consumer runs Kafka client threads, which a
forked child must not inherit) and import only this module's few dependencies. They
start in the background when the consumer starts (while it joins its group); until
they are ready (seconds on a busy machine) the consumer checks signatures itself, so
a slow start never holds a batch past the group's poll interval.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: how often a worker checks that its consumer is still alive
PARENT_CHECK_S = 1.0
#: a batch smaller than this is checked in the consumer (the round trip costs more)
MIN_POOL_BATCH = 64

#: (message value, its signature header) as the consumer read them
Signed = tuple[bytes | None, bytes | None]

_keys: dict[str, Ed25519PublicKey] = {}


def _init_worker(raw_keys: dict[str, bytes], parent: int) -> None:
    _keys.clear()
    _keys.update({k: Ed25519PublicKey.from_public_bytes(v) for k, v in raw_keys.items()})
    # the consumer's pid is passed in: if it died before this worker started, the
    # worker's parent is already another process and it ends at once
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    """End this worker when the consumer is gone: a consumer killed with SIGKILL
    cannot shut its pool down, and a worker waiting for work would wait forever."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _ready() -> bool:
    return True


def verified_key_ids(items: Sequence[Signed]) -> list[str | None]:
    """Per message, the key id whose signature verifies it, else None (in a worker)."""
    return [_verified_key_id(value, signature, _keys) for value, signature in items]


def _verified_key_id(value: bytes | None, signature: bytes | None,
                     keys: dict[str, Ed25519PublicKey]) -> str | None:
    if not value or not signature:
        return None
    try:
        auth = json.loads(value).get("auth")
        key_id = auth.get("key_id")
        key = keys.get(key_id)
        if key is None:
            return None
        key.verify(base64.b64decode(signature, validate=True), value)
    except (InvalidSignature, ValueError, TypeError, AttributeError, RecursionError):
        return None
    return str(key_id)


class SignatureChecker:
    """A pool of ``workers`` processes checking signatures against a fixed keyring."""

    def __init__(self, raw_keys: dict[str, bytes], workers: int | None = None) -> None:
        self.raw_keys = dict(raw_keys)
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self._pool: Executor | None = None
        self._ready = threading.Event()
        self._starter: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_keyring(cls, keyring: Any, workers: int | None = None) -> SignatureChecker:
        raw = {k.key_id: k.key.public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
               for k in keyring.keys()}
        return cls(raw, workers)

    def check(self, items: Sequence[Signed]) -> list[str | None] | None:
        """The verified key id of each message, or None when the batch is too small
        to be worth the pool (the consumer then verifies each message itself)."""
        if self.workers < 1 or len(items) < MIN_POOL_BATCH:
            return None
        if not self._ready.is_set():
            self.start()
            return None
        assert self._pool is not None
        size = -(-len(items) // self.workers)
        parts = [items[i:i + size] for i in range(0, len(items), size)]
        out: list[str | None] = []
        try:
            for answer in self._pool.map(verified_key_ids, parts):
                out.extend(answer)
        except (BrokenProcessPool, OSError):
            # a worker died (killed, out of memory): check in the consumer from now on
            self.workers = 0
            self.close()
            return None
        return out

    def start(self) -> None:
        """Start the workers in the background (once; nothing with no workers);
        ``_ready`` is set when each has started and loaded the keys."""
        if self.workers < 1:
            return
        with self._lock:
            if self._starter is not None:
                return
            self._starter = threading.Thread(target=self._start_pool, daemon=True,
                                             name="signature-workers")
            self._starter.start()

    def _start_pool(self) -> None:
        try:
            pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.raw_keys, os.getpid()))
            futures = [pool.submit(_ready) for _ in range(self.workers)]
            for f in futures:
                f.result()
        except (BrokenProcessPool, OSError):
            self.workers = 0  # no workers here: the consumer checks every message
            return
        with self._lock:
            self._pool = pool
        self._ready.set()

    def close(self) -> None:
        starter = self._starter
        if starter is not None:
            starter.join()
        with self._lock:
            pool, self._pool = self._pool, None
            self._ready.clear()
            self._starter = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
