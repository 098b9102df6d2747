"""Golden replays on the hand-checked ledger (see golden/README.md), on every backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.integration.replay.conftest import GOLDEN, RETRO_POSITION

Cli = Callable[..., tuple[int, str, str]]
BEFORE_RETRO = str(RETRO_POSITION - 1)


def by_country(data: dict[str, Any]) -> dict[str, Any]:
    return {c["country"]: c for c in data["countries"]}


def change(data: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(ch for ch in data["changes"] if ch["shipment_ref"] == ref)


def replay_json(cli: Cli, *extra: str) -> tuple[str, dict[str, Any]]:
    code, out, err = cli("replay", "--rule", "ai-diffusion-2025", "--to", "2025-12-31",
                         "--json", *extra)
    assert code == 0, err
    return out, json.loads(out)


def test_replay_matches_golden_json_byte_for_byte(cli: Cli) -> None:
    out, _ = replay_json(cli)
    again, _ = replay_json(cli)
    assert out == again
    assert out == (GOLDEN / "replay.json").read_text(encoding="utf-8")


def test_replay_known_at_before_retro_matches_golden(cli: Cli) -> None:
    out, data = replay_json(cli, "--known-at", BEFORE_RETRO)
    assert out == (GOLDEN / "replay-known-at-26.json").read_text(encoding="utf-8")
    assert data["computed_at_position"] == RETRO_POSITION - 1


def test_hand_checked_numbers_lane_a(cli: Cli) -> None:
    _, data = replay_json(cli)
    c = by_country(data)
    mx = c["MX"]["rule"]
    assert (mx["cap_tpp"], mx["committed_tpp"], mx["remaining_tpp"], mx["status"]) == (
        790_000_000, 800_000_000, -10_000_000, "over-cap")
    assert mx["first_breach"]["shipment_ref"] == "mx-3"
    assert mx["first_breach"]["committed_tpp"] == 800_000_000
    assert c["AE"]["rule"]["committed_tpp"] == 3_100_000
    assert c["AE"]["rule"]["flagged"] == {"lpp-excess": {"count": 1, "tpp": 3_100_000}}
    assert c["SA"]["rule"]["committed_tpp"] == 60_000_000
    assert c["SA"]["rule"]["flagged"] == {"license-excess": {"count": 1, "tpp": 10_000_000}}
    assert c["IN"]["rule"]["committed_tpp"] == 20_000_000
    assert c["IN"]["rule"]["flagged"] == {"license-invalid": {"count": 1, "tpp": 10_000_000}}
    assert c["CN"]["rule"]["remaining_tpp"] == -1_000_000
    assert c["CN"]["rule"]["first_breach"]["shipment_ref"] == "cn-1"
    assert c["MY"]["rule"]["committed_tpp"] == 0
    assert c["DE"]["rule"]["status"] == "no-cap"
    assert data["totals"]["committed_under_rule_tpp"] == 884_100_000


def test_hand_checked_numbers_lane_b_and_changes(cli: Cli) -> None:
    _, data = replay_json(cli)
    assert data["against"] == "in-force"
    assert data["against_caps_from"] == "golden-retro-2025"
    c = by_country(data)
    assert c["MX"]["against"]["committed_tpp"] == 400_000_000
    assert c["MX"]["against"]["status"] == "within-cap"
    assert c["MX"]["committed_difference_tpp"] == 400_000_000
    assert c["AE"]["against"]["committed_tpp"] == 0
    assert c["CN"]["against"]["status"] == "over-cap"
    t = data["totals"]
    assert (t["shipments_in_window"], t["shipments_changed"]) == (16, 7)
    assert (t["tpp_in_window"], t["tpp_changed"]) == (1_691_000_000, 650_000_000)
    assert t["countries_status_changed"] == ["MX"]
    assert sorted(ch["shipment_ref"] for ch in data["changes"]) == sorted(
        ["ae-4", "ae-5", "ae-1", "mx-1", "v-2", "mx-3", "ae-2"])
    mx3 = change(data, "mx-3")
    assert mx3["rule"]["breach"] and not mx3["against"]["breach"]
    assert mx3["against"]["rule"] == "golden-retro-2025"
    ae2 = change(data, "ae-2")
    assert (ae2["rule"]["flag"], ae2["rule"]["flag_tpp"]) == ("lpp-excess", 3_100_000)
    assert ae2["against"]["flag"] is None
    mx1 = change(data, "mx-1")
    assert mx1["against"]["rule"] == "baseline-2023"
    assert mx1["rule"]["clause"] == "tier2-unlicensed"
    assert "90 FR 4544" in mx1["rule"]["citation"]
    for ch in data["changes"]:
        assert ch["rule"]["citation"] and ch["against"]["citation"]


def test_known_at_before_retro_reproduces_no_caps(cli: Cli) -> None:
    _, data = replay_json(cli, "--known-at", BEFORE_RETRO)
    assert data["against_caps_from"] == "diffusion-nonenforcement-2025"
    assert {c["against"]["status"] for c in data["countries"]} == {"no-cap"}
    assert data["totals"]["countries_status_changed"] == ["AE", "CN", "IN", "MX", "MY", "SA"]
    assert data["totals"]["shipments_changed"] == 11
    assert data["totals"]["tpp_changed"] == 1_011_000_000
    c = by_country(data)
    assert c["SA"]["against"]["committed_tpp"] == 60_000_000
    assert c["IN"]["against"]["committed_tpp"] == 10_000_000
    # lane A does not depend on the retroactive revision
    _, now = replay_json(cli)
    assert [x["rule"] for x in data["countries"]] == [x["rule"] for x in now["countries"]]


def test_replay_equals_quota_for_every_country(cli: Cli) -> None:
    _, data = replay_json(cli)
    code, out, err = cli("quota", "--all", "--rule", "ai-diffusion-2025",
                         "--as-of", "2025-12-31", "--json")
    assert code == 0, err
    quota = {p["country"]: p for p in json.loads(out)}
    assert sorted(quota) == [c["country"] for c in data["countries"]]
    for c in data["countries"]:
        q, r = quota[c["country"]], c["rule"]
        for key in ("tier", "cap_tpp", "committed_tpp", "remaining_tpp", "status",
                    "first_breach", "flagged"):
            assert r[key] == q[key], (c["country"], key)


def test_retroactive_revision_changes_the_past_and_known_at_reproduces(cli: Cli) -> None:
    code, out, _ = cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--json")
    now = json.loads(out)
    assert now["rule"] == "golden-retro-2025"
    assert (now["cap_tpp"], now["committed_tpp"], now["status"]) == (
        500_000_000, 700_000_000, "over-cap")
    assert now["first_breach"]["shipment_ref"] == "mx-2"
    code, out, _ = cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--json",
                       "--known-at", BEFORE_RETRO)
    before = json.loads(out)
    assert before["rule"] == "diffusion-nonenforcement-2025"
    assert (before["cap_tpp"], before["status"]) == (None, "no-cap")
    # on the books: the Diffusion rule, suspended but never rescinded
    code, out, _ = cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--json",
                       "--on-the-books", "--known-at", BEFORE_RETRO)
    assert code == 0
    books = json.loads(out)
    assert (books["rule"], books["cap_tpp"], books["committed_tpp"]) == (
        "ai-diffusion-2025", 790_000_000, 700_000_000)


def test_universal_veu_over_seven_percent(cli: Cli) -> None:
    code, out, _ = cli("veu", "status", "uveu-1", "--as-of", "2025-12-31",
                       "--rule", "ai-diffusion-2025", "--json")
    assert code == 4  # a limit is breached
    data = json.loads(out)
    assert data["base_tpp"] == 1_000_000_000
    limits = {lim["limit"]: lim for lim in data["limits"]}
    assert limits["max-share-single-non-tier1:MY"]["breach"] is True
    assert limits["max-share-single-non-tier1:MY"]["share"] == "0.0800"
    assert limits["max-share-single-non-tier1:AE"]["breach"] is False
    assert limits["max-share-outside-tier1"]["used_tpp"] == 130_000_000
    assert limits["min-share-us"]["breach"] is False
    assert data["breaches"] == ["max-share-single-non-tier1:MY"]


def test_explain_lists_contributions_with_citations(cli: Cli) -> None:
    code, out, _ = cli("quota", "--country", "IN", "--as-of", "2025-12-31",
                       "--rule", "ai-diffusion-2025", "--explain", "--json")
    data = json.loads(out)
    items = data["contributions"]
    assert sum(i["committed_delta"] for i in items) == data["committed_tpp"] == 20_000_000
    assert [i["identity"] for i in items] == ["lic-in-1", "exp-b/in-1", "lic-in-1",
                                              "exp-b/in-2"]
    assert [i["committed_delta"] for i in items] == [40_000_000, 0, -30_000_000, 10_000_000]
    assert all(i["citation"] for i in items)
    code, out, _ = cli("quota", "--country", "IN", "--as-of", "2025-12-31", "--json")
    assert "contributions" not in json.loads(out)
    code, out, _ = cli("quota", "--country", "IN", "--as-of", "2025-12-31",
                       "--rule", "ai-diffusion-2025", "--explain=full")
    assert code == 0 and "90 FR 4544" in out


def test_replay_never_writes(cli: Cli, golden: str) -> None:
    from ledger.application import Ledger

    cli("replay", "--rule", "ai-diffusion-2025", "--quiet")
    app = Ledger(golden)
    try:
        assert app.max_position() == RETRO_POSITION
    finally:
        app.close()


def test_replay_csv_and_table(cli: Cli) -> None:
    code, out, _ = cli("replay", "--rule", "ai-diffusion-2025", "--to", "2025-12-31",
                       "--csv")
    lines = out.splitlines()
    assert lines[0].startswith("country,lane,rule,tier,cap_tpp")
    assert "MX,rule,ai-diffusion-2025,2,790000000,800000000,-10000000,over-cap" in out
    code, out, _ = cli("replay", "--rule", "ai-diffusion-2025", "--to", "2025-12-31",
                       "--csv=changes")
    assert len(out.splitlines()) == 1 + 7
    code, out, err = cli("replay", "--rule", "ai-diffusion-2025", "--to", "2025-12-31")
    assert code == 0
    assert "Totals" in out and "7 of 16 shipments" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_replay_errors_name_field_and_value(cli: Cli) -> None:
    code, _out, err = cli("replay", "--rule", "no-such-rule")
    assert code == 1 and "'no-such-rule'" in err and "Traceback" not in err
    code, _out, err = cli("replay", "--rule", "ai-diffusion-2025", "--against", "nope")
    assert code == 1 and "'nope'" in err
    code, _, err = cli("replay", "--rule", "ai-diffusion-2025", "--from", "2025-06-01",
                       "--to", "2025-01-01")
    assert code == 1 and "--from 2025-06-01 is after --to 2025-01-01" in err
    code, _, err = cli("veu", "status", "nope", "--as-of", "2025-01-01")
    assert code == 1 and "'nope'" in err
    code, _, err = cli("quota", "--country", "MX", "--as-of", "2025-06-30",
                       "--rule", "ai-diffusion-2025", "--on-the-books")
    assert code == 2 and "give one" in err  # usage: two options choose the revision
    code, _, err = cli("quota", "--all", "--as-of", "2025-06-30", "--explain")
    assert code == 2 and "--explain needs --country" in err  # usage
    code, _, err = cli("rules", "diff", "nope", "baseline-2023")
    assert code == 1 and "'nope'" in err


def test_rules_timeline_and_diff(cli: Cli) -> None:
    code, out, _ = cli("rules", "timeline", "--json", "--known-at", BEFORE_RETRO)
    lanes = json.loads(out)["lanes"]
    assert [p["rule"] for p in lanes["enforced"]] == [
        "baseline-2023", "h20-license-2025", "diffusion-nonenforcement-2025",
        "h200-china-2026"]
    assert lanes["on-the-books"][-1]["rule"] == "ai-diffusion-2025"
    code, out, _ = cli("rules", "timeline", "--json")
    enforced = json.loads(out)["lanes"]["enforced"]
    assert {"rule": "golden-retro-2025", "from": "2025-05-01", "to": "2026-01-14"} in enforced
    code, out, _ = cli("rules", "timeline")
    assert code == 0 and "on the books" in out and "█" in out
    code, out, _ = cli("rules", "diff", "diffusion-nonenforcement-2025",
                       "golden-retro-2025", "--json")
    d = json.loads(out)
    assert d["caps"]["tier2_tpp"] == {"from": None, "to": 500_000_000}
    assert d["exceptions"]["lpp_limit_tpp_per_consignee_year"]["to"] == 26_900_000
    assert "tier_moves" not in d
