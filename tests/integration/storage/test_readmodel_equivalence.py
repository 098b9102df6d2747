"""The read model answers exactly what a full replay answers, on both backends.

Many (country, as-of, known-at, rule) combinations over the synthetic ledger, which
holds corrections (some moving a shipment to another country), voids, late reports,
license adjustments and revocations and VEU amendments; known-at positions fall in
the middle of the log, before and after the corrections.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import UnknownRule
from projections.readmodel import ReadModel
from projections.views import load_state, quota, quota_all, readmodel_quota, readmodel_quota_all

from tests.integration.storage.storage_helpers import shipment

RULES = [None, "ai-diffusion-2025", "diffusion-nonenforcement-2025", "baseline-2023"]


def test_country_answers_equal_full_replay(seeded: Ledger) -> None:
    rm = ReadModel(seeded)
    assert rm.rebuild() == seeded.max_position()
    head = seeded.max_position()
    rng = random.Random(5)
    full = load_state(seeded)
    countries = full.countries_with_activity()
    cuts = [None, head // 4, head // 2, head - 40, head - 3, head + 10]
    states = {k: (full if k is None else load_state(seeded, k)) for k in cuts}
    checked = 0
    for known_at in cuts:
        for _ in range(25):
            country = rng.choice(countries)
            as_of = dt.date(2024, 9, 1) + dt.timedelta(days=rng.randrange(0, 600))
            rule = rng.choice(RULES)
            want = quota(states[known_at], country, as_of, rule_id=rule, known_at=known_at,
                         explain=True)
            got = readmodel_quota(seeded, country, as_of, rule_id=rule, known_at=known_at,
                                  explain=True)
            assert got == want, (country, as_of, known_at, rule)
            checked += 1
    assert checked == 150


def test_all_countries_equal_full_replay(seeded: Ledger) -> None:
    head = seeded.max_position()
    for known_at, rule in [(None, "ai-diffusion-2025"), (head // 2, None)]:
        state = load_state(seeded, known_at)
        as_of = dt.date(2025, 9, 30)
        want = quota_all(state, as_of, rule_id=rule, known_at=known_at)
        got = readmodel_quota_all(seeded, as_of, rule_id=rule, known_at=known_at)
        assert got == want


def test_catches_up_incrementally_and_sees_corrections(db_url: str) -> None:
    app = Ledger(db_url)
    from ledger.commands import PublishRuleRevision, parse_command
    from ledger.rulebook import bundled_rulebooks

    app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()], actor="t")
    app.submit([shipment("A", quantity=100), shipment("B", quantity=7)], actor="t")
    as_of, rule = dt.date(2025, 6, 30), "ai-diffusion-2025"
    before = readmodel_quota(app, "MX", as_of, rule_id=rule)  # builds the read model
    mid = app.max_position()
    app.submit([parse_command({"type": "shipment.corrected", "exporter_id": "EXP01",
                               "shipment_ref": "A", "reason": "typo", "destination": "BR"}),
                parse_command({"type": "shipment.voided", "exporter_id": "EXP01",
                               "shipment_ref": "B", "reason": "cancelled"})], actor="t")
    after = readmodel_quota(app, "MX", as_of, rule_id=rule)
    assert after.committed_tpp == 0 < before.committed_tpp
    assert readmodel_quota(app, "MX", as_of, rule_id=rule, known_at=mid) == before.model_copy(
        update={"known_at": mid})
    assert readmodel_quota(app, "BR", as_of, rule_id=rule) == quota(
        load_state(app), "BR", as_of, rule_id=rule)
    assert ReadModel(app).position() == app.max_position()
    with pytest.raises(UnknownRule):
        readmodel_quota(app, "MX", as_of, rule_id="no-such-rule")
    app.close()


def test_concurrent_catch_up_folds_each_event_once(seeded: Ledger) -> None:
    """Two folders racing: the compare-and-set on the position lets one win each batch."""
    ReadModel(seeded).rebuild()
    seeded.submit([shipment(f"R{i}", dest="IN", quantity=i + 1) for i in range(30)], actor="t")
    errors: list[BaseException] = []
    apps = [Ledger(seeded.url) for _ in range(2)]

    def run(app: Any) -> None:
        try:
            ReadModel(app).catch_up(batch=7)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    rm = ReadModel(seeded)
    assert rm.position() == seeded.max_position()
    with rm._tx(commit=False) as c:
        dupes = c.execute("SELECT sid, recorded_from, COUNT(*) FROM rm_shipment_versions "
                          "GROUP BY sid, recorded_from HAVING COUNT(*) > 1").fetchall()
        open_twice = c.execute("SELECT sid FROM rm_shipment_versions WHERE recorded_to IS NULL "
                               "GROUP BY sid HAVING COUNT(*) > 1").fetchall()
    assert dupes == [] and open_twice == []
    as_of = dt.date(2025, 7, 1)
    assert readmodel_quota(seeded, "IN", as_of, rule_id="ai-diffusion-2025") == quota(
        load_state(seeded), "IN", as_of, rule_id="ai-diffusion-2025")
    for app in apps:
        app.close()
