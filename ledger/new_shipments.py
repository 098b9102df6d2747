"""A brand-new shipment's stored row, built straight from its validated command.

Most lines of a bulk import record a shipment the ledger has never seen: no history,
nothing to compare, one ``ShipmentRecorded`` at version 1. ``decide`` builds that
event's two pydantic models and the mapper serializes them; here the same stored
bytes are written directly from the command's values, which pydantic validated when
the line was parsed (ids match ``ID_PATTERN``, so they need no JSON escaping; the
free-text end use and the envelope's clock and actor are serialized by pydantic's own
JSON serializer). The checks ``decide`` makes first (ship date not in the future,
the TPP per unit from the catalog, the shipment's TPP bound) are the same calls, in
the same order, so a refused line gets the same error. Anything else (a history, an
untrusted clock or actor, a declared die area) takes the general path.
``tests/unit/test_import_fast_paths.py`` checks the bytes against the mapper's for
arbitrary commands; the import's golden digests check whole ledgers.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic
from pydantic_core import to_json

from ledger.commands import RecordShipment
from ledger.decide import (
    Context,
    _check_die_area,
    _check_ship_date,
    _check_tpp,
    _resolve_tpp,
    _trusted,
)
from ledger.events import MAX_TPP_PER_UNIT, ShipmentRecorded

#: the stored topic of a new shipment's event
RECORDED_TOPIC = get_topic(ShipmentRecorded)


class NewShipmentRows:
    """Stored states of new shipments' ``ShipmentRecorded`` events for one clock and
    actor (one import)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        #: the envelope may be written directly only for a UTC clock and a valid actor
        #: (``decide._trusted`` checks the same, with the TPP per unit, per event)
        self.trusted = _trusted(ctx, 1)
        self.timestamp = to_json(ctx.now).decode("utf-8")
        self.actor = to_json(ctx.actor).decode("utf-8")
        self.version_suffix = f',"class_version":{ShipmentRecorded.class_version}}}'

    def state(self, cmd: RecordShipment) -> bytes | None:
        """The stored state of ``cmd``'s event for a shipment without history, or None
        if the general path must build it. Raises the ``LedgerError`` that ``decide``
        raises for this command."""
        _check_ship_date(cmd.ship_date, self.ctx)
        tpp_per_unit = _resolve_tpp(cmd.product_id, cmd.tpp_per_unit, self.ctx, "tpp_per_unit")
        _check_die_area(cmd.product_id, cmd.die_area_mm2, self.ctx)
        _check_tpp(cmd.quantity, tpp_per_unit)
        if not (self.trusted and 0 < tpp_per_unit <= MAX_TPP_PER_UNIT):
            return None
        if cmd.die_area_mm2 is not None:
            return None  # a declared die area (rare): its decimal text is pydantic's
        auth = cmd.authorization
        ref = "null" if auth.ref is None else f'"{auth.ref}"'
        end_use = "null" if cmd.end_use is None else to_json(cmd.end_use).decode("utf-8")
        day = cmd.ship_date.isoformat()
        return (
            f'{{"timestamp":{self.timestamp},"effective_date":"{day}","actor":{self.actor},'
            f'"exporter_id":"{cmd.exporter_id}","shipment_ref":"{cmd.shipment_ref}",'
            f'"shipment":{{"ship_date":"{day}","destination":"{cmd.destination}",'
            f'"consignee_id":"{cmd.consignee_id}","product_id":"{cmd.product_id}",'
            f'"quantity":{cmd.quantity},"tpp_per_unit":{tpp_per_unit},'
            f'"authorization":{{"kind":"{auth.kind}","ref":{ref}}},"die_area_mm2":null}},'
            f'"end_use":{end_use}{self.version_suffix}'
        ).encode()


__all__ = ["RECORDED_TOPIC", "NewShipmentRows"]
