"""Tampering at the ends of the chain, on both stores: the head event, the first event,
the only event of a one-event ledger, and a chain rewritten so that recorded time
stops increasing. ``audit verify`` names each one (library and CLI)."""

from __future__ import annotations

from typing import Any

from ledger.application import Ledger
from ledger.audit import verify
from ledger.chain import link_hash
from ledger.commands import parse_command

#: ``audit verify`` exit code when it finds a break
EXIT_BROKEN = 5


def breaks(ledger: Any) -> list[tuple[int, str]]:
    return [(b.position, b.kind) for b in verify(ledger).breaks]


def edit_one_byte(raw_db: Any, position: int) -> None:
    oid, version, topic, state = raw_db.event(position)
    raw_db.set_event(position, (oid, version, topic, bytes(state) + b" "))


def relink(raw_db: Any, position: int, recorded_at: str) -> None:
    """Give the chain row at ``position`` a new recorded time and recompute its link,
    as an operator who knows the (keyless) chain format would."""
    prev = raw_db.run("SELECT hash FROM ledger_chain WHERE position = ?", [position - 1])[0][0]
    o, v, t, s = raw_db.event(position)
    o = str(o) if raw_db.pg else f"{o[:8]}-{o[8:12]}-{o[12:16]}-{o[16:20]}-{o[20:]}"
    digest = link_hash(prev, position, recorded_at, o, v, t, bytes(s))
    raw_db.run("UPDATE ledger_chain SET recorded_at = ?, hash = ? WHERE position = ?",
               [recorded_at, digest, position])


def test_edited_head_event(sample_ledger: Any, raw_db: Any, run_cli: Any) -> None:
    head = sample_ledger.head()[0]
    edit_one_byte(raw_db, head)
    assert breaks(sample_ledger) == [(head, "edited")]
    result = run_cli("audit", "verify")
    assert result.exit_code == EXIT_BROKEN
    assert f"position {head}: edited" in result.output


def test_edited_first_event(sample_ledger: Any, raw_db: Any, run_cli: Any) -> None:
    edit_one_byte(raw_db, 1)
    assert breaks(sample_ledger) == [(1, "edited")]
    result = run_cli("audit", "verify")
    assert result.exit_code == EXIT_BROKEN
    assert "position 1: edited" in result.output


def test_edited_only_event_of_a_one_event_ledger(db_url: str, raw_db: Any, run_cli: Any
                                                 ) -> None:
    app = Ledger(db_url)
    try:
        app.submit([parse_command(dict(
            type="allocation.granted", allocation_id="G2G-MX", country="MX",
            tpp_amount=1_000, valid_from="2025-01-01"))], actor="test")
        assert app.head() is not None and app.head()[0] == 1  # type: ignore[index]
        assert run_cli("audit", "verify").exit_code == 0
        edit_one_byte(raw_db, 1)
        assert breaks(app) == [(1, "edited")]
    finally:
        app.close()
    result = run_cli("audit", "verify")
    assert result.exit_code == EXIT_BROKEN
    assert "BROKEN: 1 break(s) in 1 events / 1 links" in result.output


def test_recorded_time_equal_to_the_predecessor(sample_ledger: Any, raw_db: Any,
                                                 run_cli: Any) -> None:
    head = sample_ledger.head()[0]
    earlier = sample_ledger.recorded_at(head - 1)
    relink(raw_db, head, earlier)
    assert breaks(sample_ledger) == [(head, "time-not-increasing")]
    result = run_cli("audit", "verify")
    assert result.exit_code == EXIT_BROKEN
    assert f"position {head}: time-not-increasing" in result.output


def test_recorded_time_going_backwards(sample_ledger: Any, raw_db: Any) -> None:
    # position 10 is relinked at position 2's time (and position 11 then fails too:
    # it was built on the old link of 10)
    relink(raw_db, 10, sample_ledger.recorded_at(2))
    assert breaks(sample_ledger) == [(10, "time-not-increasing"), (11, "edited")]
