"""Readable test inputs: build a ledger state from commands, with no I/O.

``Scenario`` decides commands with ``ledger.decide`` and folds the events with
``projections.state.fold``, exactly as the application does, but in memory, so unit
tests read as "given these events, then this position".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.catalog import bundled_catalog
from ledger.commands import PublishRuleRevision, parse_command
from ledger.decide import Context, aggregate_id_of, command_key, decide
from ledger.events import LedgerEvent
from ledger.rulebook import RuleBook, bundled_rulebooks
from projections.positions import Position, country_position
from projections.state import LedgerState, fold
from projections.views import select_rule

H100 = 15_832
CAP = 790_000_000
LPP = 26_900_000
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


class Scenario:
    def __init__(self, *, rules: bool = True) -> None:
        self.state = LedgerState()
        self.events: list[tuple[int, LedgerEvent]] = []
        self.histories: dict[Any, list[LedgerEvent]] = {}
        self.applied: dict[Any, set[str]] = {}
        self.ctx = Context(now=NOW, actor="test", catalog=bundled_catalog())
        if rules:
            for book in bundled_rulebooks():
                self.publish(book)

    def _apply(self, command: Any) -> list[LedgerEvent]:
        history = self.histories.setdefault(aggregate_id_of(command), [])
        applied = self.applied.setdefault(aggregate_id_of(command), set())
        key = command_key(command)
        decision = decide(command, history, self.ctx, key=key, applied=applied)
        if key is not None and decision.events:
            applied.add(key)
        for event in decision.events:
            position = len(self.events) + 1
            self.events.append((position, event))
            history.append(event)
            fold(self.state, position, event)
        return decision.events

    def append_undecided(self, event_type: type[LedgerEvent], aggregate_id: Any,
                         **fields: Any) -> LedgerEvent:
        """Append an event WITHOUT deciding it, as a ledger written before deciding
        refused such a command holds it (e.g. an adjustment after the end): the folds
        must still read it right."""
        history = self.histories.setdefault(aggregate_id, [])
        event = event_type(originator_id=aggregate_id, originator_version=len(history) + 1,
                           timestamp=NOW, actor="test", **fields)
        position = len(self.events) + 1
        self.events.append((position, event))
        history.append(event)
        fold(self.state, position, event)
        return event

    def do(self, **fields: Any) -> list[LedgerEvent]:
        return self._apply(parse_command(fields))

    def publish(self, book: RuleBook) -> None:
        self._apply(PublishRuleRevision(document=book))

    def ship(self, ref: str, day: str, dest: str, quantity: int, *, auth: str = "none",
             product: str = "nvidia-h100-sxm", exporter: str = "acme",
             consignee: str = "c1", tpp_per_unit: int | None = None,
             die_area: str | None = None) -> None:
        kind, _, authref = auth.partition(":")
        authorization: dict[str, Any] = {"kind": kind}
        if authref:
            authorization["ref"] = authref
        fields: dict[str, Any] = dict(
            type="shipment.recorded", exporter_id=exporter, shipment_ref=ref, ship_date=day,
            destination=dest, consignee_id=consignee, product_id=product, quantity=quantity,
            authorization=authorization)
        if tpp_per_unit is not None:
            fields["tpp_per_unit"] = tpp_per_unit
        if die_area is not None:
            fields["die_area_mm2"] = die_area
        self.do(**fields)

    def license(self, alloc_id: str, country: str, amount: int, start: str,
                end: str | None = None, holder: str = "acme") -> None:
        self.do(type="allocation.granted", allocation_id=alloc_id, country=country,
                tpp_amount=amount, valid_from=start, valid_to=end, holder=holder)

    def position(self, country: str, as_of: str, rule: str | None = "ai-diffusion-2025",
                 *, explain: bool = False) -> Position:
        day = dt.date.fromisoformat(as_of)
        book = select_rule(self.state, day, rule)
        return country_position(self.state, country, day, book, explain=explain)


def shipment_line(ref: str, day: str, tpp: int, *, dest: str = "MX", auth: str = "none",
                  exporter: str = "acme", consignee: str = "c1", units: int = 1,
                  die_area: int | None = None) -> dict[str, Any]:
    """A ``shipment.recorded`` import line of a custom ASIC: ``units`` units of ``tpp``
    TPP in all; ``auth`` is ``none``, ``lpp``, ``license:REF`` or ``veu:REF``."""
    kind, _, name = auth.partition(":")
    return {"type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
            "ship_date": day, "destination": dest, "consignee_id": consignee,
            "product_id": "custom-asic", "tpp_per_unit": tpp // units, "quantity": units,
            "authorization": {"kind": kind, **({"ref": name} if name else {})},
            **({"die_area_mm2": die_area} if die_area else {})}
