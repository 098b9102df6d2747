"""Deciding: given an aggregate's history and a command, the new events or an error.

Pure functions, no I/O. Each aggregate is small (one shipment, one allocation, one
VEU, one rule revision); its history is the list of its own events. A decision is
either new events, a no-op for a repeat (idempotency), or a ``LedgerError`` saying
exactly what was wrong.

**Idempotency.** Every command from outside has a key: a Kafka message's signed
``message_id``, an import line's ``command_id``, and otherwise the command's content.
A command whose key was already applied to its aggregate, at any point of its
history (not only as its last event), is a no-op reported as a duplicate, checked
before anything else, so a replayed correction can never undo a later one and a
replayed amendment of a since-revoked VEU is not an error. The explicit keys applied
to an aggregate are stored beside its events (``applied``); the content key is
matched against the events themselves. A deliberate return to an earlier value
therefore takes a new ``command_id`` (or a different reason).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from ledger.catalog import Catalog
from ledger.commands import (
    AdjustAllocation,
    AmendVeu,
    Command,
    CorrectShipment,
    GrantAllocation,
    GrantVeu,
    PublishRuleRevision,
    RecordShipment,
    RevokeAllocation,
    RevokeVeu,
    VoidShipment,
)
from ledger.errors import (
    ConflictingDuplicate,
    InvalidTransition,
    LedgerError,
    NotFound,
    RevivesAllocation,
    ValidationError,
)
from ledger.events import (
    MAX_ACTOR_LENGTH,
    MAX_TPP_PER_UNIT,
    AllocationAdjusted,
    AllocationGranted,
    AllocationRevoked,
    LedgerEvent,
    RuleRevisionPublished,
    ShipmentChanges,
    ShipmentCorrected,
    ShipmentFields,
    ShipmentRecorded,
    ShipmentVoided,
    VeuAmended,
    VeuChanges,
    VeuGranted,
    VeuRevoked,
    allocation_aggregate_id,
    check_shipment_tpp,
    construct_validated,
    is_plain_text,
    rule_aggregate_id,
    shipment_id,
    veu_aggregate_id,
)

#: how far past "today" (UTC) a ship date may be, for clock skew across time zones
FUTURE_TOLERANCE = dt.timedelta(days=1)


@dataclass(frozen=True)
class Context:
    """What a decision may depend on besides the history: the clock, the actor, the
    product catalog."""

    now: dt.datetime
    actor: str
    catalog: Catalog


@dataclass(frozen=True)
class Decision:
    """The result of one command: new events, or ``duplicate`` (an identical repeat)."""

    events: list[LedgerEvent] = field(default_factory=list)
    duplicate: bool = False
    note: str = ""


def aggregate_id_of(command: Command) -> Any:
    """The id of the aggregate a command acts on."""
    if isinstance(command, (RecordShipment, CorrectShipment, VoidShipment)):
        return shipment_id(command.exporter_id, command.shipment_ref)
    if isinstance(command, (GrantAllocation, AdjustAllocation, RevokeAllocation)):
        return allocation_aggregate_id(command.allocation_id)
    if isinstance(command, (GrantVeu, AmendVeu, RevokeVeu)):
        return veu_aggregate_id(command.veu_id)
    return rule_aggregate_id(command.document.id)


def command_key(command: Command) -> str | None:
    """The explicit idempotency key of an import line (None: its content is its key)."""
    return None if command.command_id is None else f"command:{command.command_id}"


def message_key(message_id: object) -> str:
    """The idempotency key of a Kafka message."""
    return f"message:{message_id}"


def decide(command: Command, history: Sequence[LedgerEvent], ctx: Context, *,
           key: str | None = None, applied: Set[str] = frozenset()) -> Decision:
    """Decide one command against its aggregate's history and the explicit keys
    already applied to it. ``key`` is the command's explicit key (a message id or a
    command id); None means its content is the key. Raises ``LedgerError``."""
    if key is not None and key in applied:
        return Decision(duplicate=True, note=f"{key} was already applied: nothing appended")
    handler = _HANDLERS[type(command)]
    decision: Decision = handler(command, history, ctx, key is not None)
    return decision


def _envelope(history: Sequence[LedgerEvent], command: Command, ctx: Context) -> dict[str, Any]:
    return {
        "originator_id": aggregate_id_of(command),
        "originator_version": len(history) + 1,
        "timestamp": ctx.now,
        "actor": ctx.actor,
    }


def _differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} then {b.get(k)!r}" for k in keys)


# --- shipments ------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentState:
    recorded: ShipmentRecorded
    current: ShipmentFields
    voided: bool


def shipment_state(history: Sequence[LedgerEvent]) -> ShipmentState | None:
    """Fold a shipment's events into its current state (None if never recorded)."""
    if not history:
        return None
    first = history[0]
    assert isinstance(first, ShipmentRecorded)
    current, voided = first.shipment, False
    for e in history[1:]:
        if isinstance(e, ShipmentCorrected):
            current = e.changes.apply(current)
        elif isinstance(e, ShipmentVoided):
            voided = True
    return ShipmentState(first, current, voided)


def _resolve_tpp(product_id: str, given: int | None, ctx: Context, field_name: str) -> int:
    product = ctx.catalog.get(product_id)
    if product is None:
        if given is None:
            raise ValidationError(
                f"product_id {product_id!r} is not in the catalog, so tpp_per_unit is required",
                field="tpp_per_unit",
            )
        return given
    if given is None:
        return product.tpp_per_unit
    floor = product.tpp_per_unit_low or product.tpp_per_unit
    if given < floor:
        raise ValidationError(
            f"{field_name} {given} is below the catalog's {floor} for {product_id!r}",
            field=field_name, value=given,
        )
    return given


def _check_die_area(product_id: str, die_area: Decimal | None, ctx: Context) -> None:
    """A die area is declared only for a product not in the catalog (with its declared
    TPP): a catalog product's density comes from the catalog's sources, and a second,
    undocumented figure beside it would make its classification depend on the sender."""
    if die_area is not None and ctx.catalog.get(product_id) is not None:
        raise ValidationError(
            f"die_area_mm2 {die_area} is given for {product_id!r}, which is in the catalog "
            "(its density comes from there); a die area is declared only with the "
            "tpp_per_unit of a product not in the catalog",
            field="die_area_mm2", value=str(die_area),
        )


def _check_tpp(quantity: int, tpp_per_unit: int) -> None:
    try:
        check_shipment_tpp(quantity, tpp_per_unit)
    except ValueError as e:
        raise ValidationError(str(e), field="quantity", value=quantity) from None


def _check_ship_date(day: dt.date, ctx: Context) -> None:
    if day > (ctx.now + FUTURE_TOLERANCE).date():
        raise ValidationError(
            f"ship_date {day.isoformat()} is in the future (today is {ctx.now.date()})",
            field="ship_date", value=day.isoformat(),
        )


def _record_shipment(cmd: RecordShipment, history: Sequence[LedgerEvent], ctx: Context,
                     keyed: bool) -> Decision:
    _check_ship_date(cmd.ship_date, ctx)
    tpp_per_unit = _resolve_tpp(cmd.product_id, cmd.tpp_per_unit, ctx, "tpp_per_unit")
    _check_die_area(cmd.product_id, cmd.die_area_mm2, ctx)
    _check_tpp(cmd.quantity, tpp_per_unit)
    trusted = _trusted(ctx, tpp_per_unit)
    fields = (partial(construct_validated, ShipmentFields) if trusted else ShipmentFields)(
        ship_date=cmd.ship_date,
        destination=cmd.destination,
        consignee_id=cmd.consignee_id,
        product_id=cmd.product_id,
        quantity=cmd.quantity,
        tpp_per_unit=tpp_per_unit,
        authorization=cmd.authorization,
        die_area_mm2=cmd.die_area_mm2,
    )
    state = shipment_state(history)
    if state is not None:
        if state.recorded.shipment == fields and state.recorded.end_use == cmd.end_use:
            return Decision(duplicate=True, note="already recorded, identical: nothing appended")
        before = {**state.recorded.shipment.model_dump(mode="json"),
                  "end_use": state.recorded.end_use}
        after = {**fields.model_dump(mode="json"), "end_use": cmd.end_use}
        raise ConflictingDuplicate(
            f"shipment {cmd.exporter_id}/{cmd.shipment_ref} was already recorded with "
            f"different values ({_differences(before, after)}); "
            "send a shipment.corrected instead"
        )
    event = (partial(construct_validated, ShipmentRecorded) if trusted else ShipmentRecorded)(
        **_envelope(history, cmd, ctx),
        effective_date=cmd.ship_date,
        exporter_id=cmd.exporter_id,
        shipment_ref=cmd.shipment_ref,
        shipment=fields,
        end_use=cmd.end_use,
    )
    return Decision([event])


def _trusted(ctx: Context, tpp_per_unit: int) -> bool:
    """Whether a new shipment's event may be built without validating it again: every
    field comes from the validated command, except the TPP per unit (which may come
    from the catalog: checked here against the event's bounds) and the envelope's
    clock and actor (checked here). Validating again was a third of a bulk import."""
    return (0 < tpp_per_unit <= MAX_TPP_PER_UNIT and ctx.now.tzinfo is dt.UTC
            and 0 < len(ctx.actor) <= MAX_ACTOR_LENGTH and is_plain_text(ctx.actor))


def _existing_shipment(exporter_id: str, ref: str, history: Sequence[LedgerEvent]
                       ) -> ShipmentState:
    state = shipment_state(history)
    if state is None:
        raise NotFound(f"shipment {exporter_id}/{ref} was never recorded")
    return state


def _same_correction(event: ShipmentCorrected, changes: ShipmentChanges, reason: str) -> bool:
    """True if ``event`` is what a correction with these changes and reason appended
    (the TPP per unit it took from the catalog included)."""
    if event.reason != reason:
        return False
    given, applied = changes.changed(), event.changes.changed()
    if "tpp_per_unit" not in given:
        applied.pop("tpp_per_unit", None)
    return given == applied


def _correct_shipment(cmd: CorrectShipment, history: Sequence[LedgerEvent], ctx: Context,
                      keyed: bool) -> Decision:
    state = _existing_shipment(cmd.exporter_id, cmd.shipment_ref, history)
    changes = cmd.changes()
    if not changes.changed():
        raise ValidationError("a correction must change at least one field",
                              field="(fields)")
    if not keyed and any(isinstance(e, ShipmentCorrected)
                         and _same_correction(e, changes, cmd.reason) for e in history):
        return Decision(duplicate=True, note="identical correction already applied")
    if state.voided:
        raise InvalidTransition(
            f"shipment {cmd.exporter_id}/{cmd.shipment_ref} is voided; it cannot be corrected"
        )
    if changes.ship_date is not None:
        _check_ship_date(changes.ship_date, ctx)
    if changes.product_id is not None or changes.tpp_per_unit is not None:
        product_id = changes.product_id or state.current.product_id
        tpp = _resolve_tpp(product_id, changes.tpp_per_unit, ctx, "tpp_per_unit")
        changes = changes.model_copy(update={"tpp_per_unit": tpp})
    _check_die_area(changes.product_id or state.current.product_id, changes.die_area_mm2, ctx)
    new = changes.apply(state.current)
    _check_tpp(new.quantity, new.tpp_per_unit)
    if new == state.current:
        raise ValidationError(
            f"correction of {cmd.exporter_id}/{cmd.shipment_ref} changes nothing "
            f"(values already {changes.model_dump(mode='json', exclude_none=True)})",
            field="(fields)",
        )
    event = ShipmentCorrected(
        **_envelope(history, cmd, ctx),
        effective_date=new.ship_date,
        exporter_id=cmd.exporter_id,
        shipment_ref=cmd.shipment_ref,
        reason=cmd.reason,
        changes=changes,
    )
    return Decision([event])


def _void_shipment(cmd: VoidShipment, history: Sequence[LedgerEvent], ctx: Context,
                   keyed: bool) -> Decision:
    state = _existing_shipment(cmd.exporter_id, cmd.shipment_ref, history)
    if state.voided:
        if any(isinstance(e, ShipmentVoided) and e.reason == cmd.reason for e in history):
            return Decision(duplicate=True, note="already voided")
        raise InvalidTransition(
            f"shipment {cmd.exporter_id}/{cmd.shipment_ref} is already voided")
    event = ShipmentVoided(
        **_envelope(history, cmd, ctx),
        effective_date=state.current.ship_date,
        exporter_id=cmd.exporter_id,
        shipment_ref=cmd.shipment_ref,
        reason=cmd.reason,
    )
    return Decision([event])


# --- allocations ----------------------------------------------------------------------


def _grant_allocation(cmd: GrantAllocation, history: Sequence[LedgerEvent], ctx: Context,
                      keyed: bool) -> Decision:
    fields = cmd.model_dump(exclude={"type", "command_id"})
    if history:
        first = history[0]
        assert isinstance(first, AllocationGranted)
        before = first.model_dump(include=set(fields))
        if before == fields:
            return Decision(duplicate=True, note="already granted, identical")
        raise ConflictingDuplicate(
            f"allocation {cmd.allocation_id!r} was already granted with different values "
            f"({_differences(before, fields)})"
        )
    event = AllocationGranted(**_envelope(history, cmd, ctx), effective_date=cmd.valid_from,
                              **fields)
    return Decision([event])


def _not_before_grant(day: dt.date, grant: LedgerEvent, what: str) -> None:
    """A revocation takes effect on or after the grant's start: one dated earlier
    would silently void every shipment ever made under the grant."""
    if day < grant.effective_date:
        raise ValidationError(
            f"effective_date {day} is before {what} starts ({grant.effective_date}); "
            "revoke it on or after its start", field="effective_date", value=day.isoformat())


def _live_allocation(allocation_id: str, history: Sequence[LedgerEvent]) -> None:
    if not history:
        raise NotFound(f"allocation {allocation_id!r} was never granted")


def _adjust_allocation(cmd: AdjustAllocation, history: Sequence[LedgerEvent], ctx: Context,
                       keyed: bool) -> Decision:
    _live_allocation(cmd.allocation_id, history)
    if not keyed and any(
            isinstance(e, AllocationAdjusted) and e.tpp_amount == cmd.tpp_amount
            and e.effective_date == cmd.effective_date and e.reason == cmd.reason
            for e in history):
        return Decision(duplicate=True, note="identical adjustment already applied")
    _not_after_end(cmd, history)
    event = AllocationAdjusted(**_envelope(history, cmd, ctx), effective_date=cmd.effective_date,
                               allocation_id=cmd.allocation_id, tpp_amount=cmd.tpp_amount,
                               reason=cmd.reason)
    return Decision([event])


def _not_after_end(cmd: AdjustAllocation, history: Sequence[LedgerEvent]) -> None:
    """An adjustment never revives an allocation: refuse one effective on or after the
    day it expired (the day after ``valid_to``) or was revoked, and any adjustment of
    a revoked allocation."""
    grant = history[0]
    assert isinstance(grant, AllocationGranted)
    revoked = next((e for e in history if isinstance(e, AllocationRevoked)), None)
    day = cmd.effective_date
    if revoked is not None and day >= revoked.effective_date:
        raise RevivesAllocation(
            f"effective_date {day} is on or after allocation {cmd.allocation_id!r} was "
            f"revoked ({revoked.effective_date}); an adjustment never revives an allocation",
            value=day.isoformat())
    if grant.valid_to is not None and day > grant.valid_to:
        raise RevivesAllocation(
            f"effective_date {day} is after allocation {cmd.allocation_id!r} ended "
            f"(valid_to {grant.valid_to}); an adjustment never revives an allocation",
            value=day.isoformat())
    if revoked is not None:
        raise InvalidTransition(
            f"allocation {cmd.allocation_id!r} is revoked; it cannot be adjusted")


def _revoke_allocation(cmd: RevokeAllocation, history: Sequence[LedgerEvent], ctx: Context,
                       keyed: bool) -> Decision:
    _live_allocation(cmd.allocation_id, history)
    _not_before_grant(cmd.effective_date, history[0], f"allocation {cmd.allocation_id!r}")
    last = history[-1]
    if isinstance(last, AllocationRevoked):
        if last.effective_date == cmd.effective_date and last.reason == cmd.reason:
            return Decision(duplicate=True, note="already revoked")
        raise InvalidTransition(f"allocation {cmd.allocation_id!r} is already revoked")
    event = AllocationRevoked(**_envelope(history, cmd, ctx), effective_date=cmd.effective_date,
                              allocation_id=cmd.allocation_id, reason=cmd.reason)
    return Decision([event])


# --- VEUs -----------------------------------------------------------------------------


def _grant_veu(cmd: GrantVeu, history: Sequence[LedgerEvent], ctx: Context,
               keyed: bool) -> Decision:
    fields = cmd.model_dump(exclude={"type", "command_id"})
    if history:
        first = history[0]
        assert isinstance(first, VeuGranted)
        before = first.model_dump(include=set(fields))
        if before == fields:
            return Decision(duplicate=True, note="already granted, identical")
        raise ConflictingDuplicate(
            f"VEU {cmd.veu_id!r} was already granted with different values "
            f"({_differences(before, fields)})"
        )
    event = VeuGranted(**_envelope(history, cmd, ctx), effective_date=cmd.valid_from, **fields)
    return Decision([event])


def _amend_veu(cmd: AmendVeu, history: Sequence[LedgerEvent], ctx: Context,
               keyed: bool) -> Decision:
    if not history:
        raise NotFound(f"VEU {cmd.veu_id!r} was never granted")
    changes = VeuChanges(entity=cmd.entity, covered_countries=cmd.covered_countries,
                         valid_to=cmd.valid_to, limits=cmd.limits)
    if not changes.model_dump(exclude_none=True):
        raise ValidationError("a VEU amendment must change at least one field",
                              field="(fields)")
    if not keyed and any(
            isinstance(e, VeuAmended) and e.changes == changes
            and e.effective_date == cmd.effective_date and e.reason == cmd.reason
            for e in history):
        return Decision(duplicate=True, note="identical amendment already applied")
    if any(isinstance(e, VeuRevoked) for e in history):
        raise InvalidTransition(f"VEU {cmd.veu_id!r} is revoked; it cannot be amended")
    event = VeuAmended(**_envelope(history, cmd, ctx), effective_date=cmd.effective_date,
                       veu_id=cmd.veu_id, changes=changes, reason=cmd.reason)
    return Decision([event])


def _revoke_veu(cmd: RevokeVeu, history: Sequence[LedgerEvent], ctx: Context,
                keyed: bool) -> Decision:
    if not history:
        raise NotFound(f"VEU {cmd.veu_id!r} was never granted")
    _not_before_grant(cmd.effective_date, history[0], f"VEU {cmd.veu_id!r}")
    last = history[-1]
    if isinstance(last, VeuRevoked):
        if last.effective_date == cmd.effective_date and last.reason == cmd.reason:
            return Decision(duplicate=True, note="already revoked")
        raise InvalidTransition(f"VEU {cmd.veu_id!r} is already revoked")
    event = VeuRevoked(**_envelope(history, cmd, ctx), effective_date=cmd.effective_date,
                       veu_id=cmd.veu_id, reason=cmd.reason)
    return Decision([event])


# --- rule revisions -------------------------------------------------------------------


def _publish_rule(cmd: PublishRuleRevision, history: Sequence[LedgerEvent], ctx: Context,
                  keyed: bool) -> Decision:
    doc = cmd.document
    if history:
        first = history[0]
        assert isinstance(first, RuleRevisionPublished)
        if first.document == doc:
            return Decision(duplicate=True, note="already published, identical")
        raise ConflictingDuplicate(
            f"rule revision {doc.id!r} was already published with a different document; "
            "publish a new revision with its own id"
        )
    event = RuleRevisionPublished(**_envelope(history, cmd, ctx), effective_date=doc.effective,
                                  rule_id=doc.id, document=doc)
    return Decision([event])


_HANDLERS: dict[type, Any] = {
    RecordShipment: _record_shipment,
    CorrectShipment: _correct_shipment,
    VoidShipment: _void_shipment,
    GrantAllocation: _grant_allocation,
    AdjustAllocation: _adjust_allocation,
    RevokeAllocation: _revoke_allocation,
    GrantVeu: _grant_veu,
    AmendVeu: _amend_veu,
    RevokeVeu: _revoke_veu,
    PublishRuleRevision: _publish_rule,
}

__all__ = ["Context", "Decision", "LedgerError", "aggregate_id_of", "command_key", "decide",
           "message_key", "shipment_state"]
