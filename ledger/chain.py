"""The hash chain that makes the stored history tamper-evident.

Each appended event gets a link: SHA-256 over the previous link, its recorded
position and time, its stored identity (originator id and version), its topic (type)
and its exact stored bytes. Editing, deleting, inserting or reordering any stored
event, or truncating the tail, breaks a link that ``ledger audit verify`` finds. The
chain covers the stored bytes, not an upcast reading of them.
"""

from __future__ import annotations

import hashlib

#: the "previous link" of the first event
GENESIS_HASH = "0" * 64


def link_hash(
    prev_hash: str,
    position: int,
    recorded_at: str,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
) -> str:
    """Return the hex SHA-256 link of one stored event (pure)."""
    h = hashlib.sha256()
    # Length-prefix the variable fields so no two different inputs share an encoding.
    header = "\x1f".join(
        (prev_hash, str(position), recorded_at, originator_id, str(originator_version), topic)
    ).encode()  # UTF-8, the default codec
    # int.to_bytes is big-endian by default (Python 3.11+): the lengths are big-endian
    h.update(len(header).to_bytes(8))
    h.update(header)
    h.update(len(state).to_bytes(8))
    h.update(state)
    return h.hexdigest()
