"""A new shipment's events are built without validating them again (a bulk import's
fast path): the result must be exactly the validated model, and the fast path must
not be taken for anything the command did not validate."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from ledger.catalog import bundled_catalog
from ledger.commands import parse_command
from ledger.decide import Context, decide
from ledger.events import (
    MAX_ACTOR_LENGTH,
    MAX_TPP_PER_UNIT,
    Authorization,
    ShipmentFields,
    ShipmentRecorded,
    construct_validated,
)

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
FIELDS = dict(ship_date=dt.date(2025, 3, 1), destination="MX", consignee_id="c-1",
              product_id="nvidia-h100-sxm", quantity=8, tpp_per_unit=15_832,
              authorization=Authorization(kind="license", ref="LIC-1"))


def _command(**changes: object) -> object:
    data = {"type": "shipment.recorded", "exporter_id": "EXP01", "shipment_ref": "S-1",
            "ship_date": "2025-03-01", "destination": "MX", "consignee_id": "c-1",
            "product_id": "nvidia-h100-sxm", "quantity": 8,
            "authorization": {"kind": "none"}, **changes}
    return parse_command(data)


def test_the_constructed_models_equal_the_validated_ones_byte_for_byte() -> None:
    fast, slow = construct_validated(ShipmentFields, **FIELDS), ShipmentFields(**FIELDS)
    assert fast == slow and fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    envelope = dict(originator_id=uuid.uuid4(), originator_version=1, timestamp=NOW,
                    effective_date=FIELDS["ship_date"], actor="cli:test", exporter_id="EXP01",
                    shipment_ref="S-1", shipment=slow)
    fast_event = construct_validated(ShipmentRecorded, **envelope)  # end_use: its default
    slow_event = ShipmentRecorded(**envelope)
    assert fast_event == slow_event
    assert fast_event.model_dump_json() == slow_event.model_dump_json()
    with pytest.raises(KeyError, match="quantity"):
        construct_validated(ShipmentFields, **{k: v for k, v in FIELDS.items()
                                               if k != "quantity"})


@pytest.mark.parametrize("actor", ["cli:test", "kafka:t/0/1"])
def test_decide_gives_the_same_event_as_the_validated_path(actor: str) -> None:
    ctx = Context(now=NOW, actor=actor, catalog=bundled_catalog())
    event = decide(_command(), [], ctx).events[0]
    again = ShipmentRecorded.model_validate(event.model_dump())
    assert event == again and event.model_dump_json() == again.model_dump_json()


@pytest.mark.parametrize("actor", ["", "cli:\x00evil", "x" * 300])
def test_an_actor_the_event_refuses_is_still_refused(actor: str) -> None:
    from pydantic import ValidationError

    ctx = Context(now=NOW, actor=actor, catalog=bundled_catalog())
    with pytest.raises(ValidationError):
        decide(_command(), [], ctx)


def test_a_clock_not_in_utc_is_still_refused() -> None:
    from pydantic import ValidationError

    ctx = Context(now=NOW.astimezone(dt.timezone(dt.timedelta(hours=2))), actor="cli:t",
                  catalog=bundled_catalog())
    with pytest.raises(ValidationError):
        decide(_command(), [], ctx)


@pytest.mark.parametrize(("tpp", "actor", "trusted"), [
    (1, "a", True),  # the smallest TPP per unit and the shortest actor an event takes
    (0, "cli:t", False),
    (MAX_TPP_PER_UNIT, "a" * MAX_ACTOR_LENGTH, True),  # the largest of each
    (MAX_TPP_PER_UNIT + 1, "cli:t", False),
    (15_832, "", False),
    (15_832, "a" * (MAX_ACTOR_LENGTH + 1), False),
])
def test_the_fast_path_is_taken_exactly_within_the_event_s_bounds(tpp: int, actor: str,
                                                                 trusted: bool) -> None:
    """``_trusted`` admits every TPP per unit and actor the event itself would accept,
    at both ends, and nothing beyond them."""
    from ledger.decide import _trusted

    ctx = Context(now=NOW, actor=actor, catalog=bundled_catalog())
    assert _trusted(ctx, tpp) is trusted
