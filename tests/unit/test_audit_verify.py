"""``verify_chain`` is pure: given stored rows and chain rows, every break, by position."""

from __future__ import annotations

import pytest

from ledger.audit import ChainRow, RestoreError, RestoreRow, StoredRow, check_restore, verify_chain
from ledger.chain import GENESIS_HASH, link_hash


def build(n: int) -> tuple[list[StoredRow], list[ChainRow]]:
    events, links, prev = [], [], GENESIS_HASH
    for p in range(1, n + 1):
        e = StoredRow(p, f"00000000-0000-0000-0000-{p:012d}", 1, "ledger.events:X",
                      f'{{"n":{p}}}'.encode())
        t = f"2025-01-01T00:00:00.{p:06d}+00:00"
        prev = link_hash(prev, p, t, e.originator_id, 1, e.topic, e.state)
        events.append(e)
        links.append(ChainRow(p, t, prev))
    return events, links


def kinds(events: list[StoredRow], links: list[ChainRow],
          head: tuple[int, str] | None = None) -> list[tuple[int, str]]:
    return [(b.position, b.kind) for b in verify_chain(events, links, head).breaks]


def test_intact_and_empty() -> None:
    assert kinds(*build(5)) == []
    assert verify_chain([], []).ok


def test_each_break() -> None:
    events, links = build(8)
    events[2] = StoredRow(3, events[2].originator_id, 1, events[2].topic, b'{"n":33}')
    a, b = events[4], events[5]  # swap the contents of positions 5 and 6
    events[4] = StoredRow(5, b.originator_id, 1, b.topic, b.state)
    events[5] = StoredRow(6, a.originator_id, 1, a.topic, a.state)
    del events[6]  # position 7
    links[0] = ChainRow(1, links[0].recorded_at, "f" * 64)
    assert kinds(events, links) == [(1, "chain-row-edited"), (3, "edited"), (5, "reordered"),
                                    (7, "deleted")]


def test_truncation_and_head() -> None:
    events, links = build(6)
    head = (6, links[-1].hash)
    assert kinds(events[:4], links) == [(5, "truncated")]
    assert kinds(events[:4], links[:4], head) == [(5, "truncated")]
    assert kinds(events, links, (3, "0" * 64)) == [(3, "not-extending-head")]
    assert kinds(events, links, head) == []


def test_inserted_event_without_link() -> None:
    events, links = build(3)
    events.append(StoredRow(4, events[0].originator_id, 2, events[0].topic, b"{}"))
    assert kinds(events, links) == [(4, "inserted")]


def test_restore_checks_every_link_first() -> None:
    events, links = build(3)
    rows = [RestoreRow(e, c, GENESIS_HASH if i == 0 else links[i - 1].hash)
            for i, (e, c) in enumerate(zip(events, links, strict=False))]
    check_restore(rows, None)
    bad = rows[:]
    bad[1] = RestoreRow(StoredRow(2, events[1].originator_id, 1, events[1].topic, b"{}"),
                        links[1], links[0].hash)
    with pytest.raises(RestoreError, match="position 2: the exported event does not match"):
        check_restore(bad, None)
