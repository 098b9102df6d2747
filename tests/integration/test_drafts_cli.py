"""Draft rules (--rule-file, rules check), the instruments timeline and products show,
through the CLI against a real store: nothing a draft does is ever written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

H100 = 15_832


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: drafts read the same read model on both backends (the storage
    suite covers PostgreSQL); this keeps the CLI checks cheap."""
    return sqlite_url

DRAFT = """\
kind: draft
id: draft-double-tier2-2026
title: "Draft: tier-2 cap doubled from 2026-01-01"
citation: internal draft, not a rule
sources:
  - title: analyst's what-if (hypothetical)
lifecycle:
  effective: 2026-01-01
parts:
  caps:
    tier2:
      tpp: 1580000000
      period: {start: 2025-01-01, end: 2027-12-31}
      source: "hypothetical: twice the 790,000,000 TPP of 90 FR 4544-4584"
    tier3_tpp: 0
"""


def setup(run_cli: Any, tmp_path: Path) -> None:
    assert run_cli("rules", "load", "--bundled").exit_code == 0
    lines = [json.dumps({"type": "shipment.recorded", "exporter_id": "acme",
                         "shipment_ref": ref, "ship_date": day, "destination": "MX",
                         "consignee_id": "c1", "product_id": "nvidia-h100-sxm",
                         "quantity": qty, "authorization": {"kind": "none"}})
             for ref, day, qty in [("S1", "2025-03-01", 30_000), ("S2", "2026-02-01", 20_000)]]
    path = tmp_path / "ships.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert run_cli("import", str(path)).exit_code == 0


def draft_file(tmp_path: Path, text: str = DRAFT, name: str = "draft.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def head(run_cli: Any) -> int:
    result = run_cli("quota", "--country", "MX", "--as-of", "2026-06-30", "--json")
    return int(json.loads(result.output)["computed_at_position"])


def test_quota_and_replay_with_a_draft_name_the_file_and_write_nothing(
        run_cli: Any, tmp_path: Path) -> None:
    setup(run_cli, tmp_path)
    path = draft_file(tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    before = head(run_cli)

    result = run_cli("quota", "--country", "MX", "--as-of", "2026-06-30",
                     "--rule-file", str(path), "--json")
    assert result.exit_code == 0, result.output
    p = json.loads(result.output)
    assert p["rule"] == "draft-double-tier2-2026" and p["cap_tpp"] == 1_580_000_000
    assert p["committed_tpp"] == 50_000 * H100 and p["tier"] == 2
    assert p["draft"] == {"file": str(path), "sha256": sha, "id": "draft-double-tier2-2026",
                          "kind": "instrument", "layers_on": "diffusion-nonenforcement-2025"}

    text = run_cli("quota", "--all", "--as-of", "2026-06-30", "--rule-file", str(path))
    assert text.exit_code == 0 and sha in text.output and str(path) in text.output

    result = run_cli("replay", "--rule-file", str(path), "--to", "2026-06-30", "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    assert r["rule"] == "draft-double-tier2-2026" and r["draft"]["sha256"] == sha
    mx = next(c for c in r["countries"] if c["country"] == "MX")
    assert mx["rule"]["cap_tpp"] == 1_580_000_000 and mx["against"]["status"] == "no-cap"

    assert head(run_cli) == before  # nothing appended
    listed = json.loads(run_cli("rules", "list", "--json").output)
    assert "draft-double-tier2-2026" not in {b["id"] for b in listed}


def test_rules_check_validates_and_shows_the_changes(run_cli: Any, tmp_path: Path) -> None:
    setup(run_cli, tmp_path)
    ok = run_cli("rules", "check", str(draft_file(tmp_path)))
    assert ok.exit_code == 0, ok.output
    assert "OK: draft rule draft-double-tier2-2026" in ok.output
    assert "diffusion-nonenforcement-2025" in ok.output
    assert "tier2 tpp" in ok.output and "1,580,000,000" in ok.output
    data = json.loads(run_cli("rules", "check", str(draft_file(tmp_path)), "--json").output)
    assert data["against"] == "diffusion-nonenforcement-2025"
    assert data["diff"]["caps"]["tier2_tpp"] == {"from": None, "to": 1_580_000_000}


def test_bad_drafts_are_refused_naming_field_and_value(run_cli: Any, tmp_path: Path) -> None:
    setup(run_cli, tmp_path)
    cases = {
        "negative.yaml": (DRAFT.replace("tpp: 1580000000", "tpp: -5"),
                          ["parts.caps.tier2.tpp", "-5"]),
        "supersedes.yaml": (DRAFT.replace("kind: draft", "kind: draft\nsupersedes: [nope-2030]"),
                            ["supersedes", "nope-2030"]),
        "layers.yaml": (DRAFT.replace("kind: draft", "kind: draft\nlayers_on: nope-2030"),
                        ["layers_on", "nope-2030"]),
        "taken.yaml": (DRAFT.replace("id: draft-double-tier2-2026", "id: ai-diffusion-2025"),
                       ["ai-diffusion-2025", "already a published revision"]),
        "yaml.yaml": ("kind: draft\n  id: [", ["not valid YAML"]),
    }
    for name, (text, words) in cases.items():
        path = draft_file(tmp_path, text, name)
        for args in (["rules", "check", str(path)],
                     ["quota", "--country", "MX", "--as-of", "2026-06-30", "--rule-file",
                      str(path)],
                     ["replay", "--rule-file", str(path)]):
            result = run_cli(*args)
            assert result.exit_code == 1, (name, args, result.output)
            for word in words:
                assert word in result.output, (name, word, result.output)
    both = run_cli("quota", "--country", "MX", "--as-of", "2026-06-30", "--rule",
                   "ai-diffusion-2025", "--rule-file", str(draft_file(tmp_path)))
    assert both.exit_code == 2 and "give one" in both.output  # usage: contradictory options


def test_a_whole_rule_book_draft_is_validated_like_rules_load(run_cli: Any,
                                                             tmp_path: Path) -> None:
    setup(run_cli, tmp_path)
    composition = ("id: what-if-2026\ntitle: What if\ncitation: none\npublished: 2026-01-01\n"
                   "effective: 2026-01-01\nenforcement: {begins: 2026-01-01}\n"
                   "supersedes: [h200-china-2026]\n"
                   "instruments: [oct-2023-rules, ai-diffusion-2025]\n")
    path = draft_file(tmp_path, composition, "book.yaml")
    result = run_cli("quota", "--country", "MX", "--as-of", "2026-06-30", "--rule-file",
                     str(path), "--json")
    assert result.exit_code == 0, result.output
    p = json.loads(result.output)
    assert p["cap_tpp"] == 790_000_000 and p["draft"]["kind"] == "rule-book"
    unknown = draft_file(tmp_path, composition.replace("ai-diffusion-2025]", "nope]"), "u.yaml")
    result = run_cli("rules", "check", str(unknown))
    assert result.exit_code == 1 and "'nope'" in result.output


def test_timeline_on_the_books_shows_the_instruments_and_group_changes(
        run_cli: Any, tmp_path: Path) -> None:
    setup(run_cli, tmp_path)
    result = run_cli("rules", "timeline", "--on-the-books", "--from", "2025-01-01",
                     "--to", "2026-06-30", "--width", "40")
    assert result.exit_code == 0, result.output
    out = result.output
    for inst in ("oct-2023-rules", "ai-diffusion-2025", "h20-notice-2025",
                 "diffusion-nonenforcement-2025", "h200-china-2026"):
        assert inst in out
    assert "published 2026-01-15 (unverified)" in out
    assert "2025-01-13 → …" in out  # the Diffusion rule, on the books throughout
    assert "never enforced" in out
    assert "2026-02-03  d5     -KH" in out
    data = json.loads(run_cli("rules", "timeline", "--from", "2025-01-01", "--to",
                              "2026-06-30", "--json").output)
    books = data["lanes"]["on-the-books"]
    assert all("ai-diffusion-2025" in p["instruments"] for p in books[1:])


def test_explain_names_the_instrument_of_each_clause(run_cli: Any, tmp_path: Path) -> None:
    setup(run_cli, tmp_path)
    result = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--on-the-books",
                     "--explain")
    assert result.exit_code == 0, result.output
    assert "tier2-unlicensed (instrument ai-diffusion-2025)" in result.output
    data = json.loads(run_cli("quota", "--country", "MX", "--as-of", "2025-06-30",
                              "--explain", "--json").output)
    assert {c["instrument"] for c in data["contributions"]} == {
        "diffusion-nonenforcement-2025"}


def test_products_show(run_cli: Any) -> None:
    h20 = run_cli("products", "show", "nvidia-h20")
    assert h20.exit_code == 0
    assert "none: not controlled by the thresholds" in h20.output
    assert "2.9" in h20.output and "secondary" in h20.output
    assert "h20-notice-2025: license-required from 2025-04-09" in h20.output
    ascend = json.loads(run_cli("products", "show", "huawei-ascend-910b", "--json").output)
    assert ascend["origin"] == "non-us" and ascend["paragraph"] == "3A090.a"
    assert ascend["product_rules"][0]["treatment"] == "gp10"
    declared = json.loads(run_cli("products", "show", "custom", "--tpp", "3000",
                                  "--die-area", "800", "--json").output)
    assert declared["paragraph"] == "3A090.b" and declared["performance_density"] == "3.75"
    unknown = run_cli("products", "show", "custom")
    assert unknown.exit_code == 1 and "--tpp" in unknown.output
    listed = run_cli("products", "list")
    assert listed.exit_code == 0 and "nvidia-h20" in listed.output


def test_rules_show_marks_the_unverified_publication_date(run_cli: Any) -> None:
    assert run_cli("rules", "load", "--bundled").exit_code == 0
    out = run_cli("rules", "show", "h200-china-2026").output
    assert "published  2026-01-15 (unverified)" in out
    assert "instrument h200-china-2026 (final-rule): published 2026-01-15 (unverified)" in out
    assert "group d5 (partial)" in out and "2026-02-03: -KH" in out


REINSTATE = """\
kind: draft
id: draft-diffusion-enforced
title: "Draft: the Diffusion rule enforced from its 2025-05-15 compliance date"
citation: internal draft, not a rule
sources:
  - title: analyst's what-if
lifecycle:
  effective: 2025-05-15
reinstates: [ai-diffusion-2025]
"""


def test_a_draft_can_reinstate_the_suspended_diffusion_rule(run_cli: Any,
                                                           tmp_path: Path) -> None:
    """'The Diffusion rule with the May 15 compliance date enforced, plus everything
    else in force' is one small file: the non-enforcement's suspension is lifted."""
    setup(run_cli, tmp_path)
    path = draft_file(tmp_path, REINSTATE, "reinstate.yaml")
    args = ("quota", "--country", "MX", "--as-of", "2025-06-30", "--json")
    draft = json.loads(run_cli(*args, "--rule-file", str(path)).output)
    named = json.loads(run_cli(*args, "--rule", "ai-diffusion-2025").output)
    assert draft["draft"]["layers_on"] == "diffusion-nonenforcement-2025"
    assert draft["cap_tpp"] == named["cap_tpp"] == 790_000_000
    assert draft["committed_tpp"] == named["committed_tpp"] == 30_000 * H100
    check = run_cli("rules", "check", str(path), "--json")
    d = json.loads(check.output)["diff"]
    assert d["caps"]["tier2_tpp"] == {"from": None, "to": 790_000_000}
    assert d["exceptions"]["lpp_limit_tpp_per_consignee_year"]["to"] == 26_900_000
