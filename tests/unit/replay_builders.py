"""Builders of in-memory ledger states for the pure replay tests (no store).

Events are built with a fixed envelope and folded with ``projections.state.fold``,
exactly as ``load_state`` folds them from the store.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ledger.events import (
    AllocationGranted,
    Authorization,
    LedgerEvent,
    RuleRevisionPublished,
    ShipmentFields,
    ShipmentRecorded,
    ShipmentVoided,
    VeuGranted,
    VeuLimits,
)
from ledger.rulebook import RuleBook, bundled_rulebooks
from projections.state import LedgerState, fold

NOW = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _env(date: dt.date) -> dict[str, Any]:
    return {"originator_id": uuid.uuid4(), "originator_version": 1, "timestamp": NOW,
            "effective_date": date, "actor": "test"}


class StateBuilder:
    """Appends events in order and folds them; ``state`` is the result."""

    def __init__(self, books: tuple[RuleBook, ...] | list[RuleBook] | None = None) -> None:
        self.state = LedgerState()
        self.position = 0
        for book in bundled_rulebooks() if books is None else books:
            self.rule(book)

    def add(self, event: LedgerEvent) -> int:
        self.position += 1
        fold(self.state, self.position, event)
        return self.position

    def rule(self, book: RuleBook) -> int:
        return self.add(RuleRevisionPublished(**_env(book.effective), rule_id=book.id,
                                              document=book))

    def ship(self, exporter: str, ref: str, day: dt.date, to: str, tpp: int, *,
             consignee: str = "c-1", kind: str = "none", auth_ref: str | None = None,
             units: int = 1, product: str = "test-chip") -> int:
        fields = ShipmentFields(ship_date=day, destination=to, consignee_id=consignee,
                                product_id=product, quantity=units, tpp_per_unit=tpp,
                                authorization=Authorization(kind=kind, ref=auth_ref))  # type: ignore[arg-type]
        return self.add(ShipmentRecorded(**_env(day), exporter_id=exporter,
                                         shipment_ref=ref, shipment=fields))

    def void(self, exporter: str, ref: str) -> int:
        return self.add(ShipmentVoided(**_env(dt.date(2025, 1, 1)), exporter_id=exporter,
                                       shipment_ref=ref, reason="test"))

    def license(self, allocation_id: str, country: str, amount: int, start: dt.date,
                end: dt.date | None, holder: str | None = "exp-a") -> int:
        return self.add(AllocationGranted(**_env(start), allocation_id=allocation_id,
                                          country=country, tpp_amount=amount,
                                          valid_from=start, valid_to=end, holder=holder))

    def veu(self, veu_id: str, kind: str, hq: str, covered: list[str], start: dt.date,
            **limits: int) -> int:
        return self.add(VeuGranted(**_env(start), veu_id=veu_id, entity=veu_id,
                                   kind=kind, headquarters_country=hq,  # type: ignore[arg-type]
                                   covered_countries=covered, valid_from=start,
                                   limits=VeuLimits(**limits)))
