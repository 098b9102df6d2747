"""``verify_chain`` is pure: given stored rows and chain rows, every break, by position."""

from __future__ import annotations

import re

import pytest

from ledger.audit import ChainRow, RestoreError, RestoreRow, StoredRow, check_restore, verify_chain
from ledger.chain import GENESIS_HASH, link_hash


def build(n: int, times: list[str] | None = None) -> tuple[list[StoredRow], list[ChainRow]]:
    """A consistent chain of ``n`` events; ``times`` overrides the recorded times (the
    links are computed over them, as an operator rewriting the chain would)."""
    events, links, prev = [], [], GENESIS_HASH
    for p in range(1, n + 1):
        e = StoredRow(p, f"00000000-0000-0000-0000-{p:012d}", 1, "ledger.events:X",
                      f'{{"n":{p}}}'.encode())
        t = times[p - 1] if times else f"2025-01-01T00:00:00.{p:06d}+00:00"
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


def edited(events: list[StoredRow], index: int) -> list[StoredRow]:
    """``events`` with one byte of the event at ``index`` changed."""
    e = events[index]
    out = events[:]
    out[index] = StoredRow(e.position, e.originator_id, e.originator_version, e.topic,
                           e.state.replace(b'"n":', b'"m":'))
    return out


# --- an edit at either end of the chain ---------------------------------------------------


def test_an_edited_head_event_is_named() -> None:
    events, links = build(5)
    assert kinds(edited(events, 4), links) == [(5, "edited")]
    # also when the auditor holds the (unchanged) head link
    assert kinds(edited(events, 4), links, (5, links[-1].hash)) == [(5, "edited")]


def test_an_edited_first_event_is_named() -> None:
    events, links = build(5)
    assert kinds(edited(events, 0), links) == [(1, "edited")]


def test_the_only_event_of_a_one_event_ledger_edited_is_named() -> None:
    events, links = build(1)
    assert kinds(events, links) == []
    result = verify_chain(edited(events, 0), links)
    assert [(b.position, b.kind) for b in result.breaks] == [(1, "edited")]
    assert not result.ok and (result.events, result.links) == (1, 1)


def test_an_edited_head_chain_row_is_named() -> None:
    events, links = build(4)
    links[-1] = ChainRow(4, links[-1].recorded_at, "e" * 64)
    assert kinds(events, links) == [(4, "edited")]


# --- recorded time must increase along the chain --------------------------------------------

T = "2025-01-01T00:00:0{}+00:00"


def test_recorded_time_going_backwards_is_a_break_even_with_consistent_links() -> None:
    events, links = build(4, [T.format(1), T.format(2), T.format(0), T.format(3)])
    result = verify_chain(events, links)
    assert [(b.position, b.kind) for b in result.breaks] == [(3, "time-not-increasing")]
    assert f"recorded time {T.format(0)} at position 3 is not after {T.format(2)} at " \
        "position 2" == result.breaks[0].message


def test_recorded_time_equal_to_its_predecessor_is_a_break() -> None:
    events, links = build(3, [T.format(1), T.format(1), T.format(2)])
    assert kinds(events, links) == [(2, "time-not-increasing")]


def test_recorded_time_after_a_deleted_event_is_checked_against_the_deleted_ones_link() -> None:
    events, links = build(3, [T.format(1), T.format(5), T.format(3)])
    del events[1]
    assert kinds(events, links) == [(2, "deleted"), (3, "time-not-increasing")]


def _restore_rows(events: list[StoredRow], links: list[ChainRow]) -> list[RestoreRow]:
    return [RestoreRow(e, c, GENESIS_HASH if i == 0 else links[i - 1].hash)
            for i, (e, c) in enumerate(zip(events, links, strict=True))]


@pytest.mark.parametrize("second", [T.format(1), T.format(0)], ids=["equal", "backwards"])
def test_restore_refuses_recorded_time_not_increasing(second: str) -> None:
    rows = _restore_rows(*build(3, [T.format(1), second, T.format(2)]))
    with pytest.raises(RestoreError, match=re.escape(
            f"position 2: recorded time {second} is not after {T.format(1)}")):
        check_restore(rows, None)


def test_restore_continues_a_head_only_after_its_time_and_position() -> None:
    events, links = build(3)
    rows = _restore_rows(events, links)
    check_restore(rows[2:], links[1])  # the third continues the second
    with pytest.raises(RestoreError, match="position 3: recorded time"):
        check_restore(rows[2:], ChainRow(2, links[2].recorded_at, links[1].hash))
    with pytest.raises(RestoreError, match="position 3 is not after position 3"):
        check_restore(rows[2:], ChainRow(3, links[1].recorded_at, links[1].hash))
    with pytest.raises(RestoreError, match="position 3: the export continues link"):
        check_restore(rows[2:], links[0])
