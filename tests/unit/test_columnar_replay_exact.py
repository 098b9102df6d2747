"""The columnar replay (``projections.replay_columnar``) on small hand-built ledgers in a
real SQLite file: the same result as the per-shipment replay (``projections.replay``),
and the numbers worked out by hand. Deterministic, so that mutation testing
(tests/MUTATION.md) judges the columnar copy of the fold's rules by exact values."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ledger.application import Ledger
from ledger.commands import parse_command_line
from ledger.errors import ValidationError
from projections.readmodel import ReadModel
from projections.replay import ReplayResult, replay
from ledger.events import Authorization
from ledger.rulebook import RuleBook
from projections import replay_columnar
from projections.replay_columnar import ChangeRows, group_codes, replay_columns, sort_order
from tests.builders import shipment_line as ship
from tests.model.test_columnar_replay import assert_same_result

GOLDEN = Path(__file__).parents[1] / "integration" / "replay" / "golden" / "ledger.jsonl"
#: the five bundled rule revisions, as the golden ledger publishes them first
RULES = [line for line in GOLDEN.read_bytes().splitlines() if b'"rule.published"' in line][:5]
RULE = "ai-diffusion-2025"
#: ai-diffusion-2025's tier-2 cap
CAP = 790_000_000
D = dt.date


def both(tmp_path: Path, lines: list[dict[str, Any]], against: str = "in-force",
         rule: str = RULE, **kw: Any) -> tuple[ReplayResult, ReplayResult]:
    """(per-shipment, columnar) replays of the rule books and ``lines``; checked equal in
    everything ``ledger replay`` prints."""
    app = Ledger(str(tmp_path / "ledger.db"))
    try:
        commands = [parse_command_line(x) for x in RULES]
        commands += [parse_command_line(json.dumps(x)) for x in lines]
        app.submit(commands, actor="test:columnar")
        rm = ReadModel(app)
        rm.catch_up()
        rows = replay(rm.full_state(None), rule, against, **kw)
        state, cols = rm.shipment_columns(None)
        columns = replay_columns(state, cols, rule, against, **kw)
    finally:
        app.close()
    assert_same_result(rows, columns)
    for i in range(len(rows.changes)):
        assert columns.changes[i] == rows.changes[i]
    return rows, columns


def country(result: ReplayResult, code: str) -> Any:
    return next(c for c in result.countries if c.country == code)


def test_a_first_breach_named_by_an_allocation_grant_adjustment_or_end(tmp_path: Path) -> None:
    lines = [
        # MX: a country-level allocation raises the cap by 100,000,000 until 2025-04-30;
        # 800,000,000 shipped within it is over the cap the day it ends
        {"type": "allocation.granted", "allocation_id": "G2G", "country": "MX",
         "tpp_amount": 100_000_000, "valid_from": "2025-02-01", "valid_to": "2025-04-30"},
        ship("MX-BULK", "2025-03-01", 800_000_000, units=100_000),
        # IN: 785,000,000 shipped, a license of 2,000,000 held, then adjusted to 10,000,000
        ship("IN-BULK", "2025-03-01", 785_000_000, dest="IN", units=100_000),
        {"type": "allocation.granted", "allocation_id": "L-IN", "country": "IN",
         "holder": "acme", "tpp_amount": 2_000_000, "valid_from": "2025-06-01",
         "valid_to": "2025-12-31"},
        {"type": "allocation.adjusted", "allocation_id": "L-IN", "tpp_amount": 10_000_000,
         "effective_date": "2025-07-01", "reason": "more"},
        # a license of MX ended unused: it holds nothing after its last day
        {"type": "allocation.granted", "allocation_id": "L-MX-UNUSED", "country": "MX",
         "holder": "acme", "tpp_amount": 5_000_000, "valid_from": "2025-01-01",
         "valid_to": "2025-01-31"},
        # SA: 789,000,000 shipped, then a license of 5,000,000 held from its grant
        ship("SA-BULK", "2025-03-01", 789_000_000, dest="SA", units=100_000),
        {"type": "allocation.granted", "allocation_id": "L-SA", "country": "SA",
         "holder": "acme", "tpp_amount": 5_000_000, "valid_from": "2025-08-01"},
    ]
    _rows, columns = both(tmp_path, lines, window_to=D(2025, 12, 31))
    got = {c: country(columns, c).rule.first_breach.model_dump(exclude_none=True)
           for c in ("MX", "IN", "SA")}
    # positions: the five rule revisions are 1-5, then the lines above in order
    assert got == {
        "MX": {"type": "allocation-ended", "date": D(2025, 5, 1), "position": 6,
               "allocation_id": "G2G", "committed_tpp": 800_000_000, "cap_tpp": CAP},
        "IN": {"type": "allocation-adjusted", "date": D(2025, 7, 1), "position": 10,
               "allocation_id": "L-IN", "committed_tpp": 795_000_000, "cap_tpp": CAP},
        "SA": {"type": "allocation", "date": D(2025, 8, 1), "position": 13,
               "allocation_id": "L-SA", "committed_tpp": 794_000_000, "cap_tpp": CAP}}
    assert [(country(columns, c).rule.committed_tpp, country(columns, c).rule.status)
            for c in ("MX", "IN", "SA")] == [(800_000_000, "over-cap"),
                                             (795_000_000, "over-cap"),
                                             (794_000_000, "over-cap")]


def test_license_and_veu_checks_each_row_with_its_own_reason(tmp_path: Path) -> None:
    lines = [
        {"type": "allocation.granted", "allocation_id": "L1", "country": "MX",
         "holder": "acme", "tpp_amount": 10_000_000, "valid_from": "2025-03-01",
         "valid_to": "2025-06-30"},
        {"type": "allocation.revoked", "allocation_id": "L1", "effective_date": "2025-05-15",
         "reason": "revoked"},
        ship("L-OK", "2025-04-01", 4_000_000, auth="license:L1"),
        ship("L-OVER", "2025-05-01", 8_000_000, auth="license:L1"),
        ship("L-REVOKED", "2025-05-20", 1_000_000, auth="license:L1"),
        ship("L-OTHER", "2025-04-02", 1_000_000, auth="license:L1", exporter="other"),
        ship("L-BB", "2025-04-02", 1_000_000, auth="license:L1", exporter="bb"),
        # past the license's amount already: its own 1,000,000 is the excess
        ship("L-AGAIN", "2025-05-10", 1_000_000, auth="license:L1"),
        ship("L-UNKNOWN", "2025-04-03", 1_000_000, auth="license:NOPE"),
        ship("L-ON-REVOKE", "2025-05-15", 1_000_000, auth="license:L1"),
        # licenses of a holder or a country no shipment names (exporters and
        # destinations are coded in sorted order: zz is exporter 3, SA destination 3)
        {"type": "allocation.granted", "allocation_id": "L2", "country": "SA",
         "holder": "nobody", "tpp_amount": 1_000_000, "valid_from": "2025-01-01"},
        {"type": "allocation.granted", "allocation_id": "L3", "country": "DE",
         "holder": "zz", "tpp_amount": 1_000_000, "valid_from": "2025-01-01"},
        ship("L2-X", "2025-04-05", 1_000_000, dest="SA", auth="license:L2", exporter="zz"),
        ship("L3-X", "2025-04-05", 1_000_000, dest="SA", auth="license:L3", exporter="zz"),
        ship("BB", "2025-04-06", 1_000_000, exporter="bb"),
        # 1 TPP per unit: below the control thresholds, not counted
        ship("SMALL", "2025-04-06", 1_000, units=1_000),
        ship("DIE", "2025-04-08", 1_000_000, die_area=800),
        {"type": "veu.granted", "veu_id": "V1", "entity": "Atlas", "kind": "universal",
         "headquarters_country": "US", "covered_countries": ["MX"],
         "valid_from": "2025-03-01"},
        {"type": "veu.amended", "veu_id": "V1", "effective_date": "2025-06-01",
         "covered_countries": ["MX", "IN"], "valid_to": "2025-12-31"},
        {"type": "veu.amended", "veu_id": "V1", "effective_date": "2025-08-01",
         "covered_countries": ["MX"]},
        {"type": "veu.revoked", "veu_id": "V1", "effective_date": "2025-10-01",
         "reason": "gone"},
        ship("V-IN-EARLY", "2025-05-01", 1_000_000, dest="IN", auth="veu:V1"),
        # the same VEU, exporter and day to a covered country: printed first, valid
        ship("V-A-MX", "2025-05-01", 1_000_000, auth="veu:V1"),
        ship("V-IN-LATER", "2025-07-01", 1_000_000, dest="IN", auth="veu:V1"),
        ship("V-IN-ON-DAY", "2025-06-01", 1_000_000, dest="IN", auth="veu:V1"),
        ship("V-MX-REVOKED", "2025-10-02", 1_000_000, auth="veu:V1"),
        ship("V-MX-ON-REVOKE", "2025-10-01", 1_000_000, auth="veu:V1"),
        ship("V-UNKNOWN", "2025-04-03", 1_000_000, auth="veu:NOPE"),
        # the LPP limit is 26,900,000 per consignee and calendar year
        ship("LPP-1", "2025-02-01", 20_000_000, auth="lpp", consignee="k1"),
        ship("LPP-2", "2025-08-01", 20_000_000, auth="lpp", consignee="k1"),
        ship("LPP-3", "2026-01-02", 20_000_000, auth="lpp", consignee="k1"),
        # past the limit already: its own 1,000,000 is the excess
        ship("LPP-4", "2025-09-01", 1_000_000, auth="lpp", consignee="k1"),
        ship("LPP-K2-2025", "2025-05-01", 5_000_000, auth="lpp", consignee="k2"),
        # another consignee's year: its own limit
        ship("LPP-K2", "2026-02-01", 20_000_000, auth="lpp", consignee="k2"),
        ship("EARLY", "2024-12-15", 3_000_000),
        # no revision in force yet (baseline-2023 begins 2023-11-17)
        ship("CN-2023", "2023-06-01", 1_000_000, dest="CN"),
    ]
    _rows, columns = both(tmp_path, lines, window_from=D(2023, 1, 1),
                          window_to=D(2026, 12, 31))
    got = [(ch.shipment_ref, ch.rule.bucket, ch.rule.flag, ch.rule.flag_tpp,
            ch.rule.counted_tpp, ch.rule.detail) for ch in columns.changes]
    cap = "counts against the country cap"
    lpp = "LPP: counts against the consignee's calendar-year limit"
    inv = "license not valid (license 'L1'"
    assert got == [
        ("CN-2023", "cap", "prohibited", 1_000_000, 1_000_000,
         "CN is tier 3: prohibited without a license"),
        ("LPP-1", "lpp", None, 0, 0, lpp),
        ("L-BB", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"{inv} is held by 'acme', not 'bb'): {cap}"),
        ("L-OTHER", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"{inv} is held by 'acme', not 'other'): {cap}"),
        ("L-UNKNOWN", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"license not valid (allocation 'NOPE' is not known to the ledger): {cap}"),
        ("V-UNKNOWN", "cap", "veu-invalid", 1_000_000, 1_000_000,
         f"VEU not valid (VEU 'NOPE' is not known to the ledger): {cap}"),
        ("L2-X", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"license not valid (license 'L2' is held by 'nobody', not 'zz'): {cap}"),
        ("L3-X", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"license not valid (license 'L3' is for DE, not SA): {cap}"),
        ("BB", "cap", "unlicensed", 1_000_000, 1_000_000, f"no authorization: {cap}"),
        ("DIE", "cap", "unlicensed", 1_000_000, 1_000_000,
         f"no authorization: {cap} [1000000 TPP per unit, performance density 1250 "
         "(declared die area 800 mm²; 3A090.a)]"),
        ("LPP-K2-2025", "lpp", None, 0, 0, lpp),
        ("V-A-MX", "veu", None, 0, 0, "under VEU V1: counts against the VEU's limits"),
        ("V-IN-EARLY", "cap", "veu-invalid", 1_000_000, 1_000_000,
         f"VEU not valid (VEU 'V1' does not cover IN): {cap}"),
        ("L-ON-REVOKE", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"{inv} was revoked from 2025-05-15): {cap}"),
        ("L-REVOKED", "cap", "license-invalid", 1_000_000, 1_000_000,
         f"{inv} was revoked from 2025-05-15): {cap}"),
        ("V-IN-ON-DAY", "veu", None, 0, 0, "under VEU V1: counts against the VEU's limits"),
        ("V-IN-LATER", "veu", None, 0, 0, "under VEU V1: counts against the VEU's limits"),
        ("LPP-2", "lpp", "lpp-excess", 13_100_000, 13_100_000, lpp),
        ("LPP-4", "lpp", "lpp-excess", 1_000_000, 1_000_000, lpp),
        ("V-MX-ON-REVOKE", "cap", "veu-invalid", 1_000_000, 1_000_000,
         f"VEU not valid (VEU 'V1' was revoked from 2025-10-01): {cap}"),
        ("V-MX-REVOKED", "cap", "veu-invalid", 1_000_000, 1_000_000,
         f"VEU not valid (VEU 'V1' was revoked from 2025-10-01): {cap}"),
        ("LPP-3", "lpp", None, 0, 0, lpp),
        ("LPP-K2", "lpp", None, 0, 0, lpp)]
    cn = columns.changes[0]
    assert (cn.rule.treatment, cn.rule.breach) == ("country cap (prohibited), first breach", True)
    assert (cn.against.rule, cn.against.clause, cn.against.citation, cn.against.detail) == (
        None, "no-rule", "no rule revision in force", "no rule revision in force on 2023-06-01")
    assert country(columns, "CN").rule.first_breach.shipment_ref == "CN-2023"
    mx = country(columns, "MX").rule
    # 13,000,000 shipped under L1 (3,000,000 past its amount), 5 + 3 invalid, 2 without
    # authorization, 14,100,000 LPP excess; SMALL is uncontrolled, EARLY outside the cap
    # period
    assert (mx.committed_tpp, mx.remaining_tpp) == (37_100_000, CAP - 37_100_000)
    assert {k: (v.count, v.tpp) for k, v in mx.flagged.items()} == {
        "license-excess": (2, 3_000_000), "license-invalid": (5, 5_000_000),
        "lpp-excess": (2, 14_100_000), "unlicensed": (2, 2_000_000),
        "veu-invalid": (3, 3_000_000)}
    # SA: two invalid license shipments and L2's 1,000,000 held; DE (tier 1): L3 held
    assert [(country(columns, c).rule.committed_tpp, country(columns, c).rule.status)
            for c in ("IN", "SA", "DE")] == [(1_000_000, "within-cap"),
                                             (3_000_000, "within-cap"), (1_000_000, "no-cap")]
    t = columns.totals
    assert (t.shipments_in_window, t.tpp_in_window, t.shipments_changed, t.tpp_changed) == (
        28, 119_001_000, 23, 103_000_000)
    assert columns.revisions_used == {
        "rule": {RULE: 28},
        "against": {"baseline-2023": 12, "diffusion-nonenforcement-2025": 9,
                    "h20-license-2025": 5, "h200-china-2026": 1, "none": 1}}


def _revision(new_id: str, period_start: str) -> dict[str, Any]:
    """ai-diffusion-2025 published again as ``new_id``, its cap period from
    ``period_start``."""
    line = next(json.loads(x) for x in RULES if json.loads(x)["document"]["id"] == RULE)
    line["document"]["id"] = new_id
    line["document"]["caps"]["tier2"]["period"]["start"] = period_start
    return line


def test_shipments_outside_the_cap_period_are_not_counted_and_say_so(tmp_path: Path) -> None:
    lines = [
        _revision("cap-from-2024", "2024-01-01"),
        {"type": "allocation.granted", "allocation_id": "L1", "country": "MX",
         "holder": "acme", "tpp_amount": 5_000_000, "valid_from": "2024-06-01"},
        ship("EARLY", "2024-12-15", 3_000_000),
        ship("EARLY-L", "2024-12-16", 2_000_000, auth="license:L1"),
        ship("INSIDE", "2025-01-01", 1_000_000),
    ]
    _rows, columns = both(tmp_path, lines, against="cap-from-2024",
                          window_to=D(2025, 12, 31))
    outside = "outside the cap period 2025-01-01..2027-12-31"
    got = [(ch.shipment_ref, ch.rule.bucket, ch.rule.flag, ch.rule.counted_tpp, ch.rule.detail,
            ch.against.bucket, ch.against.counted_tpp) for ch in columns.changes]
    assert got == [
        ("EARLY", "none", None, 0, f"shipped 2024-12-15, {outside}", "cap", 3_000_000),
        ("EARLY-L", "none", None, -2_000_000, f"shipped 2024-12-16, {outside}", "license", 0)]
    mx = country(columns, "MX")
    # under both, the license's 5,000,000 is held from its grant and INSIDE counts; EARLY
    # and EARLY-L count only under the revision whose period holds them, and EARLY-L
    # uses 2,000,000 of the license either way (so the rule lane holds only 3,000,000)
    assert (mx.rule.committed_tpp, mx.against.committed_tpp) == (4_000_000, 9_000_000)


def test_changes_are_read_whole_past_a_slice_of_2000(tmp_path: Path) -> None:
    lines = [ship("A", "2025-03-01", 1_000_000), ship("B", "2025-03-02", 2_000_000)]
    rows, columns = both(tmp_path, lines, window_to=D(2025, 12, 31))
    assert [ch.shipment_ref for ch in rows.changes] == ["A", "B"]
    changes = columns.changes
    assert isinstance(changes, ChangeRows)
    # the two changes, over and over, 2,001 times: iteration reads them 2,000 at a time
    many = ChangeRows(changes.w, changes.a, changes.b, np.resize(changes.idx, 2_001))
    assert [ch.shipment_ref for ch in many] == ["A", "B"] * 1_000 + ["A"]


def test_sort_order_is_lexsort_for_keys_packed_past_the_float_precision() -> None:
    # packed into one key of about 2**59, beyond float64's 53 bits of precision
    secondary = np.array([5, 4, 3, 2, 1, 1 << 20], dtype=np.int64)
    primary = np.array([1 << 39, 1 << 39, 1 << 39, 1 << 39, 1 << 39, 1], dtype=np.int64) + 7
    assert sort_order(secondary, primary).tolist() == np.lexsort((secondary, primary)).tolist()
    assert sort_order(secondary, primary).tolist() == [5, 4, 3, 2, 1, 0]


def test_sort_order_is_lexsort_for_keys_too_wide_to_pack() -> None:
    # three keys of 2**30 values each: 2**90 combinations, more than int64 holds
    top = (1 << 30) - 1
    keys = (np.array([0, top, 5, top, 0, 7]), np.array([top, 0, 3, top, 9, 0]),
            np.array([1, top, top - 1, 0, top, 2]))
    assert sort_order(*keys).tolist() == np.lexsort(keys).tolist() == [3, 0, 5, 2, 1, 4]


def test_a_window_ending_before_it_starts_is_refused_naming_from() -> None:
    with pytest.raises(ValidationError) as refused:
        replay_columns(None, None, RULE, window_from=D(2025, 2, 1),  # type: ignore[arg-type]
                       window_to=D(2025, 1, 31))
    assert (str(refused.value), refused.value.field, refused.value.value) == (
        "--from 2025-02-01 is after --to 2025-01-31", "from", "2025-02-01")


def test_allocations_and_no_shipments(tmp_path: Path) -> None:
    lines = [{"type": "allocation.granted", "allocation_id": "L1", "country": "MX",
              "holder": "acme", "tpp_amount": 5_000_000, "valid_from": "2025-01-01"}]
    _rows, columns = both(tmp_path, lines, window_to=D(2025, 12, 31))
    assert list(columns.changes) == []
    mx = country(columns, "MX")
    assert (mx.rule.committed_tpp, mx.rule.status, mx.against.committed_tpp) == (
        5_000_000, "within-cap", 5_000_000)
    assert columns.totals.shipments_in_window == 0


def test_no_revision_in_force_on_the_last_day(tmp_path: Path) -> None:
    # baseline-2023, the first revision, begins 2023-11-17
    lines = [ship("CN-1", "2023-06-01", 1_000_000, dest="CN"),
             ship("CN-2", "2023-06-02", 1_000_000, dest="CN")]
    _rows, columns = both(tmp_path, lines)
    cn = country(columns, "CN")
    assert (cn.rule.tier, cn.rule.cap_tpp, cn.rule.committed_tpp, cn.rule.status) == (
        3, 0, 2_000_000, "over-cap")
    assert cn.rule.first_breach.shipment_ref == "CN-1"
    assert (cn.against.tier, cn.against.cap_tpp, cn.against.committed_tpp,
            cn.against.status) == (None, None, 0, "no-cap")
    assert columns.revisions_used == {"rule": {RULE: 2}, "against": {"none": 2}}
    assert [(ch.shipment_ref, ch.against.detail) for ch in columns.changes] == [
        ("CN-1", "no rule revision in force on 2023-06-01"),
        ("CN-2", "no rule revision in force on 2023-06-02")]


def test_a_first_breach_on_a_day_of_changes_names_the_latest_that_worsened(
        tmp_path: Path) -> None:
    lines = [
        # IN: 787,000,000 shipped, and 2,000,000 under a license of 1,000,000
        ship("IN-BULK", "2025-03-01", 787_000_000, dest="IN", units=100_000),
        {"type": "allocation.granted", "allocation_id": "L-OLD", "country": "IN",
         "holder": "acme", "tpp_amount": 1_000_000, "valid_from": "2025-03-01"},
        ship("IN-OLD", "2025-03-02", 2_000_000, dest="IN", auth="license:L-OLD"),
        # on 2025-06-01: a license of 5,000,000 (worse), a country allocation of
        # 1,000,000 (better), a license of 1 TPP (worse), L-OLD adjusted to 1,500,000,
        # still below what it shipped (no change): over the cap of 791,000,000 after the
        # day, named by the latest that worsened
        {"type": "allocation.granted", "allocation_id": "L-IN", "country": "IN",
         "holder": "acme", "tpp_amount": 5_000_000, "valid_from": "2025-06-01"},
        {"type": "allocation.granted", "allocation_id": "G-IN", "country": "IN",
         "tpp_amount": 1_000_000, "valid_from": "2025-06-01"},
        {"type": "allocation.granted", "allocation_id": "L-IN2", "country": "IN",
         "holder": "acme", "tpp_amount": 1, "valid_from": "2025-06-01"},
        {"type": "allocation.adjusted", "allocation_id": "L-OLD", "tpp_amount": 1_500_000,
         "effective_date": "2025-06-01", "reason": "more"},
        # MX: over the cap the day its country allocation ends, 2025-05-01; SA's first
        # item is a change of that day too
        {"type": "allocation.granted", "allocation_id": "G-MX", "country": "MX",
         "tpp_amount": 100_000_000, "valid_from": "2025-02-01", "valid_to": "2025-04-30"},
        ship("MX-BULK", "2025-03-01", 800_000_000, units=100_000),
        {"type": "allocation.granted", "allocation_id": "G-SA", "country": "SA",
         "tpp_amount": 10_000_000, "valid_from": "2025-05-01"},
        # SA: a shipment recorded before the allocation and the license of its own day:
        # the day's changes come first, so it is within the cap raised to 810,000,000
        # and the license
        ship("SA-BULK", "2025-07-01", 805_000_000, dest="SA", units=100_000),
        ship("SA-LIC", "2025-07-01", 1_000_000, dest="SA", auth="license:L-SA"),
        {"type": "allocation.granted", "allocation_id": "G-SA2", "country": "SA",
         "tpp_amount": 10_000_000, "valid_from": "2025-07-01"},
        {"type": "allocation.granted", "allocation_id": "L-SA", "country": "SA",
         "holder": "acme", "tpp_amount": 2_000_000, "valid_from": "2025-07-01"},
    ]
    _rows, columns = both(tmp_path, lines, window_to=D(2025, 12, 31))
    got = {c: country(columns, c).rule for c in ("IN", "MX", "SA")}
    assert got["IN"].first_breach.model_dump(exclude_none=True) == {
        "type": "allocation", "date": D(2025, 6, 1), "position": 11,
        "allocation_id": "L-IN2", "committed_tpp": 794_000_001, "cap_tpp": 791_000_000}
    assert got["MX"].first_breach.model_dump(exclude_none=True) == {
        "type": "allocation-ended", "date": D(2025, 5, 1), "position": 13,
        "allocation_id": "G-MX", "committed_tpp": 800_000_000, "cap_tpp": CAP}
    # SA: cap 810,000,000, committed 805,000,000 and the license's 2,000,000
    assert (got["SA"].cap_tpp, got["SA"].committed_tpp, got["SA"].first_breach) == (
        810_000_000, 807_000_000, None)


def test_one_tpp_over_a_license_or_the_lpp_limit_is_flagged(tmp_path: Path) -> None:
    lines = [
        {"type": "allocation.granted", "allocation_id": "L1", "country": "MX",
         "holder": "acme", "tpp_amount": 5_000_000, "valid_from": "2025-01-01"},
        ship("L-ONE-OVER", "2025-03-01", 5_000_001, auth="license:L1"),
        ship("LPP-ONE-OVER", "2025-03-01", 26_900_001, auth="lpp", consignee="k1"),
    ]
    _rows, columns = both(tmp_path, lines, window_to=D(2025, 12, 31))
    mx = country(columns, "MX").rule
    assert {k: (v.count, v.tpp) for k, v in mx.flagged.items()} == {
        "license-excess": (1, 1), "lpp-excess": (1, 1)}
    assert mx.committed_tpp == 5_000_002


def test_days_without_a_revision_and_with_one_are_grouped_apart(tmp_path: Path) -> None:
    # two days before baseline-2023 begins (2023-11-17), one after, alike in all else
    lines = [ship("CN-1", "2023-06-01", 1_000_000, dest="CN"),
             ship("CN-2", "2023-06-02", 1_000_000, dest="CN"),
             ship("CN-3", "2024-01-02", 1_000_000, dest="CN")]
    _rows, columns = both(tmp_path, lines)
    assert [(ch.shipment_ref, ch.against.rule, ch.against.clause) for ch in columns.changes
            ] == [("CN-1", None, "no-rule"), ("CN-2", None, "no-rule"),
                  ("CN-3", "baseline-2023", "license-required")]


def test_a_draft_revision_is_replayed_as_the_rule_or_against(tmp_path: Path) -> None:
    draft = RuleBook.model_validate(_revision("draft-2024", "2024-01-01")["document"])
    lines = [ship("EARLY", "2024-12-15", 3_000_000)]
    for rule, against in ((RULE, "draft-2024"), ("draft-2024", RULE)):
        (tmp_path / rule).mkdir()
        _rows, columns = both(tmp_path / rule, lines, against=against, rule=rule,
                              window_to=D(2025, 12, 31), drafts={"draft-2024": draft})
        [change] = columns.changes
        under_draft = change.against if against == "draft-2024" else change.rule
        assert (under_draft.rule, under_draft.bucket, under_draft.counted_tpp) == (
            "draft-2024", "cap", 3_000_000)


def test_the_authorization_of_a_group_is_one_shared_object_per_kind_and_reference() -> None:
    ref = f"never-seen-{id(object())}"
    auth = replay_columnar._authorization("license", ref)
    assert auth == Authorization(kind="license", ref=ref)
    assert replay_columnar._authorization("license", ref) is auth


def test_group_codes_rank_again_before_the_key_leaves_int64() -> None:
    # seven columns of 700 values each: 700**7 combinations, more than int64 holds
    rng = np.random.default_rng(7)
    cols = [rng.permutation(700).astype(np.int64) for _ in range(7)]
    cols[0][1] = cols[0][0]
    group, first = group_codes(*cols)
    _, want_first, want_group = np.unique(np.stack(cols[::-1], axis=1)[:, ::-1], axis=0,
                                          return_index=True, return_inverse=True)
    assert group.tolist() == want_group.reshape(-1).tolist()
    assert first.tolist() == want_first.tolist()


def test_a_shipment_whose_flag_alone_differs_is_a_change(tmp_path: Path) -> None:
    # MX is tier 2 under ai-diffusion-2025 and tier 3 under this revision: counted the
    # same, flagged unlicensed under one and prohibited under the other
    tier3 = _revision("mx-tier-3", "2025-01-01")
    tier3["document"]["tiers"]["countries"]["MX"] = 3
    lines = [tier3, ship("MX-1", "2025-03-01", 1_000_000),
             # before both cap periods: outside ai-diffusion-2025's (tier 2), counted as
             # tier 3 under the other, whose tier-3 cap has no period
             ship("MX-0", "2024-12-15", 2_000_000)]
    _rows, columns = both(tmp_path, lines, against="mx-tier-3", window_to=D(2025, 12, 31))
    assert [(ch.shipment_ref, ch.rule.bucket, ch.rule.flag, ch.rule.flag_tpp,
             ch.rule.counted_tpp, ch.against.bucket, ch.against.flag, ch.against.flag_tpp,
             ch.against.counted_tpp) for ch in columns.changes] == [
        ("MX-0", "none", None, 0, 0, "cap", "prohibited", 2_000_000, 2_000_000),
        ("MX-1", "cap", "unlicensed", 1_000_000, 1_000_000,
         "cap", "prohibited", 1_000_000, 1_000_000)]


def test_shipments_alike_but_for_the_product_are_treated_apart(tmp_path: Path) -> None:
    ascend = {**ship("ASCEND", "2025-03-01", 5_120), "product_id": "huawei-ascend-910b"}
    lines = [ship("ASIC", "2025-03-01", 5_120), ascend]
    _rows, columns = both(tmp_path, lines, window_to=D(2025, 12, 31))
    mx = country(columns, "MX").rule
    # the Ascend is not US-origin: counted against no US cap
    assert (mx.committed_tpp, {k: v.count for k, v in mx.flagged.items()}) == (
        5_120, {"unlicensed": 1})
