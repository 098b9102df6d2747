"""Strict JSON on the wire: what the JSON parser lets through but the ledger refuses.

Import lines and Kafka messages are validated by pydantic in strict JSON mode
(integers are JSON integers, dates ``YYYY-MM-DD`` strings, no coercion). Two things
are left to this module:

- **duplicate keys**: JSON parsers keep the last of two equal keys, so
  ``{"quantity": 64, "quantity": 640}`` would silently mean 640. ``duplicate_key``
  finds the first duplicate, in any nested object.
- the error of a parser that gave up (too deep, a number too long) as a
  ``ValidationError`` naming the line, not an internal error.

``duplicate_key`` has a fast path: without a backslash in the text, every key is a
``"..."`` followed by ``:``, so if no key text repeats anywhere there is no duplicate
and the text is not parsed a second time.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEY = re.compile(rb'"([^"\\]*)"\s*:')


class _Duplicate(Exception):
    def __init__(self, key: str, first: Any, second: Any) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k, out[k], v)
        out[k] = v
    return out


def duplicate_key(raw: bytes | str) -> tuple[str, Any, Any] | None:
    """(key, first value, second value) of the first key that appears twice in one
    object of the JSON text ``raw``, or None. ``raw`` must be valid JSON."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if b"\\" not in data:
        keys = _KEY.findall(data)
        if len(keys) == len(set(keys)):
            return None
    try:
        json.loads(data, object_pairs_hook=_refuse_duplicates)
    except _Duplicate as d:
        return d.key, d.first, d.second
    except (ValueError, RecursionError):
        return None  # not ours to report: the validator names what is wrong
    return None
