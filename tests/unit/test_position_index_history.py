"""The pure steps of the position index's history (which refresh computed a day row,
from which position it may be wrong, whether a known-at is past)."""

from __future__ import annotations

from projections.position_index import EVERYTHING, closed_at, computed_at, is_past

REFRESHES = [(100, EVERYTHING), (250, "2025-03-01"), (400, "2025-06-01")]


def test_a_day_row_was_computed_by_the_latest_refresh_that_recomputed_its_day() -> None:
    assert computed_at(REFRESHES, "0001-01-01") == 100
    assert computed_at(REFRESHES, "2025-02-28") == 100
    assert computed_at(REFRESHES, "2025-03-01") == 250  # since_day itself is recomputed
    assert computed_at(REFRESHES, "2025-05-31") == 250
    assert computed_at(REFRESHES, "2025-06-01") == 400
    assert computed_at(REFRESHES, "2026-01-01") == 400
    assert computed_at([(250, "2025-03-01")], "2025-02-01") is None
    assert computed_at([], "2025-02-01") is None


def test_a_day_row_may_be_wrong_from_the_first_batch_that_changed_a_day_before_it() -> None:
    pending = [(510, "2025-05-01"), (520, "2025-04-01"), (530, "2025-07-01")]
    assert closed_at(pending, "2025-03-31") is None
    assert closed_at(pending, "2025-04-01") == 520  # the mark's own day is changed
    assert closed_at(pending, "2025-05-01") == 510
    assert closed_at(pending, "2025-12-31") == 510
    assert closed_at([(530, "2025-07-01"), (540, "2025-01-01")], "2025-08-01") == 530
    assert closed_at([], "2025-08-01") is None


def test_past_means_before_the_read_models_position() -> None:
    assert not is_past(None, 10)
    assert not is_past(10, 10)
    assert not is_past(11, 10)
    assert is_past(9, 10)


def test_the_memoized_treatment_equals_classify_for_shipments_alike_but_one_field() -> None:
    """``Treater`` shares one Treatment between shipments alike in what ``classify``
    reads: shipments that differ in any of it (here the declared die area, the TPP,
    the product, the destination, the date) still get their own classification."""
    import datetime as dt
    from decimal import Decimal

    from ledger.counting import classify
    from ledger.events import ShipmentFields
    from ledger.rulebook import bundled_rulebook
    from projections.positions import Treater
    from projections.state import LedgerState, ShipmentRow

    def row(ref: str, tpp: int = 2_368, die: str | None = "814", dest: str = "CN",
            day: str = "2024-06-01", product: str = "custom-asic") -> ShipmentRow:
        f = ShipmentFields(ship_date=dt.date.fromisoformat(day), destination=dest,
                           consignee_id="c1", product_id=product, quantity=10,
                           tpp_per_unit=tpp, authorization={"kind": "none"},
                           die_area_mm2=None if die is None else Decimal(die))
        return ShipmentRow("E", ref, f, 1, 1)

    book = bundled_rulebook("baseline-2023")
    treated = Treater(LedgerState(position=1), book)
    rows = [row("a"), row("b", die="300"), row("c", die=None), row("d", tpp=5_000),
            row("e", dest="MX"), row("f", day="2025-06-01"), row("g", die="814"),
            row("h", product="nvidia-h100-sxm", tpp=3_958)]
    got = [treated(r) for r in rows]
    assert got == [classify(r.fields, book) for r in rows]
    assert len({t.clause for t in got[:3]}) > 1  # the die area alone changes it


def test_ids_go_to_the_database_in_chunks_of_in_chunk() -> None:
    from projections.position_index import IN_CHUNK, _chunks, _in

    ids = [f"A{i}" for i in range(IN_CHUNK + 5)]
    assert list(_chunks(ids)) == [ids[:IN_CHUNK], ids[IN_CHUNK:]]
    assert list(_chunks([])) == []
    assert _in(3) == "?,?,?" and _in(1) == "?"


def test_a_countrys_mark_is_its_earliest_day() -> None:
    from projections.position_index import _Marks

    marks = _Marks()
    for country, day in [("MX", "2025-05-01"), ("MX", "2025-03-01"), ("BR", "2025-06-01"),
                         ("MX", "2025-04-01")]:
        marks.mark(country, day)
    assert marks.by_country == {"MX": "2025-03-01", "BR": "2025-06-01"}


def test_the_stored_timeline_has_a_row_only_where_the_pick_changes() -> None:
    import datetime as dt
    from itertools import pairwise

    from ledger.rulebook import bundled_rulebooks
    from projections.position_index import IN_FORCE, ON_THE_BOOKS, timeline

    rows = timeline(list(enumerate(bundled_rulebooks(), 1)))
    for choice in (IN_FORCE, ON_THE_BOOKS):
        mine = [(day, pos) for c, day, pos in rows if c == choice]
        assert mine[0][0] == dt.date.min.isoformat()
        assert all(a[1] != b[1] for a, b in pairwise(mine)), choice
    assert {pos for c, _day, pos in rows if c == ON_THE_BOOKS} == {None}  # composed
    assert len([r for r in rows if r[0] == IN_FORCE]) == 5


def test_regimes_start_where_the_tier_or_the_cap_period_standing_changes() -> None:
    """Mexico: capped from the period's first day, outside it from the day after its
    last; Cambodia: tier 3 until it leaves D:5 on 2026-02-03, then in the period."""
    import datetime as dt

    from ledger.rulebook import bundled_rulebook
    from projections.position_index import regimes

    book = bundled_rulebook("ai-diffusion-2025")
    D = dt.date
    assert regimes(book, "MX") == [D.min, D(2025, 1, 1), D(2028, 1, 1)]
    assert regimes(book, "KH") == [D.min, D(2026, 2, 3), D(2028, 1, 1)]
    assert regimes(book, "FR") == [D.min]
