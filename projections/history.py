"""A country's quota history: every item that moved its position, with running totals.

Built on the explained fold of ``projections.positions`` (so the numbers are the ones
``ledger quota`` gives), in the fold's order (effective date; a day's allocation
changes before its shipments; shipments of one day in recorded order), with:

- the running committed amount and the cap after each item;
- whether the item arrived LATE: recorded after an item with a later effective date
  (a backdated shipment can create a breach in the past, so auditors want to see it);
- corrections and voids at their own positions, including corrections that moved a
  shipment out of the country or into it (they touched the position too).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from ledger.rulebook import RuleBook
from projections.positions import country_position
from projections.state import LedgerState


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    date: dt.date
    position: int
    last_position: int
    kind: str
    identity: str
    bucket: str
    flag: str | None
    tpp: int
    committed_delta: int
    committed_tpp: int
    cap_tpp: int | None
    late: bool
    late_after: int | None
    detail: str
    #: the item after which committed first exceeded the cap (the position's first breach)
    first_breach: bool = False
    #: a voided shipment's original row (it stays listed, counting for nothing)
    voided: bool = False
    #: a correction's changed fields, field -> [old, new] (filled by the caller, which
    #: reads the shipment's versions)
    changes: dict[str, list[Any]] | None = None


class History(BaseModel):
    model_config = ConfigDict(frozen=True)
    country: str
    rule: str | None
    from_date: dt.date | None
    to_date: dt.date
    known_at: int | None
    computed_at_position: int
    entries: list[HistoryEntry]


def country_history(state: LedgerState, country: str, rule: RuleBook | None, *,
                    from_date: dt.date | None, to_date: dt.date,
                    known_at: int | None = None) -> History:
    """Every item that touched ``country`` up to ``to_date`` under ``rule``; items
    before ``from_date`` count in the running totals but are not listed."""
    position = country_position(state, country, to_date, rule, known_at=known_at,
                                explain=True)
    rows_by_pos = {r.position: r for r in state.shipments.values()}
    base_cap = rule.cap_for(country, to_date) if rule is not None else None
    # (date, phase, position, sub, data): by the day rule a day's allocation changes
    # (phase 0) come before its shipments and their corrections (phase 1), as in the fold
    items: list[tuple[dt.date, int, int, int, dict[str, object]]] = []
    for c in position.contributions or []:
        row = rows_by_pos.get(c.position) if c.kind == "shipment" else None
        detail = c.detail
        if row is not None and row.corrections:
            detail += f"; corrected {row.corrections}x, last at position {row.last_position}"
        phase = 1 if c.kind == "shipment" else 0
        items.append((c.date, phase, c.position, 0, {
            "kind": c.kind if c.kind != "shipment" else "shipment.recorded",
            "identity": c.identity, "bucket": c.bucket, "flag": c.flag, "tpp": c.tpp,
            "committed_delta": c.committed_delta, "cap_delta": c.cap_delta,
            "last_position": row.last_position if row else c.position, "detail": detail}))
    # corrections and voids are events of their own, listed at their own positions:
    # one that moved a shipment out of the country, or into it, or voided it, touched
    # the country's position even though the running totals follow the current view
    for pos, key, kind, before, after, ship_date in state.shipment_changes:
        if country not in (before, after) or ship_date > to_date:
            continue
        row = state.shipments[key]
        identity = f"{row.exporter_id}/{row.shipment_ref}"
        if kind == "voided":
            detail = (f"voided (recorded at position {row.position}): counts for nothing")
            if after == country:
                # the original row stays listed where it was, counting for nothing
                items.append((ship_date, 1, row.position, 0, {
                    "kind": "shipment.recorded", "identity": identity, "bucket": "none",
                    "flag": None, "tpp": row.tpp, "committed_delta": 0, "cap_delta": 0,
                    "last_position": row.last_position, "voided": True,
                    "detail": f"voided at position {pos}: counts for nothing"}))
        elif before == after:
            detail = "corrected: the shipment above counts with the corrected values"
        elif before == country:
            detail = f"corrected: moved out of {country} to {after}; it no longer counts here"
        else:
            detail = f"corrected: moved here from {before}; counts here from now on"
        items.append((ship_date, 1, pos, 1, {
            "kind": f"shipment.{kind}", "identity": identity, "bucket": "none",
            "flag": None, "tpp": row.tpp, "committed_delta": 0, "cap_delta": 0,
            "last_position": row.last_position, "detail": detail}))
    items.sort(key=lambda i: i[:4])

    # late: judged against the whole ledger as known, never against the listed window,
    # so --from/--to (and the rule they select) cannot change which events are late
    late_after = late_events(state, country)

    entries: list[HistoryEntry] = []
    committed = 0
    cap = base_cap
    breach = position.first_breach
    for day, _phase, pos, _, data in items:
        committed += int(data["committed_delta"])  # type: ignore[call-overload]
        if cap is not None:
            cap += int(data["cap_delta"])  # type: ignore[call-overload]
        prior = late_after.get(pos)
        late = prior is not None
        # the fold's own first breach (a day's allocation changes take effect together,
        # so the running totals between two of them are no moment of their own)
        first_breach = (breach is not None and day == breach.date and pos == breach.position
                        and not data.get("voided", False)
                        and data["kind"] in (("shipment.recorded",) if breach.type == "shipment"
                                             else ("license", "country-allocation"))
                        and (breach.type == "shipment"
                             or data["identity"] == breach.allocation_id))
        if from_date is not None and day < from_date:
            continue
        entries.append(HistoryEntry(
            date=day, position=pos, last_position=int(data["last_position"]),  # type: ignore[call-overload]
            kind=str(data["kind"]), identity=str(data["identity"]), bucket=str(data["bucket"]),
            flag=data["flag"] if data["flag"] is None else str(data["flag"]),
            tpp=int(data["tpp"]), committed_delta=int(data["committed_delta"]),  # type: ignore[call-overload]
            committed_tpp=committed, cap_tpp=cap, late=late,
            late_after=prior, detail=str(data["detail"]),
            first_breach=first_breach, voided=bool(data.get("voided", False))))
    return History(country=country, rule=position.rule, from_date=from_date, to_date=to_date,
                   known_at=known_at, computed_at_position=position.computed_at_position,
                   entries=entries)


def event_dates(state: LedgerState, country: str) -> dict[int, dt.date]:
    """Every recorded event that touches ``country``'s position, as (recorded position
    -> its own effective date): allocation grants, adjustments and ends, the
    shipments (voided ones too), and the corrections and voids. An allocation's end
    is not an event of its own, so each position keeps its earliest date. Depends on
    nothing but the ledger (not on a date window or a rule)."""
    dates: dict[int, dt.date] = {}

    def add(pos: int, day: dt.date) -> None:
        dates[pos] = min(day, dates.get(pos, day))

    for alloc_id in state.allocations_by_country.get(country, ()):
        a = state.allocations[alloc_id]
        add(a.position, a.valid_from)
        for eff, pos, _amount in a.amounts[1:]:
            add(pos, max(eff, a.valid_from))
        if a.revoked is not None:
            add(a.revoked[1], max(a.revoked[0], a.valid_from))
    for key in state.by_country.get(country, ()):
        row = state.shipments[key]  # voided ones too: their recording was an event
        add(row.position, row.fields.ship_date)
    for pos, _key, _kind, before, after, ship_date in state.shipment_changes:
        if country in (before, after):
            add(pos, ship_date)
    return dates


def late_events(state: LedgerState, country: str) -> dict[int, int]:
    """The LATE events of a country: recorded position -> the position of an earlier
    recorded event with a later effective date (the latest-dated such one)."""
    dates = event_dates(state, country)
    late: dict[int, int] = {}
    best: tuple[dt.date, int] | None = None
    for pos in sorted(dates):
        if best is not None and best[0] > dates[pos]:
            late[pos] = best[1]
        if best is None or dates[pos] > best[0]:
            best = (dates[pos], pos)
    return late


def last_change_date(state: LedgerState) -> dt.date | None:
    """The last effective date on which anything known changes a position (shipments,
    allocation starts, changes and ends): deterministic for a given --known-at (no
    clock involved). None for a ledger without shipments or allocations."""
    dates = [r.fields.ship_date for r in state.shipments.values()]
    for a in state.allocations.values():
        dates += a.change_days(dt.date.max)
    return max(dates, default=None)
