"""Lookups and the pre-shipment check through the CLI, on SQLite and PostgreSQL:
``licenses list/show``, ``veu list``, ``shipment show`` (one indexed query per
shipment on each backend), ``check`` (nothing written), each with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "audit-sample.jsonl"


def loaded(run_cli: Any) -> None:
    assert run_cli("rules", "load", "--bundled").exit_code == 0
    assert run_cli("import", str(SAMPLE)).exit_code == 0


def js(run_cli: Any, *args: str, code: int = 0) -> Any:
    r = run_cli(*args, "--json")
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


def test_licenses_list_and_show(run_cli: Any) -> None:
    loaded(run_cli)
    listed = js(run_cli, "licenses", "list", "--as-of", "2025-12-31")
    ids = [r["allocation_id"] for r in listed["licenses"]]
    assert ids == ["G2G-IN-2025", "LIC-MX-ACME-1", "LIC-MX-GLOBEX-1"]
    assert js(run_cli, "licenses", "list", "--holder", "globex", "--as-of",
              "2025-12-31")["licenses"][0]["allocation_id"] == "LIC-MX-GLOBEX-1"
    shown = js(run_cli, "licenses", "show", "LIC-MX-ACME-1", "--as-of", "2025-12-31")
    lic = shown["license"]
    assert lic["amount_tpp"] == 200_000_000 and lic["valid_to"] == "2025-12-31"
    assert lic["shipped_tpp"] == sum(d["tpp"] for d in shown["draws"]
                                     if d["valid"] and not d["voided"])
    assert lic["remaining_tpp"] == lic["amount_tpp"] - lic["shipped_tpp"]
    text = run_cli("licenses", "show", "LIC-MX-ACME-1", "--as-of", "2025-12-31").output
    assert "200,000,000" in text and "Shipments naming LIC-MX-ACME-1" in text
    missing = run_cli("licenses", "show", "NOPE")
    assert missing.exit_code == 1 and "'NOPE'" in missing.output


def test_veu_list(run_cli: Any) -> None:
    loaded(run_cli)
    veus = js(run_cli, "veu", "list", "--as-of", "2025-12-31")["veus"]
    assert [(v["veu_id"], v["cap_tpp"], v["covered_countries"]) for v in veus] == [
        ("VEU-AE-1", 120_000_000, ["AE"])]
    assert "Gulf Compute LLC" in run_cli("veu", "list", "--wide").output


def test_shipment_show_versions_and_counting(run_cli: Any) -> None:
    loaded(run_cli)
    story = js(run_cli, "shipment", "show", "globex", "G-200", "--rule", "ai-diffusion-2025")
    assert [v["type"] for v in story["versions"]] == ["shipment.recorded",
                                                      "shipment.corrected"]
    corrected = story["versions"][1]
    assert corrected["changes"]["quantity"] == [25_000, 24_000]
    assert corrected["reason"] == "packing list recount"
    assert corrected["position"] > story["versions"][0]["position"]
    assert corrected["recorded_at"] is not None
    assert story["counting"]["rule"] == "ai-diffusion-2025"
    assert story["counting"]["flag"] == "unlicensed"
    text = run_cli("shipment", "show", "globex", "G-200").output
    assert "quantity      25,000 → 24,000" in text
    voided = js(run_cli, "shipment", "show", "acme", "S-104")
    assert voided["voided"] and voided["versions"][-1]["type"] == "shipment.voided"
    missing = run_cli("shipment", "show", "acme", "NOPE")
    assert missing.exit_code == 1 and "acme/NOPE" in missing.output


def test_check_writes_nothing_and_exits_by_verdict(run_cli: Any) -> None:
    loaded(run_cli)
    head = js(run_cli, "audit", "head")
    base = ["check", "--exporter", "acme", "--ref", "NEW-1", "--date", "2025-06-30",
            "--consignee", "c-new", "--product", "nvidia-h100-sxm",
            "--rule", "ai-diffusion-2025"]
    fits = js(run_cli, *base, "--to", "IN", "--quantity", "100")
    assert fits["fits"] and fits["cap"]["country"] == "IN"
    breach = js(run_cli, *base, "--to", "MX", "--quantity", "100", code=4)
    assert not breach["fits"] and breach["problems"][0]["kind"] == "over-cap"
    line = json.dumps({"exporter_id": "acme", "shipment_ref": "NEW-2",
                       "ship_date": "2025-06-30", "destination": "IN",
                       "consignee_id": "c-new", "product_id": "nvidia-h100-sxm",
                       "quantity": 100, "authorization": {"kind": "lpp"}})
    from_line = js(run_cli, "check", line, "--rule", "ai-diffusion-2025")
    assert from_line["bucket"] == "lpp" and from_line["lpp"]["used_after_tpp"] == 1_583_200
    assert js(run_cli, "audit", "head") == head           # nothing was written
    bad = run_cli("check", "--exporter", "acme", "--ref", "X", "--date", "2025-06-30",
                  "--to", "MX", "--consignee", "c", "--product", "no-such-chip",
                  "--quantity", "1")
    assert bad.exit_code == 1 and "no-such-chip" in bad.output
    dup = run_cli("check", "--exporter", "acme", "--ref", "S-100", "--date", "2025-03-10",
                  "--to", "MX", "--consignee", "mx-dc-1", "--product", "nvidia-h100-sxm",
                  "--quantity", "5")
    assert dup.exit_code == 1 and "S-100" in dup.output
    usage = run_cli("check", "--exporter", "acme")
    assert usage.exit_code == 2 and "--ref" in usage.output


def test_history_shows_corrections_old_to_new_and_the_first_breach(run_cli: Any) -> None:
    loaded(run_cli)
    h = js(run_cli, "history", "--country", "MX", "--rule", "ai-diffusion-2025")
    corrected = [e for e in h["entries"] if e["kind"] == "shipment.corrected"]
    assert corrected and corrected[0]["changes"]["quantity"] == [25_000, 24_000]
    assert [e["identity"] for e in h["entries"] if e["first_breach"]] == ["globex/G-200"]
    voided = [e for e in h["entries"] if e["voided"]]
    assert [e["identity"] for e in voided] == ["acme/S-104"]
    text = run_cli("history", "--country", "MX", "--rule", "ai-diffusion-2025",
                   "--wide").output
    assert "FIRST BREACH" in text and "25,000 → 24,000" in text


def test_check_under_a_draft_rule_names_the_file(run_cli: Any, tmp_path: Path) -> None:
    import hashlib

    from tests.integration.test_drafts_cli import DRAFT

    loaded(run_cli)
    draft = tmp_path / "draft.yaml"
    draft.write_text(DRAFT)
    base = ["check", "--exporter", "acme", "--ref", "NEW-9", "--date", "2025-06-30",
            "--to", "MX", "--consignee", "c-new", "--product", "nvidia-h100-sxm",
            "--quantity", "100"]
    assert run_cli(*base, "--rule", "ai-diffusion-2025").exit_code == 4  # 790,000,000 cap
    result = js(run_cli, *base, "--rule-file", str(draft))                # doubled cap
    assert result["fits"] and result["cap"]["cap_tpp"] == 1_580_000_000
    assert result["rule_source"] == "--rule-file"
    assert result["draft"]["sha256"] == hashlib.sha256(draft.read_bytes()).hexdigest()
    text = run_cli(*base, "--rule-file", str(draft)).output
    assert "not in the ledger, nothing written" in text and str(draft) in text
    both = run_cli(*base, "--rule", "ai-diffusion-2025", "--rule-file", str(draft))
    assert both.exit_code == 2


def test_check_a_declared_chip_with_and_without_its_die_area(run_cli: Any) -> None:
    """Under the October 2023 rules China needs a license for a controlled chip: a
    declared 2,368 TPP chip fits with an H20-like die area, not without one."""
    loaded(run_cli)
    base = ["check", "--exporter", "acme", "--ref", "NEW-D", "--date", "2024-06-30",
            "--to", "CN", "--consignee", "cn-1", "--product", "acme-asic", "--quantity", "10",
            "--tpp-per-unit", "2368", "--rule", "baseline-2023"]
    fits = js(run_cli, *base, "--die-area", "814")
    assert fits["fits"] and fits["bucket"] == "none" and fits["clause"] == "uncontrolled"
    unknown = js(run_cli, *base, code=4)
    assert not unknown["fits"] and unknown["flag"] == "unlicensed"
    bad = run_cli(*base, "--die-area", "0")
    assert bad.exit_code == 1 and "die_area_mm2" in bad.output and "0" in bad.output
