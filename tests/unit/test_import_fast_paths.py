"""The import's fast paths give the bytes of the general ones.

- a new shipment's stored state written directly (``ledger.new_shipments``) equals
  the mapper's serialization of the event ``decide`` builds, for arbitrary valid
  commands (any end-use text, catalog and non-catalog products, every authorization
  kind, keyed or not), and a refused command raises the same error;
- the chain's recorded times formatted run by run equal per-event ``isoformat``,
  across second, minute, day and year boundaries.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.catalog import Catalog, bundled_catalog
from ledger.commands import RecordShipment, parse_command
from ledger.decide import Context, decide
from ledger.errors import LedgerError
from ledger.new_shipments import RECORDED_TOPIC, NewShipmentRows
from ledger.persistence import PydanticMapper, recorded_times

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
IDS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/\-]{0,20}\Z")
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"),
                             blacklist_characters="\u2028\u2029\x7f"), min_size=1,
               max_size=40)


@st.composite
def record_lines(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["none", "lpp", "license", "veu"]))
    line: dict[str, Any] = {
        "type": "shipment.recorded", "exporter_id": draw(IDS), "shipment_ref": draw(IDS),
        "ship_date": draw(st.dates(dt.date(2000, 1, 1), dt.date(2026, 6, 3))).isoformat(),
        "destination": draw(st.sampled_from(["MX", "CN", "FR", "AE", "KH"])),
        "consignee_id": draw(IDS),
        "product_id": draw(st.sampled_from(["nvidia-h100-sxm", "nvidia-b200", "edge-npu",
                                            "nvidia-h20", "no-such-chip"])),
        "quantity": draw(st.integers(1, 100_000_000)),
        "authorization": {"kind": kind} | ({"ref": draw(IDS)} if kind in ("license", "veu")
                                            else {}),
    }
    if draw(st.booleans()):
        line["tpp_per_unit"] = draw(st.integers(1, 10**12))
    if draw(st.booleans()):
        line["end_use"] = draw(TEXT)
    if draw(st.booleans()):
        line["command_id"] = draw(IDS)
    if draw(st.integers(0, 4)) == 0:
        line["die_area_mm2"] = draw(st.sampled_from([814, 814.5, 0.001, 99999.999]))
    return line


def _general(cmd: RecordShipment, ctx: Context) -> bytes | LedgerError:
    try:
        decision = decide(cmd, [], ctx, key=None)
    except LedgerError as e:
        return e
    (event,) = decision.events
    stored = PydanticMapper().to_stored_event(event)
    assert stored.topic == RECORDED_TOPIC
    return bytes(stored.state)


def _fast(cmd: RecordShipment, ctx: Context) -> bytes | LedgerError | None:
    try:
        return NewShipmentRows(ctx).state(cmd)
    except LedgerError as e:
        return e


@settings(max_examples=300, deadline=None)
@given(line=record_lines(), actor=st.one_of(st.just("cli:golden"), TEXT))
def test_a_new_shipments_state_is_the_mappers(line: dict[str, Any], actor: str) -> None:
    try:
        cmd = parse_command(line)
    except LedgerError:
        return  # not a command (e.g. quantity x tpp beyond the bound is decide's)
    assert isinstance(cmd, RecordShipment)
    ctx = Context(now=NOW, actor=actor, catalog=bundled_catalog())
    general, fast = _general(cmd, ctx), _fast(cmd, ctx)
    if isinstance(general, LedgerError):
        assert isinstance(fast, LedgerError)
        assert (type(fast), str(fast), getattr(fast, "field", None)) == (
            type(general), str(general), getattr(general, "field", None))
        return
    if fast is not None:  # None: the general path builds it (an untrusted actor)
        assert fast == general
        assert json.loads(fast)["class_version"] == 3


def test_an_untrusted_clock_takes_the_general_path() -> None:
    cmd = parse_command({"type": "shipment.recorded", "exporter_id": "e", "shipment_ref": "r",
                         "ship_date": "2025-01-02", "destination": "MX", "consignee_id": "c",
                         "product_id": "nvidia-b200", "quantity": 3,
                         "authorization": {"kind": "none"}})
    assert isinstance(cmd, RecordShipment)
    offset = dt.timezone(dt.timedelta(0), "GMT")  # UTC, but not dt.UTC
    catalog: Catalog = bundled_catalog()
    assert NewShipmentRows(Context(NOW.replace(tzinfo=offset), "cli:x", catalog)).state(
        cmd) is None
    assert NewShipmentRows(Context(NOW, "", catalog)).state(cmd) is None
    assert NewShipmentRows(Context(NOW, "cli:x", catalog)).state(cmd) is not None


def _naive(first: str, count: int) -> list[str]:
    base = dt.datetime.fromisoformat(first)
    return [(base + dt.timedelta(microseconds=i)).isoformat(timespec="microseconds")
            for i in range(count)]


@pytest.mark.parametrize("first", [
    "2026-11-30T02:57:41.123456+00:00", "2026-11-30T02:57:59.999990+00:00",
    "2026-12-31T23:59:59.999999+00:00", "2026-11-30T23:59:59.000000+00:00",
    "2026-01-01T00:00:00.999995+00:00"])
def test_recorded_times_run_across_boundaries(first: str) -> None:
    for count in (0, 1, 5, 11, 2_000):
        assert recorded_times(first, count) == _naive(first, count)


@given(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)),
       st.integers(0, 3_000))
def test_recorded_times_equal_isoformat(when: dt.datetime, count: int) -> None:
    first = when.replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")
    assert recorded_times(first, count) == _naive(first, count)
