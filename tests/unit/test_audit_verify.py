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


# --- the link format is pinned, not only self-consistent ------------------------------------


def test_the_link_is_sha256_over_the_documented_length_prefixed_encoding() -> None:
    import hashlib

    oid = "00000000-0000-0000-0000-000000000007"
    args = (GENESIS_HASH, 12, "2025-01-01T00:00:00.000012+00:00", oid, 3,
            "ledger.events:ShipmentRecorded", b'{"quantity":10}')
    header = "\x1f".join((GENESIS_HASH, "12", args[2], oid, "3", args[5])).encode()
    expected = hashlib.sha256(len(header).to_bytes(8, "big") + header
                              + len(args[6]).to_bytes(8, "big") + args[6]).hexdigest()
    assert link_hash(*args) == expected
    # fixed vectors: a change of the format would orphan every chain already stored
    assert expected == "32207b57c4fb2da866f5a3ff2c8ded15423f2407349fdbcbc968624cadce9b10"
    assert link_hash(GENESIS_HASH, 1, "t", "o", 1, "x", b"") == \
        "b8e34f118a81c95151294a4b06c3e1d1eb6e39fa042d8c7cc774016f77308fc2"


# --- what each break says, and the JSON shape of a result -----------------------------------


def messages(events: list[StoredRow], links: list[ChainRow],
             head: tuple[int, str] | None = None) -> list[tuple[int, str, str]]:
    return [(b.position, b.kind, b.message) for b in verify_chain(events, links, head).breaks]


def test_each_break_says_what_happened_where() -> None:
    events, links = build(8)
    h8 = links[-1].hash
    gone = [e for e in events if e.position not in (3, 4)]
    assert messages(gone, [c for c in links if c.position not in (3, 4)], (4, links[3].hash)) == [
        (3, "deleted", "the link at position 5 does not follow from position 2: position 3..4 "
                       "(event and chain row) was deleted, or the event at 5 was edited"),
        (4, "not-extending-head", "expected head at position 4, but there is no chain row at "
                                  "4: the ledger does not extend that head")]
    assert messages(events, [c for c in links if c.position != 3]) == [
        (3, "deleted", "the link at position 4 does not follow from position 2: position 3 "
                       "(event and chain row) was deleted, or the event at 4 was edited"),
        (3, "inserted", "event at position 3 (X 00000000-0000-0000-0000-000000000003 v1) has no "
                        "chain row: it was written outside the ledger (inserted event)")]
    assert messages(events[:5], links) == [
        (6, "truncated", "chain rows 6..8 have no events: the tail after position 5 was deleted "
                         "(truncated)")]
    assert messages(events[:5], links[:5], (8, h8)) == [
        (6, "truncated", f"expected head at position 8 ({h8[:16]}…), but the ledger ends at "
                         "position 5: positions 6..8 were removed (truncated tail)")]
    assert messages(events, links, (8, "a" * 64)) == [
        (8, "not-extending-head", f"link at position 8 is {h8[:16]}…, expected "
                                  f"{'a' * 16}…: the history up to position 8 was rewritten")]
    edited_row = links[:]
    edited_row[1] = ChainRow(2, links[1].recorded_at, "f" * 64)
    assert messages(events, edited_row) == [
        (2, "chain-row-edited", f"chain row 2 holds hash {'f' * 16}…, but the stored event links "
                                f"to {links[1].hash[:16]}… and position 3 was built on that: the "
                                "chain row was edited")]


def test_a_reordered_pair_need_not_be_adjacent_and_later_links_still_verify() -> None:
    events, links = build(9)
    a, b = events[4], events[6]
    events[4] = StoredRow(5, b.originator_id, 1, b.topic, b.state)
    events[6] = StoredRow(7, a.originator_id, 1, a.topic, a.state)
    assert messages(events, links) == [
        (5, "reordered", "events at positions 5 and 7 are swapped: each matches the other's "
                         "link (reordered pair)")]
    assert kinds(edited(events, 8), links) == [(5, "reordered"), (9, "edited")]


def test_the_result_as_json() -> None:
    events, links = build(2)
    assert verify_chain(events, links).as_dict() == {
        "ok": True, "events": 2, "links": 2, "breaks": [],
        "head": {"position": 2, "recorded_at": links[1].recorded_at, "hash": links[1].hash}}
    broken = verify_chain(edited(events, 0), links[:1])
    assert broken.as_dict() == {
        "ok": False, "events": 2, "links": 1,
        "head": {"position": 1, "recorded_at": links[0].recorded_at, "hash": links[0].hash},
        "breaks": [{"position": 1, "kind": "edited", "message": broken.breaks[0].message},
                   {"position": 2, "kind": "inserted", "message": broken.breaks[1].message}]}
    assert verify_chain([], []).as_dict() == {"ok": True, "events": 0, "links": 0,
                                              "head": None, "breaks": []}


def test_expect_head_is_position_colon_64_hex_digits() -> None:
    from ledger.audit import parse_expect_head
    from ledger.errors import ValidationError

    assert parse_expect_head(f" 27:{'AB' * 32} ") == (27, "ab" * 32)
    for bad in ["27", f"x7:{'a' * 64}", f"27:{'a' * 63}", f"27:{'a' * 63}g", f"2:7:{'a' * 64}",
                f":{'a' * 64}"]:
        with pytest.raises(ValidationError) as error:
            parse_expect_head(bad)
        assert (error.value.field, error.value.value) == ("expect_head", bad)
        assert str(error.value) == (f"--expect-head {bad!r} must be POSITION:HASH (64 hex "
                                    "digits), as printed by 'ledger audit head'")


# --- the edges of the walk --------------------------------------------------------------------


def test_an_empty_ledger_against_an_expected_head_is_truncated() -> None:
    assert messages([], [], (1, "a" * 64)) == [
        (1, "truncated", f"expected head at position 1 ({'a' * 16}…), but the ledger ends at "
                         "position 0: positions 1..1 were removed (truncated tail)")]


def test_links_without_any_event_are_a_truncated_tail() -> None:
    _, links = build(2)
    assert kinds([], links) == [(1, "truncated")]


def test_the_first_position_deleted_and_a_chain_row_left_without_its_event() -> None:
    events, links = build(3)
    assert messages(events[1:], links[1:]) == [
        (1, "deleted", "the link at position 2 does not follow from position 0: position 1 "
                       "(event and chain row) was deleted, or the event at 2 was edited")]
    assert messages([events[0], events[2]], links) == [
        (2, "deleted", "chain row 2 has no event: the event at position 2 was deleted")]
    assert messages(edited(events, 1), links)[0][2] == (
        "the stored event (bytes, identity or type) or its recorded time differs from what "
        "the chain linked at position 2")


def test_chain_rows_edited_anywhere_each_once() -> None:
    events, links = build(6)
    for p in (2, 5):  # the second to last too
        links[p - 1] = ChainRow(p, links[p - 1].recorded_at, "e" * 64)
    assert kinds(events, links) == [(2, "chain-row-edited"), (5, "chain-row-edited")]


def test_two_reordered_pairs_and_a_copy_that_is_no_swap() -> None:
    events, links = build(8)

    def put(p: int, e: StoredRow) -> None:
        events[p - 1] = StoredRow(p, e.originator_id, 1, e.topic, e.state)

    one, two, five, six = events[0], events[1], events[4], events[5]
    put(1, two)
    put(2, one)
    put(5, six)
    put(6, five)
    assert kinds(events, links) == [(1, "reordered"), (5, "reordered")]
    events, links = build(8)
    copy = events[2]
    events = edited(events, 2)
    put(5, copy)  # position 5 holds a copy of 3; 3 was edited: no pair was swapped
    assert kinds(events, links) == [(3, "edited"), (5, "edited")]


def test_interleaved_reordered_pairs() -> None:
    events, links = build(6)
    originals = events[:]
    for p, q in ((1, 3), (2, 4)):  # 1<->3 and 2<->4: the second pair skips an explained one
        a, b = originals[p - 1], originals[q - 1]
        events[p - 1] = StoredRow(p, b.originator_id, 1, b.topic, b.state)
        events[q - 1] = StoredRow(q, a.originator_id, 1, a.topic, a.state)
    assert kinds(events, links) == [(1, "reordered"), (2, "reordered")]
