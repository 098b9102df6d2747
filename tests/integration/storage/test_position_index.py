"""The position index answers exactly what the full fold answers, and stays exact as
the log grows: backdated shipments, corrections moving a shipment between countries,
voids, revocations, LPP shipments of a consignee in another country, new rule
revisions; ``--known-at`` before the read model's position goes to the fold.

Each check compares ``readmodel_quota`` (the index) with ``quota`` over a full replay
of the log (``load_state``), on both backends.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.commands import PublishRuleRevision, parse_command
from ledger.rulebook import bundled_rulebooks
from projections import position_index
from projections.position_index import PositionIndex
from projections.readmodel import ReadModel
from projections.views import load_state, quota, quota_all, readmodel_quota, readmodel_quota_all

from tests.integration.storage.storage_helpers import shipment

RULES = [None, "ai-diffusion-2025", "baseline-2023", "h20-license-2025"]
DAYS = [dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2025, 3, 1),
        dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 2),
        dt.date(2025, 9, 30), dt.date(2026, 6, 30)]
LPP = {"kind": "lpp"}


def _pairs_built(app: Ledger) -> int:
    rm = ReadModel(app)
    with rm._tx(commit=False) as c:
        return int(c.execute("SELECT COUNT(*) FROM rm_quota_pairs").fetchall()[0][0])


def assert_equal_to_fold(app: Ledger, countries: list[str], days: list[dt.date] = DAYS,
                         rules: list[str | None] = RULES) -> None:
    state = load_state(app)
    for country in countries:
        for day in days:
            for rule in rules:
                want = quota(state, country, day, rule_id=rule)
                got = readmodel_quota(app, country, day, rule_id=rule)
                assert got == want, (country, day, rule)


@pytest.fixture
def app(db_url: str) -> Any:
    app = Ledger(db_url)
    app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()], actor="t")
    yield app
    app.close()


def _submit(app: Ledger, *commands: Any) -> None:
    app.submit([c if not isinstance(c, dict) else parse_command(c) for c in commands],
               actor="t")


def test_answers_come_from_the_index(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=100, day="2025-06-01"))
    assert_equal_to_fold(app, ["MX"])
    assert _pairs_built(app) == len(bundled_rulebooks())  # one per revision, for MX
    # the stored day ends: before anything, and the ship date
    rm = ReadModel(app)
    with rm._tx(commit=False) as c:
        days = {r[0] for r in c.execute(
            "SELECT DISTINCT day FROM rm_quota_days WHERE country = 'MX'").fetchall()}
    assert days == {"0001-01-01", "2025-06-01"}


def test_backdated_shipment_changes_days_after_it(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300, day="2025-06-01"),
            shipment("B", quantity=200, day="2025-09-01"))
    assert_equal_to_fold(app, ["MX"])
    _submit(app, shipment("C", quantity=900, day="2025-03-01"))  # reported late
    assert_equal_to_fold(app, ["MX"])
    # the stored days before the backdated one were kept, not recomputed
    rm = ReadModel(app)
    with rm._tx(commit=False) as c:
        assert c.execute("SELECT COUNT(DISTINCT rule_position) FROM rm_quota_days WHERE "
                         "country = 'MX' AND day = '2025-06-01'").fetchall()[0][0] == len(
            bundled_rulebooks())


def test_correction_moves_a_shipment_between_countries(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300), shipment("B", dest="BR", quantity=50))
    assert_equal_to_fold(app, ["MX", "BR"])
    _submit(app, {"type": "shipment.corrected", "exporter_id": "EXP01",
                  "shipment_ref": "A", "reason": "wrong destination", "destination": "BR",
                  "ship_date": "2025-02-01"})
    assert_equal_to_fold(app, ["MX", "BR"])
    assert readmodel_quota(app, "MX", dt.date(2025, 9, 30),
                           rule_id="ai-diffusion-2025").committed_tpp == 0


def test_void(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300), shipment("B", quantity=5, day="2025-07-01"))
    assert_equal_to_fold(app, ["MX"])
    _submit(app, {"type": "shipment.voided", "exporter_id": "EXP01", "shipment_ref": "A",
                  "reason": "cancelled"})
    assert_equal_to_fold(app, ["MX"])


def test_license_revocation_and_adjustment(app: Ledger) -> None:
    lic = {"kind": "license", "ref": "LIC-1"}
    _submit(app, {"type": "allocation.granted", "allocation_id": "LIC-1", "country": "MX",
                  "holder": "EXP01", "tpp_amount": 15832 * 2000, "valid_from": "2025-01-01"},
            shipment("A", quantity=300, auth=lic, day="2025-04-01"),
            shipment("B", quantity=3000, auth=lic, day="2025-08-01"),
            # the same license named for another country: license-invalid there
            shipment("C", dest="BR", quantity=10, auth=lic, day="2025-04-01"))
    assert_equal_to_fold(app, ["MX", "BR"])
    _submit(app, {"type": "allocation.adjusted", "allocation_id": "LIC-1",
                  "tpp_amount": 15832 * 10, "effective_date": "2025-02-01",
                  "reason": "cut"})
    assert_equal_to_fold(app, ["MX", "BR"])
    _submit(app, {"type": "allocation.revoked", "allocation_id": "LIC-1",
                  "effective_date": "2025-06-01", "reason": "revoked"})
    assert_equal_to_fold(app, ["MX", "BR"])


def test_country_allocation_and_veu(app: Ledger) -> None:
    veu = {"kind": "veu", "ref": "VEU-1"}
    _submit(app, {"type": "veu.granted", "veu_id": "VEU-1", "entity": "DC",
                  "kind": "national", "headquarters_country": "US",
                  "covered_countries": ["MX"], "valid_from": "2025-01-01"},
            shipment("A", quantity=300, auth=veu, day="2025-07-01"))
    assert_equal_to_fold(app, ["MX"])
    _submit(app, {"type": "veu.revoked", "veu_id": "VEU-1", "effective_date": "2025-05-01",
                  "reason": "revoked"},
            {"type": "allocation.granted", "allocation_id": "G2G-1", "country": "MX",
             "tpp_amount": 10**9, "valid_from": "2025-03-01"})
    assert_equal_to_fold(app, ["MX"])


def test_lpp_of_a_consignee_in_another_country(app: Ledger) -> None:
    """The LPP yearly limit is per consignee across countries: a backdated LPP
    shipment to BR moves MX's LPP excess."""
    big = 26_900_000 // 15832  # units of H100 near the yearly limit
    _submit(app, shipment("A", quantity=big, auth=LPP, consignee="K", day="2025-06-01"))
    assert_equal_to_fold(app, ["MX"], rules=["ai-diffusion-2025"])
    _submit(app, shipment("B", dest="BR", quantity=big, auth=LPP, consignee="K",
                          day="2025-02-01"))
    assert_equal_to_fold(app, ["MX", "BR"], rules=["ai-diffusion-2025"])
    assert readmodel_quota(app, "MX", dt.date(2025, 9, 30), rule_id="ai-diffusion-2025"
                           ).breakdown["lpp_excess_tpp"] > 0


def test_new_rule_revision(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300))
    assert_equal_to_fold(app, ["MX"])
    book = next(b for b in bundled_rulebooks() if b.id == "ai-diffusion-2025")
    data = book.model_dump(mode="json")
    data["id"] = "ai-diffusion-2025-enforced"
    data["enforcement"] = {**data["enforcement"], "suspended": None}
    app.submit([PublishRuleRevision(document=type(book).model_validate(data))], actor="t")
    assert_equal_to_fold(app, ["MX"], rules=[None, "ai-diffusion-2025-enforced"])


def _indexed(app: Ledger, country: str, day: dt.date, rule: str | None,
             known_at: int) -> bool:
    """Whether the index (not the fold) answers this known-at question."""
    found = PositionIndex(ReadModel(app)).position(country, day, rule_id=rule,
                                                   known_at=known_at, catch_up=False)
    return found is not None


def test_past_known_at_equals_the_fold(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300))
    before = app.max_position()
    readmodel_quota(app, "MX", dt.date(2025, 9, 30))
    _submit(app, shipment("B", quantity=70, day="2025-01-05"))
    day = dt.date(2025, 9, 30)
    for known_at in (before, app.max_position()):
        want = quota(load_state(app, known_at), "MX", day, known_at=known_at)
        assert readmodel_quota(app, "MX", day, known_at=known_at) == want
    # the rows the query at ``before`` read were kept when B's refresh replaced them
    assert _indexed(app, "MX", day, None, before)


def test_known_at_every_position_of_a_growing_ledger(app: Ledger) -> None:
    """Slices appended one at a time, the index refreshed after each (as queries do),
    then every recorded position asked: at the refreshes the index answers (the rows
    valid then were kept), between them the fold, and every answer equals the fold's
    as known at that position. The slices backdate, correct, move, void, adjust and
    revoke, so refreshes replace days from early on."""
    lic = {"kind": "license", "ref": "LIC-1"}
    slices = [
        [shipment("A", quantity=300, day="2025-06-01"),
         shipment("B", dest="BR", quantity=40, day="2025-07-01")],
        [shipment("C", quantity=900, day="2025-03-01"),  # backdated
         {"type": "allocation.granted", "allocation_id": "LIC-1", "country": "MX",
          "holder": "EXP01", "tpp_amount": 15832 * 50, "valid_from": "2025-01-01"}],
        [shipment("D", quantity=60, auth=lic, day="2025-08-01"),
         {"type": "shipment.corrected", "exporter_id": "EXP01", "shipment_ref": "A",
          "reason": "moved", "destination": "BR"}],
        [{"type": "shipment.voided", "exporter_id": "EXP01", "shipment_ref": "C",
          "reason": "cancelled"},
         {"type": "allocation.adjusted", "allocation_id": "LIC-1", "tpp_amount": 15832,
          "effective_date": "2025-07-15", "reason": "cut"}],
        [shipment("E", quantity=5, day="2025-09-01"),
         {"type": "allocation.revoked", "allocation_id": "LIC-1",
          "effective_date": "2025-08-15", "reason": "revoked"}],
    ]
    refreshed = []
    for commands in slices:
        for command in commands:  # one event per batch: marks at every position
            _submit(app, command)
            readmodel_quota(app, "BR", dt.date(2025, 1, 1))  # catch up, MX not refreshed
        for country in ("MX", "BR"):
            for rule in RULES:
                readmodel_quota(app, country, DAYS[-1], rule_id=rule)  # refresh
        refreshed.append(app.max_position())
    indexed = 0
    # from the last bundled revision (before it, --rule names an unknown revision)
    for known_at in range(len(bundled_rulebooks()), app.max_position() + 1):
        state = load_state(app, known_at)
        for country in ("MX", "BR"):
            for day in DAYS:
                for rule in RULES:
                    want = quota(state, country, day, rule_id=rule, known_at=known_at)
                    got = readmodel_quota(app, country, day, rule_id=rule, known_at=known_at)
                    assert got == want, (known_at, country, day, rule)
                    if known_at in refreshed[:-1] and rule is not None:
                        assert _indexed(app, country, day, rule, known_at), (known_at,)
                        indexed += 1
    assert indexed > 0


def test_known_at_history_restarts_when_it_outgrows_its_bound(
        app: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pair keeps at most HISTORY_FACTOR times its live rows of past rows; beyond,
    its history restarts at the refresh and earlier known-at positions go to the
    fold (still equal to it)."""
    monkeypatch.setattr(position_index, "HISTORY_FACTOR", 1)
    rule = "ai-diffusion-2025"
    day = dt.date(2025, 12, 31)
    positions = []
    for i, ship_day in enumerate(["2025-06-01", "2025-05-01", "2025-04-01", "2025-03-01"]):
        _submit(app, shipment(f"S{i}", quantity=10 + i, day=ship_day))
        readmodel_quota(app, "MX", day, rule_id=rule)
        positions.append(app.max_position())
    rm = ReadModel(app)
    with rm._tx(commit=False) as c:
        past, live = c.execute(
            "SELECT (SELECT COUNT(*) FROM rm_quota_past WHERE country = 'MX'), "
            "(SELECT COUNT(*) FROM rm_quota_days WHERE country = 'MX')").fetchall()[0]
    assert past <= live * len(bundled_rulebooks())
    answered = [_indexed(app, "MX", day, rule, k) for k in positions]
    assert answered[-1] and not all(answered)
    for known_at in positions:
        want = quota(load_state(app, known_at), "MX", day, rule_id=rule, known_at=known_at)
        assert readmodel_quota(app, "MX", day, rule_id=rule, known_at=known_at) == want


def test_known_at_before_a_later_rule_revision_goes_to_the_fold(app: Ledger) -> None:
    """The stored in-force timeline is of every revision recorded: known at a position
    before the last revision, a question without --rule goes to the fold."""
    _submit(app, shipment("A", quantity=300))
    day = dt.date(2025, 9, 30)
    readmodel_quota(app, "MX", day)
    readmodel_quota(app, "MX", day, rule_id="ai-diffusion-2025")
    before = app.max_position()
    book = next(b for b in bundled_rulebooks() if b.id == "ai-diffusion-2025")
    data = book.model_dump(mode="json")
    data["id"] = "ai-diffusion-2025-enforced"
    data["enforcement"] = {**data["enforcement"], "suspended": None}
    app.submit([PublishRuleRevision(document=type(book).model_validate(data))], actor="t")
    readmodel_quota(app, "MX", day)
    assert not _indexed(app, "MX", day, None, before)
    assert _indexed(app, "MX", day, "ai-diffusion-2025", before)
    for rule in (None, "ai-diffusion-2025"):
        want = quota(load_state(app, before), "MX", day, rule_id=rule, known_at=before)
        assert readmodel_quota(app, "MX", day, rule_id=rule, known_at=before) == want


def test_all_countries(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300), shipment("B", dest="BR", quantity=5),
            shipment("C", dest="DE", quantity=5),
            {"type": "shipment.voided", "exporter_id": "EXP01", "shipment_ref": "C",
             "reason": "x"})
    state = load_state(app)
    for day in DAYS:
        for rule in RULES:
            assert readmodel_quota_all(app, day, rule_id=rule) == quota_all(
                state, day, rule_id=rule)
    assert readmodel_quota_all(app, DAYS[-1], tier=2) == quota_all(state, DAYS[-1], tier=2)


def test_grows_in_small_batches_like_a_live_ledger(db_url: str) -> None:
    """The synthetic ledger appended in slices of 60 commands (late reports,
    corrections and voids come last, as in the bench), with queries in between so
    every slice meets a built index that its batch must mark."""
    from bench.generate import generate

    commands = [parse_command(c) for c in generate(600, seed=3)]
    app = Ledger(db_url)
    rng = random.Random(9)
    checked = 0
    try:
        for start in range(0, len(commands), 60):
            app.submit(commands[start:start + 60], actor="t", skip_bad=True)
            state = load_state(app)
            countries = state.countries_with_activity()
            if not countries:
                continue
            for _ in range(6):
                country = rng.choice(countries)
                day = dt.date(2024, 9, 1) + dt.timedelta(days=rng.randrange(0, 560))
                rule = rng.choice(RULES)
                want = quota(state, country, day, rule_id=rule)
                assert readmodel_quota(app, country, day, rule_id=rule) == want, (
                    start, country, day, rule)
                checked += 1
    finally:
        app.close()
    assert checked > 50


def test_rebuild_drops_the_index_and_answers_stay_equal(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300))
    assert_equal_to_fold(app, ["MX"])
    ReadModel(app).rebuild()
    assert _pairs_built(app) == 0
    assert PositionIndex(ReadModel(app)).refresh_all() == 5  # MX under each revision
    assert_equal_to_fold(app, ["MX"])


def test_timeline_equals_the_rule_selection() -> None:
    from ledger.rulebook import in_force, on_the_books

    books = bundled_rulebooks()
    rules = [(10 * (i + 1), b) for i, b in enumerate(books)]
    rows = position_index.timeline(rules)
    by_id = {pos: b for pos, b in rules}

    def pick(choice: str, day: dt.date) -> Any:
        found = [pos for ch, start, pos in rows if ch == choice and start <= day.isoformat()]
        return None if found[-1] is None else by_id[found[-1]]

    day = dt.date(2022, 1, 1)
    published = 0
    while day < dt.date(2028, 6, 1):
        assert pick(position_index.IN_FORCE, day) is in_force(books, day), day
        chosen = on_the_books(books, day)
        if any(chosen is b for b in books):
            published += 1
            assert pick(position_index.ON_THE_BOOKS, day) is chosen, day
        else:  # composed from instruments: left to the fold
            assert pick(position_index.ON_THE_BOOKS, day) is None, day
        day += dt.timedelta(days=1)


def test_table_names_match_the_ledgers(app: Ledger) -> None:
    from ledger.persistence import CHAIN_TABLE, is_postgres
    from projections.readmodel import PROJECTION

    assert position_index.CHAIN_TABLE == CHAIN_TABLE
    assert position_index.PROJECTION == PROJECTION
    backend = "postgres" if is_postgres(app.url) else "sqlite"
    assert position_index.EVENTS_TABLE[backend].split(".")[-1] == (
        app.recorder.events_table_name)  # type: ignore[attr-defined]


def test_bench_ledger_10k_every_query_equals_the_fold(sqlite_url: str) -> None:
    """The bench's own ledger (bench.generate, 10,000 shipments, seed 2025) and its
    query set (bench.steps.queries): every (country, as-of, rule) it asks, known at
    the head, from the index equals the full fold; --all too, on the query set's
    first as-of dates. (Its past --known-at questions go to the fold itself.)"""
    from bench.generate import generate
    from bench.steps import queries

    app = Ledger(sqlite_url)
    app.submit([parse_command(c) for c in generate(10_000, seed=2025)], actor="bench",
               skip_bad=True)
    rm = ReadModel(app)
    rm.rebuild()
    asked = queries(sqlite_url, 200)
    state = load_state(app)
    countries = set()
    for q in asked:
        day = dt.date.fromisoformat(q["as_of"])
        countries.add(q["country"])
        want = quota(state, q["country"], day, rule_id=q["rule"])
        assert readmodel_quota(app, q["country"], day, rule_id=q["rule"]) == want, q
    assert len(countries) > 60
    for q in asked[:3]:
        day = dt.date.fromisoformat(q["as_of"])
        assert readmodel_quota_all(app, day, rule_id=q["rule"]) == quota_all(
            state, day, rule_id=q["rule"])
    app.close()


def test_catch_up_service_refreshes_what_it_marked(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=300))
    assert_equal_to_fold(app, ["MX"], rules=["ai-diffusion-2025"])
    _submit(app, shipment("B", quantity=7, day="2025-02-01"))
    rm = ReadModel(app)
    rm.catch_up()
    with rm._tx(commit=False) as c:
        assert c.execute("SELECT valid_before FROM rm_quota_pairs").fetchall() == [
            ("2025-02-01",)]
    assert PositionIndex(rm).refresh_stale() == 1
    with rm._tx(commit=False) as c:
        assert c.execute("SELECT valid_before FROM rm_quota_pairs").fetchall() == [
            (position_index.FRESH,)]
    assert_equal_to_fold(app, ["MX"], rules=["ai-diffusion-2025"])


def test_rebuild_with_index_cli(run_cli: Any, ledger: Ledger) -> None:
    _submit(ledger, shipment("A", quantity=300), shipment("B", dest="BR"))
    done = run_cli("projections", "rebuild", "--quiet", "--index")
    assert done.exit_code == 0, done.output
    assert "position index built: 10 (revision, country) pairs" in done.output
    assert _pairs_built(ledger) == 10


def test_tier_changing_with_the_as_of_date(app: Ledger) -> None:
    """Group membership is dated: Cambodia is tier 3 under the Diffusion rule until
    2026-02-03 and tier 2 from then on, so its cap follows the as-of date (two
    regimes), for the same shipments."""
    _submit(app, shipment("A", dest="KH", quantity=300, day="2025-06-01"),
            shipment("B", dest="KH", quantity=30, day="2026-02-10"))
    book = next(b for b in bundled_rulebooks() if b.id == "ai-diffusion-2025")
    assert len(position_index.regimes(book, "KH")) >= 2
    days = [dt.date(2025, 6, 1), dt.date(2026, 2, 2), dt.date(2026, 2, 3),
            dt.date(2026, 2, 11), dt.date(2026, 6, 30)]
    assert_equal_to_fold(app, ["KH"], days=days, rules=["ai-diffusion-2025", None])
    tiers = {readmodel_quota(app, "KH", d, rule_id="ai-diffusion-2025").tier for d in days}
    assert tiers == {2, 3}


def _positions_of_interest(app: Ledger) -> dict[str, int]:
    """Positions in the bench ledger's log (bench.generate's order: rules, licenses,
    allocations and VEUs, shipments, late reports, corrections and voids): the first
    shipment, the middle of the shipments, the first late (backdated) report, the
    first correction and the first void."""
    state = load_state(app)
    rows = sorted(state.shipments.values(), key=lambda r: r.position)
    refs = [int(r.shipment_ref[1:]) for r in rows]
    late = next(r.position for r, prev, ref in zip(rows[1:], refs, refs[1:], strict=True)
                if ref < prev)
    regular = [r.position for r in rows if r.position < late]
    fixed = [r.last_position for r in rows if r.corrections and not r.voided]
    voided = [r.last_position for r in rows if r.voided]
    return {"first": rows[0].position, "middle": regular[len(regular) // 2], "late": late,
            "fix": min(fixed), "void": min(voided)}


def test_bench_ledger_10k_known_at_equals_the_fold(db_url: str) -> None:
    """The bench's ledger (10,000 shipments, seed 2025) folded in slices as a live
    read model would be, every pair refreshed after each slice; then one question
    per country of the query set (bench.steps.queries), known at the first
    shipment, the middle of the shipments, the middle of a batch, just before, at and
    after the first late (backdated) report, the first correction and the first void:
    every answer equals the full fold's as known then, and at the slices' ends the
    index answers."""
    from bench.generate import generate
    from bench.steps import queries

    app = Ledger(db_url)
    try:
        app.submit([parse_command(c) for c in generate(10_000, seed=2025)], actor="bench",
                   skip_bad=True)
        at = _positions_of_interest(app)
        rm = ReadModel(app)
        rm.ensure_schema()
        ends = [at["middle"], at["late"] - 1, at["late"] + 3, at["fix"] + 10]
        for end in ends:
            rm.catch_up(batch=997, until=end)  # several batches: marks within a slice
            PositionIndex(rm).refresh_all()
        one_each: dict[str, dict[str, Any]] = {}
        for q in queries(db_url, 200):  # (folds the rest of the log)
            one_each.setdefault(q["country"], q)
        asked = sorted({len(bundled_rulebooks()), at["first"], at["middle"],
                        at["middle"] + 500, *ends, at["late"], at["fix"] - 1, at["fix"],
                        at["void"] - 1, at["void"], app.max_position() - 1})
        indexed = 0
        for known_at in asked:
            state = load_state(app, known_at)
            for country, q in sorted(one_each.items()):
                day = dt.date.fromisoformat(q["as_of"])
                want = quota(state, country, day, rule_id=q["rule"], known_at=known_at)
                if known_at in ends:
                    indexed += _indexed(app, country, day, q["rule"], known_at)
                got = readmodel_quota(app, country, day, rule_id=q["rule"],
                                      known_at=known_at)
                assert got == want, (known_at, q)
        assert len(one_each) > 60
        assert indexed == len(ends) * len(one_each)
    finally:
        app.close()


def test_import_and_rebuild_build_the_index_unless_told_not_to(
        run_cli: Any, ledger: Ledger, tmp_path: Any) -> None:
    """``ledger import --index`` folds the read model and builds every pair (a large
    import does it by default; a small one leaves it to the first queries, as
    ``--no-index`` does); ``projections rebuild`` builds them unless ``--no-index``."""
    import json

    lines = [json.dumps({"type": "shipment.recorded", "exporter_id": "EXP01",
                         "shipment_ref": ref, "ship_date": "2025-06-01",
                         "destination": dest, "consignee_id": "C1",
                         "product_id": "nvidia-h100-sxm", "quantity": 3,
                         "authorization": {"kind": "none"}})
             for ref, dest in (("A", "MX"), ("B", "BR"))]
    small = tmp_path / "small.jsonl"
    small.write_text(lines[0] + "\n")
    done = run_cli("import", str(small))
    assert done.exit_code == 0 and "position index" not in done.output
    assert ReadModel(ledger).position() == 0  # not even folded
    both = tmp_path / "both.jsonl"
    both.write_text(lines[1] + "\n")
    done = run_cli("import", str(both), "--index", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)  # the JSON only, with what the index build did
    assert summary["appended"] == 1
    assert summary["position_index"]["pairs"] == 2 * len(bundled_rulebooks())
    assert _pairs_built(ledger) == 2 * len(bundled_rulebooks())
    assert ReadModel(ledger).position() == ledger.max_position()
    done = run_cli("projections", "rebuild", "--quiet", "--no-index")
    assert done.exit_code == 0 and "position index" not in done.output
    assert _pairs_built(ledger) == 0
    done = run_cli("projections", "rebuild", "--quiet")
    assert "position index built: 10 (revision, country) pairs" in done.output


def _printed(app: Ledger, country: str, day: dt.date, **kw: Any) -> dict[str, Any]:
    """What ``ledger quota --json`` prints on the full path."""
    data: dict[str, Any] = readmodel_quota(app, country, day, **kw).model_dump(
        mode="json", exclude={"contributions"})
    return data


def test_a_quota_process_answers_from_the_index_on_a_connection_of_its_own(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``lookup_database`` (what a ``ledger quota --json`` process asks first) gives
    exactly what the full path prints, known at the head and at a past position whose
    rows were kept, the first one included; None (the full path answers) when it
    cannot: the read model behind the log, a known-at before the first event or past
    the head, no database. Any failure in it also gives None, so only these checks
    see one."""
    from ledger.rulebook import bundled_rulebook

    app = Ledger(db_url)
    app.submit([PublishRuleRevision(document=bundled_rulebook("ai-diffusion-2025"))],
               actor="t")
    day, rule = dt.date(2025, 9, 30), "ai-diffusion-2025"
    lookup = position_index.lookup_database
    first = _printed(app, "MX", day, rule_id=rule)  # builds the pair as known at 1
    assert lookup(db_url, "MX", day, rule_id=rule) == first
    _submit(app, shipment("A", quantity=300))
    assert lookup(db_url, "MX", day, rule_id=rule) is None  # the read model is behind
    head = app.max_position()
    assert head == 2
    now = _printed(app, "MX", day, rule_id=rule)  # catches up, refreshes the pair
    assert now["committed_tpp"] == 300 * 15_832 and first["committed_tpp"] == 0
    assert lookup(db_url, "MX", day, rule_id=rule) == now
    assert lookup(db_url, "MX", day, rule_id=rule, known_at=head) == _printed(
        app, "MX", day, rule_id=rule, known_at=head)
    at_first = _printed(app, "MX", day, rule_id=rule, known_at=1)
    assert at_first["committed_tpp"] == 0 and at_first["known_at"] == 1
    assert lookup(db_url, "MX", day, rule_id=rule, known_at=1) == at_first
    assert lookup(db_url, "MX", day, rule_id=rule, known_at=0) is None
    assert lookup(db_url, "MX", day, rule_id=rule, known_at=head + 1) is None
    if "://" not in db_url:  # SQLite: a path, also as a URL (absolute, or relative)
        assert lookup(f"sqlite:///{db_url}", "MX", day, rule_id=rule) == now
        assert lookup(f"{db_url}.missing", "MX", day, rule_id=rule) is None
        folder, name = os.path.split(db_url)
        monkeypatch.chdir(folder)
        assert lookup(f"sqlite://{name}", "MX", day, rule_id=rule) == now
    else:  # PostgreSQL: either scheme
        scheme = db_url.replace("postgresql://", "postgres://", 1)
        assert lookup(scheme, "MX", day, rule_id=rule) == now
    _submit(app, shipment("B", quantity=5))  # the read model is behind again
    assert lookup(db_url, "MX", day, rule_id=rule) is None
    assert lookup(db_url, "MX", day, rule_id=rule, known_at=1) == at_first  # past: answered
    app.close()


DIFFUSION = "ai-diffusion-2025"


def _valid_before(app: Ledger) -> dict[str, str]:
    rm = ReadModel(app)
    with rm._tx(commit=False) as c:
        return dict(c.execute("SELECT country, valid_before FROM rm_quota_pairs "
                              "ORDER BY country").fetchall())


def test_a_batch_marks_each_country_it_touches_from_its_earliest_day(app: Ledger) -> None:
    """One batch with two MX shipments (the later-dated one last): MX's pair is valid
    only before the earlier day; BR's, untouched, stays fresh."""
    _submit(app, shipment("A", quantity=30), shipment("B", dest="BR", quantity=5))
    for country in ("MX", "BR"):
        readmodel_quota(app, country, DAYS[-1], rule_id=DIFFUSION)
    assert _valid_before(app) == {"BR": position_index.FRESH, "MX": position_index.FRESH}
    _submit(app, shipment("C", quantity=3, day="2025-03-01"),
            shipment("D", quantity=4, day="2025-08-01"))
    ReadModel(app).catch_up()
    assert _valid_before(app) == {"BR": position_index.FRESH, "MX": "2025-03-01"}
    assert_equal_to_fold(app, ["MX", "BR"], rules=[DIFFUSION])


def test_a_batch_too_large_to_detail_marks_every_pair_from_its_first_day(
        app: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    _submit(app, shipment("A", quantity=30), shipment("B", dest="BR", quantity=5))
    for country in ("MX", "BR"):
        readmodel_quota(app, country, DAYS[-1], rule_id=DIFFUSION)
    monkeypatch.setattr(position_index, "DETAIL_LIMIT", 1)
    _submit(app, shipment("C", quantity=3, day="2025-03-01"))  # a batch of 1: detailed
    ReadModel(app).catch_up()
    assert _valid_before(app) == {"BR": position_index.FRESH, "MX": "2025-03-01"}
    _submit(app, shipment("D", quantity=3, day="2025-04-01"),
            shipment("E", quantity=3, day="2025-05-01"))  # a batch of 2: too large
    ReadModel(app).catch_up()
    everything = position_index.EVERYTHING
    assert _valid_before(app) == {"BR": everything, "MX": everything}
    assert_equal_to_fold(app, ["MX", "BR"], rules=[DIFFUSION])


def test_every_country_answered_by_the_index_itself(app: Ledger) -> None:
    """``positions_all`` answers from the index (not None: the fold would give the
    same answer, so only this shows the index did), builds only the revision asked,
    stamps a known-at at the head, and refreshes a pair asked on its valid_before."""
    _submit(app, shipment("A", quantity=300), shipment("B", dest="BR", quantity=5))
    index = PositionIndex(ReadModel(app))
    day = dt.date(2025, 9, 30)
    found = index.positions_all(day, rule_id=DIFFUSION)
    assert found == quota_all(load_state(app), day, rule_id=DIFFUSION)
    assert _pairs_built(app) == 2  # BR and MX under the one revision asked
    head = app.max_position()
    at_head = index.positions_all(day, rule_id=DIFFUSION, known_at=head)
    assert at_head is not None and [p.known_at for p in at_head] == [head, head]
    assert index.positions_all(day, rule_id=DIFFUSION, known_at=head - 1) is None
    _submit(app, shipment("C", quantity=7, day="2025-04-01"))
    # without catching up: the index as the read model stands, C not yet folded
    assert index.positions_all(day, rule_id=DIFFUSION, catch_up=False) == found
    stale = index.position("MX", day, rule_id=DIFFUSION, catch_up=False)
    assert stale is not None and stale.committed_tpp == 300 * 15_832
    ReadModel(app).catch_up()
    assert _valid_before(app)["MX"] == "2025-04-01"
    on_the_mark = index.positions_all(dt.date(2025, 4, 1), rule_id=DIFFUSION)
    assert on_the_mark == quota_all(load_state(app), dt.date(2025, 4, 1), rule_id=DIFFUSION)
    # BR ships on 2025-06-01, MX's A on 2025-06-01 and C on 2025-04-01
    assert [p.committed_tpp for p in on_the_mark or []] == [0, 7 * 15_832]


def test_refresh_all_reports_each_country_and_seeds_the_countries(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=3),
            {"type": "allocation.granted", "allocation_id": "G-BR", "country": "BR",
             "tpp_amount": 1_000, "valid_from": "2025-01-01"})
    rm = ReadModel(app)
    rm.catch_up()
    with rm._tx() as c:  # a read model folded before the index listed its countries
        c.execute("DELETE FROM rm_quota_countries")
    calls: list[tuple[int, int]] = []
    built = PositionIndex(rm).refresh_all(lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    assert built == 2 * len(bundled_rulebooks())
    with rm._tx(commit=False) as c:
        assert c.execute("SELECT country FROM rm_quota_countries ORDER BY country"
                         ).fetchall() == [("BR",), ("MX",)]


@pytest.mark.parametrize("command", [
    shipment("A", quantity=3),
    {"type": "allocation.granted", "allocation_id": "G-BR", "country": "BR",
     "tpp_amount": 1_000, "valid_from": "2025-01-01"},
], ids=["shipments-only", "allocations-only"])
def test_the_countries_are_seeded_from_shipments_or_allocations_alone(
        app: Ledger, command: Any) -> None:
    _submit(app, command)
    rm = ReadModel(app)
    rm.catch_up()
    with rm._tx() as c:
        c.execute("DELETE FROM rm_quota_countries")
    PositionIndex(rm)._seed_countries()
    with rm._tx(commit=False) as c:
        assert len(c.execute("SELECT country FROM rm_quota_countries").fetchall()) == 1
    day = dt.date(2025, 9, 30)  # an allocation alone makes a country active too
    found = PositionIndex(rm).positions_all(day, rule_id=DIFFUSION)
    assert found == quota_all(load_state(app), day, rule_id=DIFFUSION)
    assert found is not None and len(found) == 1


def test_the_revision_on_the_books_is_answered_by_the_index(db_url: str) -> None:
    """A published revision of its own (not composed of instruments) is the one on
    the books, and, its enforcement suspended, none is in force: asked on the books
    the index answers (head, past known-at, every country, a bare connection);
    asked in force it leaves the question to the fold."""
    from ledger.rulebook import bundled_rulebook

    book = bundled_rulebook(DIFFUSION)
    plain = type(book).model_validate({**book.model_dump(mode="json"), "id": "plain-2025",
                                       "instruments": []})
    app = Ledger(db_url)
    app.submit([PublishRuleRevision(document=plain)], actor="t")
    _submit(app, shipment("A", quantity=300))
    day = dt.date(2025, 9, 30)
    index = PositionIndex(ReadModel(app))
    found = index.position("MX", day, on_the_books=True)
    assert found is not None and found.rule == "plain-2025"
    assert found == quota(load_state(app), "MX", day, on_the_books=True)
    assert index.position("MX", day) is None
    everywhere = index.positions_all(day, on_the_books=True)
    assert everywhere == quota_all(load_state(app), day, on_the_books=True)
    assert everywhere is not None and len(everywhere) == 1
    before = app.max_position()
    _submit(app, shipment("B", quantity=5, day="2025-02-01"))
    assert index.position("MX", day, on_the_books=True) is not None  # refreshed
    lookup = position_index.lookup_database
    assert lookup(db_url, "MX", day, on_the_books=True) == _printed(
        app, "MX", day, on_the_books=True)
    past = lookup(db_url, "MX", day, on_the_books=True, known_at=before)
    assert past == _printed(app, "MX", day, on_the_books=True, known_at=before)
    assert past is not None and past["committed_tpp"] == 300 * 15_832
    assert lookup(db_url, "MX", day) is None
    app.close()


def test_allocations_and_lpp_shipments_mark_from_their_earliest_day(app: Ledger) -> None:
    """An allocation marks its country from its start (an adjustment too: the start is
    earlier); an LPP shipment marks every country its consignee ships to under LPP,
    from its date. Exactly from there: earlier would rebuild days for nothing."""
    lpp = {"kind": "lpp"}
    _submit(app, shipment("A", quantity=30, auth=lpp),
            shipment("B", dest="BR", quantity=5, auth=lpp),
            shipment("X", dest="AR", quantity=5),
            # names the license before it exists, from another country
            shipment("Y", dest="AR", quantity=5, day="2025-06-15",
                     auth={"kind": "license", "ref": "LIC-1"}))

    def build() -> None:
        for country in ("AR", "BR", "MX"):
            readmodel_quota(app, country, DAYS[-1], rule_id=DIFFUSION)

    build()
    _submit(app, {"type": "allocation.granted", "allocation_id": "LIC-1", "country": "MX",
                  "holder": "EXP01", "tpp_amount": 1_000, "valid_from": "2025-05-01"})
    ReadModel(app).catch_up()
    fresh = position_index.FRESH
    assert _valid_before(app) == {"AR": "2025-06-15", "BR": fresh, "MX": "2025-05-01"}
    build()
    _submit(app, {"type": "allocation.adjusted", "allocation_id": "LIC-1", "tpp_amount": 500,
                  "effective_date": "2025-08-01", "reason": "cut"})
    ReadModel(app).catch_up()
    assert _valid_before(app) == {"AR": "2025-06-15", "BR": fresh, "MX": "2025-05-01"}
    build()
    _submit(app, shipment("C", quantity=3, auth=lpp, day="2025-07-01"),
            shipment("D", quantity=3, auth=lpp, day="2025-09-01"))  # one batch
    ReadModel(app).catch_up()
    assert _valid_before(app) == {"AR": fresh, "BR": "2025-07-01", "MX": "2025-07-01"}
    assert_equal_to_fold(app, ["MX", "BR", "AR"], rules=[DIFFUSION])


def test_a_veu_marks_the_countries_of_the_shipments_naming_it(app: Ledger) -> None:
    """A VEU grant or amendment changes how the shipments naming it count: their
    countries are marked from the earliest of them; the index refreshes them exactly."""
    veu = {"kind": "veu", "ref": "V1"}
    _submit(app, shipment("A", quantity=30, auth=veu, day="2025-03-01"),
            shipment("B", dest="BR", quantity=5, auth=veu, day="2025-04-01"),
            shipment("C", dest="AR", quantity=5))

    def build() -> None:
        for country in ("AR", "BR", "MX"):
            readmodel_quota(app, country, DAYS[-1], rule_id=DIFFUSION)

    build()
    _submit(app, {"type": "veu.granted", "veu_id": "V1", "entity": "Atlas",
                  "kind": "universal", "headquarters_country": "US",
                  "covered_countries": ["MX", "BR"], "valid_from": "2025-01-01"})
    ReadModel(app).catch_up()
    fresh = position_index.FRESH
    assert _valid_before(app) == {"AR": fresh, "BR": "2025-04-01", "MX": "2025-03-01"}
    build()
    _submit(app, {"type": "veu.amended", "veu_id": "V1", "effective_date": "2025-06-01",
                  "covered_countries": ["MX"]})
    ReadModel(app).catch_up()
    assert _valid_before(app) == {"AR": fresh, "BR": "2025-04-01", "MX": "2025-03-01"}
    assert_equal_to_fold(app, ["MX", "BR", "AR"], rules=[DIFFUSION])


def test_refresh_rebuilds_only_what_is_stale(app: Ledger) -> None:
    _submit(app, shipment("A", quantity=30))
    ReadModel(app).catch_up()
    index = PositionIndex(ReadModel(app))
    assert index.refresh("MX") == len(bundled_rulebooks())  # never built: every revision
    assert index.refresh("MX") == 0
    _submit(app, shipment("B", quantity=3, day="2025-02-01"))
    ReadModel(app).catch_up()
    assert index.refresh("MX") == len(bundled_rulebooks())
    assert index.refresh("MX") == 0


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_refresh_on_postgres_waits_for_whoever_holds_the_read_models_position(
        db_url: str) -> None:
    """A refresh recomputes pairs as known at the read model's position, so no catch-up
    batch may fold in between: on PostgreSQL it takes rm_position's row lock (on SQLite,
    BEGIN IMMEDIATE holds the file). While another transaction holds that row, the
    refresh waits, seen as a backend waiting on a lock; it goes on once it is free."""
    import threading
    import time

    import psycopg

    from ledger.rulebook import bundled_rulebook
    from projections.readmodel import PROJECTION

    app = Ledger(db_url)
    app.submit([PublishRuleRevision(document=bundled_rulebook(DIFFUSION))], actor="t")
    _submit(app, shipment("A", quantity=300))
    rm = ReadModel(app)
    rm.catch_up()
    index = PositionIndex(rm)
    outcome: list[Any] = []

    def refresh() -> None:
        try:
            outcome.append(index.refresh("MX"))
        except Exception as error:  # noqa: BLE001 - re-raised by the test below
            outcome.append(error)

    worker = threading.Thread(target=refresh, daemon=True)
    waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() " \
              "AND wait_event_type = 'Lock'"
    try:
        with psycopg.connect(db_url) as holder, psycopg.connect(
                db_url, autocommit=True) as watcher:
            holder.execute("SELECT position FROM rm_position WHERE name = %s FOR UPDATE",
                           (PROJECTION,))
            worker.start()
            deadline = time.monotonic() + 60
            while worker.is_alive() and time.monotonic() < deadline:
                row = watcher.execute(waiting).fetchone()
                if row is not None and row[0] >= 1:
                    break
                time.sleep(0.02)
            assert not outcome, \
                f"the refresh went on while the read model's position was held: {outcome}"
            holder.rollback()
        worker.join(60)
        if outcome and isinstance(outcome[0], Exception):
            raise outcome[0]
        assert outcome == [1]
    finally:  # a failed check: let the refresh end before the database is dropped
        if worker.ident is not None:
            worker.join(60)
        app.close()
