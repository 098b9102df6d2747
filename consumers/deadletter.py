"""The dead-letter record: the original message, where it came from, and why it failed.

A dead letter keeps the original key and value bytes exactly (so a fixed message can
be re-published, and a signature still verifies) and the original headers, and adds
``ql-dlq-*`` headers, all UTF-8:

=========================== ===========================================================
``ql-dlq-reason``            reason code (``malformed-json``, ``bad-signature``, ...)
``ql-dlq-message``           the human message, naming the field and the value
``ql-dlq-field``             the offending field (dotted path), when there is one
``ql-dlq-source-topic``      topic the message was read from
``ql-dlq-source-partition``  its partition
``ql-dlq-source-offset``     its offset
``ql-dlq-source-timestamp``  its Kafka timestamp (ms since the epoch)
``ql-dlq-group``             the consumer group that refused it
``ql-dlq-at``                when it was dead-lettered (UTC, ISO 8601)
``ql-dlq-original-size``     the original value's size in bytes (always)
``ql-dlq-original-sha256``   the original value's SHA-256, hex (always)
``ql-dlq-truncated``         ``value`` when the value kept is only the first
                             ``MAX_COPY_BYTES`` of the original (a message too large to
                             dead-letter whole), ``headers`` when the original headers
                             were dropped for size, or both
=========================== ===========================================================

A copy never exceeds what a producer may send (1 MiB by default): a poison message of
about 1 MiB is dead-lettered truncated, with its hash, size and coordinates, and the
partition goes on.

Dead letters are written before the ledger stores the batch position, so none is
lost in a crash; after a crash one may be written twice (same source coordinates).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from consumers.envelope import reason_of
from ledger.errors import LedgerError

PREFIX = "ql-dlq-"
#: most bytes of the original value a dead letter keeps
MAX_COPY_BYTES = 64 * 1024
#: most bytes of original headers a dead letter keeps
MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class DeadLetter:
    """A dead-letter record as read back from the dead-letter topic."""

    reason: str
    message: str
    field: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    original_size: int
    original_sha256: str
    truncated: str | None
    key: bytes | None
    value: bytes | None
    original_headers: list[tuple[str, bytes | None]]


def dead_letter_record(record: Any, error: LedgerError, group: str,
                       max_copy: int = MAX_COPY_BYTES) -> tuple[bytes | None, bytes | None,
                                                             list[tuple[str, bytes]]]:
    """(key, value, headers) of the dead letter of a refused ``record``: the original
    bytes, or their first ``max_copy`` bytes when larger, and the ``ql-dlq-*``
    headers."""
    value = record.value
    headers = dead_letter_headers(record, error, group, max_copy=max_copy)
    if value is not None and len(value) > max_copy:
        value = value[:max_copy]
    key = record.key if record.key is None or len(record.key) <= max_copy else \
        record.key[:max_copy]
    return key, value, headers


def dead_letter_headers(record: Any, error: LedgerError, group: str, *,
                        max_copy: int = MAX_COPY_BYTES) -> list[tuple[str, bytes]]:
    """The original headers plus the ``ql-dlq-*`` ones for a refused ``record``."""
    field = getattr(error, "field", None)
    value: bytes = record.value or b""
    added = {
        "reason": reason_of(error),
        "message": str(error),
        "source-topic": record.topic,
        "source-partition": str(record.partition),
        "source-offset": str(record.offset),
        "source-timestamp": str(record.timestamp),
        "group": group,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "original-size": str(len(value)),
        "original-sha256": hashlib.sha256(value).hexdigest(),
    }
    if field:
        added["field"] = str(field)[:256]
    original = [(k, v if v is not None else b"") for k, v in (record.headers or [])
                if not k.startswith(PREFIX)]
    truncated = []
    if len(value) > max_copy:
        truncated.append("value")
    if sum(len(k) + len(v) for k, v in original) > MAX_HEADER_BYTES:
        original = []
        truncated.append("headers")
    if truncated:
        added["truncated"] = ",".join(truncated)
    return original + [(PREFIX + k, v.encode("utf-8")) for k, v in added.items()]


def read_dead_letter(record: Any) -> DeadLetter:
    """Parse a record of the dead-letter topic."""
    headers = list(record.headers or [])
    ours = {k.removeprefix(PREFIX): (v or b"").decode("utf-8")
            for k, v in headers if k.startswith(PREFIX)}
    return DeadLetter(
        reason=ours.get("reason", ""),
        message=ours.get("message", ""),
        field=ours.get("field"),
        source_topic=ours.get("source-topic", ""),
        source_partition=int(ours.get("source-partition", "-1")),
        source_offset=int(ours.get("source-offset", "-1")),
        original_size=int(ours.get("original-size", "-1")),
        original_sha256=ours.get("original-sha256", ""),
        truncated=ours.get("truncated"),
        key=record.key,
        value=record.value,
        original_headers=[(k, v) for k, v in headers if not k.startswith(PREFIX)],
    )
