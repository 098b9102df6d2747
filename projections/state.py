"""The ledger state as known at a recorded position: ``fold(state, event) -> state``.

Folding the event log in recorded order gives, for every shipment, allocation, VEU
and rule revision, what the ledger knew at that position: current shipment values
(after corrections, minus voids), allocation amount changes with their effective
dates, VEU versions, and the rule books in recorded order. Folding stops at a
``known_at`` position to answer "what did the ledger say then". Indexes by country
and consignee keep per-country queries from scanning everything.

Pure: no I/O. ``projections.views`` feeds it from the store.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.events import (
    AllocationAdjusted,
    AllocationGranted,
    AllocationRevoked,
    LedgerEvent,
    RuleRevisionPublished,
    ShipmentCorrected,
    ShipmentFields,
    ShipmentRecorded,
    ShipmentVoided,
    VeuAmended,
    VeuGranted,
    VeuLimits,
    VeuRevoked,
)
from ledger.rulebook import RuleBook


@dataclass(slots=True)
class ShipmentRow:
    """One shipment as known: its current fields and where it sits in the log.

    Slots: a replay of a million shipments holds a million rows at once."""

    exporter_id: str
    shipment_ref: str
    fields: ShipmentFields
    #: recorded position of the ShipmentRecorded event: the tie-break order
    position: int
    #: recorded position of the latest change (correction or void)
    last_position: int
    corrections: int = 0
    voided: bool = False
    #: (exporter_id, shipment_ref), which never change: stored, not rebuilt, because
    #: the replay and the folds look rows up by it several times per shipment
    key: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = (self.exporter_id, self.shipment_ref)

    @property
    def tpp(self) -> int:
        return self.fields.tpp


@dataclass
class AllocationRow:
    allocation_id: str
    country: str
    holder: str | None
    valid_from: dt.date
    valid_to: dt.date | None
    position: int
    reference: str | None
    #: (effective date, recorded position, amount): the grant, then adjustments
    amounts: list[tuple[dt.date, int, int]] = field(default_factory=list)
    revoked: tuple[dt.date, int] | None = None

    @property
    def is_license(self) -> bool:
        return self.holder is not None

    @property
    def end_day(self) -> dt.date | None:
        """The first day the allocation is no longer in force: the day after
        ``valid_to`` (an expiry takes effect at the start of that day) or the
        revocation's effective date, whichever is earlier; None while open-ended."""
        ends = [] if self.valid_to is None else [self.valid_to + dt.timedelta(days=1)]
        if self.revoked is not None:
            ends.append(self.revoked[0])
        return min(ends, default=None)

    def in_force_on(self, day: dt.date) -> bool:
        """Whether the allocation is in force on ``day`` (from the start of
        ``valid_from`` to the start of ``end_day``)."""
        end = self.end_day
        return self.valid_from <= day and (end is None or day < end)

    def amount_on(self, day: dt.date) -> int:
        """The amount in effect on ``day``: the adjustment with the latest effective
        date on or before it (two on the same day: the one recorded later), else the
        grant's amount. An adjustment dated before ``valid_from`` applies from the
        start, in effective-date order like any other; one dated on or after
        ``end_day`` never applies (an adjustment never revives an ended allocation)."""
        amount = self.amounts[0][2]
        end = self.end_day
        for eff, _pos, value in sorted(self.amounts[1:]):
            if eff <= day and (end is None or eff < end):
                amount = value
        return amount

    def change_days(self, until: dt.date) -> list[dt.date]:
        """The days up to ``until`` at whose start the allocation's standing changes
        (starts, changes amount or ends), in order; empty if it is never in force."""
        end = self.end_day
        if end is not None and end <= self.valid_from:
            return []
        days = {self.valid_from}
        for eff, _pos, _amount in self.amounts[1:]:
            if end is None or eff < end:
                days.add(max(eff, self.valid_from))
        if end is not None:
            days.add(end)
        return sorted(d for d in days if d <= until)

    @property
    def revoked_on(self) -> dt.date | None:
        return None if self.revoked is None else self.revoked[0]


@dataclass
class VeuVersion:
    """The grant (every field), or an amendment (None: the field is unchanged)."""

    effective: dt.date
    position: int
    entity: str | None
    covered_countries: list[str] | None
    valid_to: dt.date | None
    limits: VeuLimits | None


@dataclass(frozen=True)
class VeuTerms:
    """A VEU's terms in effect on a day, every amendment applied."""

    entity: str
    covered_countries: list[str]
    valid_to: dt.date | None
    limits: VeuLimits


@dataclass
class VeuRow:
    veu_id: str
    kind: str
    headquarters_country: str
    valid_from: dt.date
    position: int
    versions: list[VeuVersion] = field(default_factory=list)
    revoked: tuple[dt.date, int] | None = None

    def version_on(self, day: dt.date) -> VeuTerms:
        """The VEU as amended by ``day``: the grant, then every amendment in effect by
        then applied in effective-date order (ties in recorded order), each changing
        only its own fields, whatever order they were recorded in."""
        grant = self.versions[0]
        entity, covered = grant.entity, grant.covered_countries
        valid_to, limits = grant.valid_to, grant.limits
        for v in sorted(self.versions[1:], key=lambda v: (v.effective, v.position)):
            if v.effective > day:
                break
            entity = v.entity if v.entity is not None else entity
            covered = v.covered_countries if v.covered_countries is not None else covered
            valid_to = v.valid_to if v.valid_to is not None else valid_to
            limits = v.limits if v.limits is not None else limits
        assert entity is not None and covered is not None and limits is not None
        return VeuTerms(entity, covered, valid_to, limits)

    @property
    def revoked_on(self) -> dt.date | None:
        return None if self.revoked is None else self.revoked[0]


@dataclass
class LedgerState:
    """Everything the ledger knew at ``position``."""

    position: int = 0
    shipments: dict[tuple[str, str], ShipmentRow] = field(default_factory=dict)
    allocations: dict[str, AllocationRow] = field(default_factory=dict)
    veus: dict[str, VeuRow] = field(default_factory=dict)
    #: (recorded position, rule book) in recorded order
    rules: list[tuple[int, RuleBook]] = field(default_factory=list)
    by_country: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    by_consignee: dict[str, set[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(set))
    allocations_by_country: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: every correction and void as (position, shipment key, kind, destination before,
    #: destination after, ship date after): what an auditor's history lists (a few
    #: percent of the events, so cheap to keep)
    shipment_changes: list[tuple[int, tuple[str, str], str, str, str, dt.date]] = field(
        default_factory=list)

    def rule_books(self) -> list[RuleBook]:
        return [book for _pos, book in self.rules]

    def rule(self, rule_id: str) -> RuleBook | None:
        for _pos, book in self.rules:
            if book.id == rule_id:
                return book
        return None

    def countries_with_activity(self) -> list[str]:
        active = {c for c, keys in self.by_country.items()
                  if any(not self.shipments[k].voided for k in keys)}
        active |= {c for c, ids in self.allocations_by_country.items() if ids}
        return sorted(active)


def _index_shipment(state: LedgerState, row: ShipmentRow, add: bool) -> None:
    by_c = state.by_country[row.fields.destination]
    by_k = state.by_consignee[row.fields.consignee_id]
    if add:
        by_c.add(row.key)
        by_k.add(row.key)
    else:
        by_c.discard(row.key)
        by_k.discard(row.key)


def fold(state: LedgerState, position: int, event: LedgerEvent) -> LedgerState:
    """Apply one event recorded at ``position``; returns the same state, advanced.

    Positions must increase; an event at or below the state's position is ignored,
    so folding the same events twice changes nothing."""
    if position <= state.position:
        return state
    state.position = position
    if isinstance(event, ShipmentRecorded):
        row = ShipmentRow(event.exporter_id, event.shipment_ref, event.shipment,
                          position, position)
        state.shipments[row.key] = row
        _index_shipment(state, row, True)
    elif isinstance(event, ShipmentCorrected):
        row = state.shipments[(event.exporter_id, event.shipment_ref)]
        before = row.fields.destination
        _index_shipment(state, row, False)
        row.fields = event.changes.apply(row.fields)
        row.corrections += 1
        row.last_position = position
        _index_shipment(state, row, True)
        state.shipment_changes.append((position, row.key, "corrected", before,
                                       row.fields.destination, row.fields.ship_date))
    elif isinstance(event, ShipmentVoided):
        row = state.shipments[(event.exporter_id, event.shipment_ref)]
        row.voided = True
        row.last_position = position
        state.shipment_changes.append((position, row.key, "voided", row.fields.destination,
                                       row.fields.destination, row.fields.ship_date))
    elif isinstance(event, AllocationGranted):
        alloc = AllocationRow(event.allocation_id, event.country, event.holder,
                              event.valid_from, event.valid_to, position, event.reference,
                              [(event.valid_from, position, event.tpp_amount)])
        state.allocations[alloc.allocation_id] = alloc
        state.allocations_by_country[alloc.country].add(alloc.allocation_id)
    elif isinstance(event, AllocationAdjusted):
        state.allocations[event.allocation_id].amounts.append(
            (event.effective_date, position, event.tpp_amount))
    elif isinstance(event, AllocationRevoked):
        state.allocations[event.allocation_id].revoked = (event.effective_date, position)
    elif isinstance(event, VeuGranted):
        veu = VeuRow(event.veu_id, event.kind, event.headquarters_country, event.valid_from,
                     position)
        veu.versions.append(VeuVersion(event.valid_from, position, event.entity,
                                       list(event.covered_countries), event.valid_to,
                                       event.limits))
        state.veus[veu.veu_id] = veu
    elif isinstance(event, VeuAmended):
        ch = event.changes
        state.veus[event.veu_id].versions.append(VeuVersion(
            event.effective_date, position, ch.entity,
            None if ch.covered_countries is None else list(ch.covered_countries),
            ch.valid_to, ch.limits))
    elif isinstance(event, VeuRevoked):
        state.veus[event.veu_id].revoked = (event.effective_date, position)
    elif isinstance(event, RuleRevisionPublished):
        state.rules.append((position, event.document))
    return state


def fold_all(events: Iterable[tuple[int, LedgerEvent]], state: LedgerState | None = None,
             known_at: int | None = None) -> LedgerState:
    """Fold (position, event) pairs, in recorded order, up to ``known_at``."""
    state = state or LedgerState()
    for position, event in events:
        if known_at is not None and position > known_at:
            break
        fold(state, position, event)
    return state
