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
=========================== ===========================================================

Dead letters are written before the ledger stores the batch position, so none is
lost in a crash; after a crash one may be written twice (same source coordinates).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from consumers.envelope import reason_of
from ledger.errors import LedgerError

PREFIX = "ql-dlq-"


@dataclass(frozen=True)
class DeadLetter:
    """A dead-letter record as read back from the dead-letter topic."""

    reason: str
    message: str
    field: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    original_headers: list[tuple[str, bytes | None]]


def dead_letter_headers(record: Any, error: LedgerError, group: str
                        ) -> list[tuple[str, bytes]]:
    """The original headers plus the ``ql-dlq-*`` ones for a refused ``record``."""
    field = getattr(error, "field", None)
    added = {
        "reason": reason_of(error),
        "message": str(error),
        "source-topic": record.topic,
        "source-partition": str(record.partition),
        "source-offset": str(record.offset),
        "source-timestamp": str(record.timestamp),
        "group": group,
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    if field:
        added["field"] = str(field)
    original = [(k, v if v is not None else b"") for k, v in (record.headers or [])
                if not k.startswith(PREFIX)]
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
        key=record.key,
        value=record.value,
        original_headers=[(k, v) for k, v in headers if not k.startswith(PREFIX)],
    )
