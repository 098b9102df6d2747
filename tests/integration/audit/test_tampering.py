"""Tampering with the stored tables directly: ``audit verify`` names every break.

Each test edits the SQLite file or the PostgreSQL tables outside the ledger (the
``db_url`` fixture runs each on both), then expects the break kind at the right
position, from the library and from the CLI (exit code 5).
"""

from __future__ import annotations

import json
from typing import Any

from ledger.audit import verify
from ledger.chain import link_hash

EXIT_BROKEN = 5


def breaks(ledger: Any, expect_head: tuple[int, str] | None = None) -> list[tuple[int, str]]:
    return [(b.position, b.kind) for b in verify(ledger, expect_head).breaks]


def shipment_position(ledger: Any, ref: str) -> int:
    for position, event in ledger.read():
        if getattr(event, "shipment_ref", None) == ref and event.type_name == "shipment.recorded":
            return position
    raise AssertionError(ref)


def test_intact_ledger_verifies(sample_ledger: Any, run_cli: Any) -> None:
    assert breaks(sample_ledger) == []
    result = run_cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 27 events, 27 links verified")
    head = run_cli("audit", "head").output.splitlines()[-1]
    assert head.startswith("--expect-head 27:")
    assert run_cli("audit", "verify", *head.split()).exit_code == 0


def test_edited_byte_is_named_by_position(sample_ledger: Any, raw_db: Any, run_cli: Any
                                          ) -> None:
    p = shipment_position(sample_ledger, "S-100")
    oid, version, topic, state = raw_db.event(p)
    edited = bytes(state).replace(b'"quantity":10000', b'"quantity":1000')
    assert edited != bytes(state)
    raw_db.set_event(p, (oid, version, topic, edited))
    assert breaks(sample_ledger) == [(p, "edited")]
    result = run_cli("audit", "verify")
    assert result.exit_code == EXIT_BROKEN
    assert f"position {p}: edited" in result.output
    data = json.loads(run_cli("audit", "verify", "--json").output)
    assert data["ok"] is False and data["breaks"][0]["position"] == p


def test_deleted_event(sample_ledger: Any, raw_db: Any) -> None:
    raw_db.run("DELETE FROM stored_events WHERE {pos} = ?", [12])
    assert breaks(sample_ledger) == [(12, "deleted")]


def test_deleted_event_and_its_chain_row(sample_ledger: Any, raw_db: Any) -> None:
    raw_db.run("DELETE FROM stored_events WHERE {pos} = ?", [12])
    raw_db.run("DELETE FROM ledger_chain WHERE position = ?", [12])
    assert breaks(sample_ledger) == [(12, "deleted")]


def test_inserted_event(sample_ledger: Any, raw_db: Any) -> None:
    oid, version, topic, state = raw_db.event(10)
    raw_db.run("INSERT INTO stored_events ({pos}, originator_id, originator_version, topic, "
               "state) VALUES (?, ?, ?, ?, ?)", [40, oid, version + 7, topic, state])
    assert breaks(sample_ledger) == [(40, "inserted")]


def test_reordered_pair(sample_ledger: Any, raw_db: Any, run_cli: Any) -> None:
    raw_db.swap(14, 15)
    assert breaks(sample_ledger) == [(14, "reordered")]
    assert "position 14: reordered" in run_cli("audit", "verify").output


def test_truncated_tail_events_only(sample_ledger: Any, raw_db: Any) -> None:
    raw_db.run("DELETE FROM stored_events WHERE {pos} > ?", [24])
    assert breaks(sample_ledger) == [(25, "truncated")]


def test_truncated_tail_needs_the_expected_head(sample_ledger: Any, raw_db: Any,
                                                run_cli: Any) -> None:
    position, _, digest = sample_ledger.head()
    raw_db.run("DELETE FROM stored_events WHERE {pos} > ?", [24])
    raw_db.run("DELETE FROM ledger_chain WHERE position > ?", [24])
    assert breaks(sample_ledger) == []  # a clean cut looks intact on its own...
    assert breaks(sample_ledger, (position, digest)) == [(25, "truncated")]  # ...not to an auditor
    result = run_cli("audit", "verify", "--expect-head", f"{position}:{digest}")
    assert result.exit_code == EXIT_BROKEN
    assert "truncated" in result.output


def test_edited_chain_row(sample_ledger: Any, raw_db: Any) -> None:
    raw_db.run("UPDATE ledger_chain SET hash = ? WHERE position = ?", ["ab" * 32, 9])
    assert breaks(sample_ledger) == [(9, "chain-row-edited")]


def test_rewritten_chain_is_caught_by_the_expected_head(sample_ledger: Any, raw_db: Any
                                                         ) -> None:
    """An operator who edits an event and recomputes every later link (the chain has
    no key) gets past a plain verify, but not past a head kept outside the ledger."""
    position, _, digest = sample_ledger.head()
    p = shipment_position(sample_ledger, "G-200")
    oid, version, topic, state = raw_db.event(p)
    raw_db.set_event(p, (oid, version, topic, bytes(state).replace(b'"quantity":25000',
                                                                     b'"quantity":2500')))
    links = raw_db.run("SELECT position, recorded_at, hash FROM ledger_chain ORDER BY position")
    prev = links[p - 2][2]
    for pos, recorded_at, _ in links[p - 1:]:
        o, v, t, s = raw_db.event(pos)
        o = str(o) if raw_db.pg else f"{o[:8]}-{o[8:12]}-{o[12:16]}-{o[16:20]}-{o[20:]}"
        prev = link_hash(prev, pos, recorded_at, o, v, t, bytes(s))
        raw_db.run("UPDATE ledger_chain SET hash = ? WHERE position = ?", [prev, pos])
    assert breaks(sample_ledger) == []
    assert breaks(sample_ledger, (position, digest)) == [(position, "not-extending-head")]


def test_every_break_is_reported_at_once(sample_ledger: Any, raw_db: Any, run_cli: Any
                                         ) -> None:
    oid, version, topic, state = raw_db.event(11)
    raw_db.set_event(11, (oid, version, topic, bytes(state) + b" "))
    raw_db.swap(19, 20)
    raw_db.run("DELETE FROM stored_events WHERE {pos} = ?", [23])
    raw_db.run("UPDATE ledger_chain SET hash = ? WHERE position = ?", ["cd" * 32, 7])
    assert breaks(sample_ledger) == [(7, "chain-row-edited"), (11, "edited"),
                                     (19, "reordered"), (23, "deleted")]
    out = run_cli("audit", "verify").output
    assert "BROKEN: 4 break(s)" in out


def test_bad_expect_head_is_a_clear_error(sample_ledger: Any, run_cli: Any) -> None:
    result = run_cli("audit", "verify", "--expect-head", "27-abc")
    assert result.exit_code == 1
    assert "--expect-head '27-abc' must be POSITION:HASH" in result.output


def test_export_of_unreadable_event_names_it(sample_ledger: Any, raw_db: Any, run_cli: Any
                                             ) -> None:
    oid, version, topic, _ = raw_db.event(11)
    raw_db.set_event(11, (oid, version, topic, b"{not json"))
    result = run_cli("audit", "export", "--format", "csv")
    assert result.exit_code == 1
    assert "the event at position 11 cannot be read" in result.output
    assert breaks(sample_ledger) == [(11, "edited")]
