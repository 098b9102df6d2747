"""The CLI against a real store (SQLite file and PostgreSQL): import, quota as of,
known at, counterfactual rule, idempotent re-import, refusals with exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

H100 = 15_832


def line(**fields: Any) -> str:
    return json.dumps(fields)


def ship(ref: str, day: str, dest: str, qty: int, auth: dict | None = None,
         exporter: str = "acme", consignee: str = "c1") -> str:
    return line(type="shipment.recorded", exporter_id=exporter, shipment_ref=ref,
                ship_date=day, destination=dest, consignee_id=consignee,
                product_id="nvidia-h100-sxm", quantity=qty,
                authorization=auth or {"kind": "none"})


def write(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def quota(run_cli: Any, *args: str) -> dict:
    result = run_cli("quota", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_import_then_quota_as_of_known_at_and_counterfactual(run_cli: Any, tmp_path: Path
                                                              ) -> None:
    assert run_cli("rules", "load", "--bundled").exit_code == 0
    first = write(tmp_path, "a.jsonl", [
        line(type="allocation.granted", allocation_id="L1", country="MX",
             tpp_amount=100_000_000, valid_from="2025-01-15", valid_to="2025-12-31",
             holder="acme", reference="BIS D1"),
        ship("S1", "2025-02-01", "MX", 30_000),
        ship("S2", "2025-03-01", "MX", 1_000, {"kind": "license", "ref": "L1"}),
        ship("S3", "2025-03-05", "FR", 5_000),
    ])
    result = run_cli("import", first)
    assert result.exit_code == 0, result.output
    assert "4 events appended" in result.output
    head = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30",
                 "--rule", "ai-diffusion-2025")["computed_at_position"]

    late = write(tmp_path, "b.jsonl", [
        ship("S4", "2025-06-20", "MX", 20_000),  # reported late
        line(type="shipment.corrected", exporter_id="acme", shipment_ref="S1",
             quantity=31_000, reason="recount"),
    ])
    assert run_cli("import", late).exit_code == 0

    now = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30", "--rule",
                "ai-diffusion-2025")
    assert now["rule"] == "ai-diffusion-2025" and now["tier"] == 2
    assert now["cap_tpp"] == 790_000_000
    assert now["committed_tpp"] == 100_000_000 + 51_000 * H100
    assert now["remaining_tpp"] == now["cap_tpp"] - now["committed_tpp"]
    assert now["status"] == "over-cap"
    assert now["first_breach"]["shipment_ref"] == "S4"
    assert now["first_breach"]["exporter_id"] == "acme"
    assert now["first_breach"]["type"] == "shipment"
    assert now["flagged"]["unlicensed"] == {"count": 2, "tpp": 51_000 * H100}

    before = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30", "--rule",
                   "ai-diffusion-2025", "--known-at", str(head))
    assert before["known_at"] == head
    assert before["committed_tpp"] == 100_000_000 + 30_000 * H100
    assert before["status"] == "within-cap" and before["first_breach"] is None

    in_force = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30")
    assert in_force["rule"] == "diffusion-nonenforcement-2025"
    assert in_force["cap_tpp"] is None and in_force["remaining_tpp"] is None
    assert in_force["status"] == "no-cap"

    feb = quota(run_cli, "--country", "MX", "--as-of", "2025-02-15")
    assert feb["rule"] == "baseline-2023" and feb["tier"] is None

    fr = quota(run_cli, "--country", "FR", "--as-of", "2025-06-30", "--rule",
               "ai-diffusion-2025")
    assert (fr["tier"], fr["cap_tpp"], fr["status"]) == (1, None, "no-cap")

    table = run_cli("quota", "--all", "--as-of", "2025-06-30", "--rule", "ai-diffusion-2025")
    assert table.exit_code == 0 and "MX" in table.output and "FR" in table.output
    assert "over-cap" in table.output

    human = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--rule",
                    "ai-diffusion-2025")
    assert "H100e" in human.output and "first breach" in human.output


def test_known_at_an_iso_timestamp(run_cli: Any, tmp_path: Path) -> None:
    run_cli("rules", "load", "--bundled")
    assert run_cli("import", write(tmp_path, "a.jsonl", [ship("S1", "2025-02-01", "MX", 10)])
                   ).exit_code == 0
    # nothing was recorded then: refused, naming the first recorded time (it used to
    # answer an empty ledger's "no cap" at position 0)
    early = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30",
                    "--known-at", "2000-01-01T00:00:00Z")
    assert early.exit_code == 1 and "before the first recorded event" in early.output
    now = dt.datetime.now(dt.UTC).isoformat()
    later = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30", "--rule",
                  "ai-diffusion-2025", "--known-at", now)
    assert later["committed_tpp"] == 10 * H100
    # the future, or a position past the head, could still change: refused
    for future in ("2100-01-01T00:00:00+00:00", str(later["computed_at_position"] + 1), "²"):
        refused = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30",
                          "--known-at", future)
        assert refused.exit_code == 1 and future in refused.output
        assert "Traceback" not in refused.output


def test_reimport_is_a_no_op_and_conflicting_duplicate_is_refused(run_cli: Any,
                                                                   tmp_path: Path) -> None:
    run_cli("rules", "load", "--bundled")
    path = write(tmp_path, "a.jsonl", [ship("S1", "2025-02-01", "MX", 10),
                                       ship("S2", "2025-02-02", "MX", 10)])
    assert run_cli("import", path).exit_code == 0
    again = run_cli("import", path, "--json")
    assert again.exit_code == 0
    assert json.loads(again.output) == {"appended": 0, "positions": None, "duplicates": 2,
                                        "already_applied": True, "refused": []}
    plain = run_cli("import", path)
    assert plain.exit_code == 0 and "already applied" in plain.output
    conflict = write(tmp_path, "b.jsonl", [ship("S3", "2025-02-03", "MX", 1),
                                           ship("S1", "2025-02-01", "MX", 11)])
    result = run_cli("import", conflict)
    assert result.exit_code == 1
    assert "line 2" in result.output and "acme/S1" in result.output
    assert "quantity: 10 then 11" in result.output
    # nothing of the refused file was appended (S3 neither)
    mx = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30", "--rule",
               "ai-diffusion-2025")
    assert mx["committed_tpp"] == 20 * H100


def test_malformed_lines_are_all_reported_and_nothing_is_appended(run_cli: Any,
                                                                   tmp_path: Path) -> None:
    run_cli("rules", "load", "--bundled")
    path = write(tmp_path, "bad.jsonl", [
        ship("S1", "2025-02-01", "MX", 10),
        '{"type": "shipment.recorded", "exporter_id": ',
        ship("S2", "2025-02-01", "XX", 10),
        ship("S3", "2025-02-01", "MX", -4),
        "",
        ship("S4", "2025-02-01", "MX", 4),
    ])
    result = run_cli("import", path)
    assert result.exit_code == 1
    out = result.output
    assert "line 2: malformed JSON" in out
    assert "line 3:" in out and "destination" in out and "'XX'" in out
    assert "line 4:" in out and "quantity" in out and "-4" in out
    assert "3 of 5 commands refused; nothing appended" in out
    mx = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30", "--rule",
               "ai-diffusion-2025")
    assert mx["committed_tpp"] == 0

    skipped = run_cli("import", path, "--skip-bad")
    assert skipped.exit_code == 3
    assert "2 events appended" in skipped.output
    mx = quota(run_cli, "--country", "MX", "--as-of", "2025-06-30", "--rule",
               "ai-diffusion-2025")
    assert mx["committed_tpp"] == 14 * H100


def test_ship_record_correct_void(run_cli: Any) -> None:
    run_cli("rules", "load", "--bundled")
    args = ["ship", "record", "--exporter", "acme", "--ref", "S1", "--date", "2025-02-01",
            "--to", "MX", "--consignee", "c1", "--product", "nvidia-h100-sxm",
            "--quantity", "10", "--auth", "lpp"]
    assert run_cli(*args).exit_code == 0
    again = run_cli(*args)
    assert again.exit_code == 0 and "nothing appended" in again.output
    bad = run_cli(*args[:-1], "license")
    assert bad.exit_code == 2 and "'--auth'" in bad.output and "'license'" in bad.output
    assert run_cli("ship", "correct", "--exporter", "acme", "--ref", "S1", "--quantity",
                   "20", "--reason", "recount").exit_code == 0
    assert run_cli("ship", "void", "--exporter", "acme", "--ref", "S1", "--reason",
                   "cancelled").exit_code == 0
    refused = run_cli("ship", "correct", "--exporter", "acme", "--ref", "S1", "--quantity",
                      "30", "--reason", "again")
    assert refused.exit_code == 1 and "voided" in refused.output


def test_unknown_rule_and_bad_options_fail_cleanly(run_cli: Any) -> None:
    run_cli("rules", "load", "--bundled")
    r = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--rule", "nope")
    assert r.exit_code == 1 and "'nope'" in r.output and "Traceback" not in r.output
    r = run_cli("quota", "--country", "ZZ", "--as-of", "2025-06-30")
    assert r.exit_code == 2 and "'ZZ'" in r.output
    r = run_cli("quota", "--country", "MX", "--as-of", "30/06/2025")
    assert r.exit_code == 2 and "30/06/2025" in r.output
    r = run_cli("quota", "--as-of", "2025-06-30")
    assert r.exit_code == 2 and "--country" in r.output
    r = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--known-at", "yesterday")
    assert r.exit_code == 1 and "'yesterday'" in r.output


def test_rules_list_show_and_reload(run_cli: Any, tmp_path: Path) -> None:
    assert "ai-diffusion-2025: loaded" in run_cli("rules", "load", "--bundled").output
    assert "already loaded" in run_cli("rules", "load", "--bundled").output
    listed = run_cli("rules", "list", "--json")
    ids = [r["id"] for r in json.loads(listed.output)]
    assert ids == ["baseline-2023", "ai-diffusion-2025", "h20-license-2025",
                   "diffusion-nonenforcement-2025", "h200-china-2026"]
    shown = run_cli("rules", "show", "ai-diffusion-2025")
    assert "790,000,000" in shown.output and "90 FR 4544" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: my-rule\ntitle: x\n")
    r = run_cli("rules", "load", str(bad))
    assert r.exit_code == 1 and "bad.yaml" in r.output and "field" in r.output


DECLARED = ["ship", "record", "--exporter", "acme", "--ref", "D1", "--date", "2024-06-01",
            "--to", "CN", "--consignee", "c1", "--product", "acme-asic", "--quantity", "10",
            "--tpp-per-unit", "2368"]


def test_ship_record_with_a_declared_die_area(run_cli: Any) -> None:
    """A declared H20-like chip (2,368 TPP on 814 mm²) is not controlled in China under
    the October 2023 rules; without the die area it is (unknown density); a correction
    declaring it changes the answer."""
    run_cli("rules", "load", "--bundled")
    assert run_cli(*DECLARED, "--die-area", "814").exit_code == 0
    assert run_cli(*DECLARED[:5], "D2", *DECLARED[6:]).exit_code == 0
    cn = quota(run_cli, "--country", "CN", "--as-of", "2024-12-31", "--rule", "baseline-2023")
    assert cn["flagged"]["unlicensed"]["count"] == 1
    shown = run_cli("shipment", "show", "acme", "D1", "--rule", "baseline-2023", "--json")
    story = json.loads(shown.output)
    assert story["current"]["die_area_mm2"] == "814"
    assert "declared die area 814 mm²" in json.dumps(story["counting"], ensure_ascii=False)
    text = run_cli("shipment", "show", "acme", "D1", "--rule", "baseline-2023").output
    assert "die_area_mm2" in text and "814" in text
    assert run_cli("ship", "correct", "--exporter", "acme", "--ref", "D2", "--die-area",
                   "814.5", "--reason", "datasheet").exit_code == 0
    cn = quota(run_cli, "--country", "CN", "--as-of", "2024-12-31", "--rule", "baseline-2023")
    assert "unlicensed" not in cn["flagged"]


def test_bad_die_areas_on_the_cli_and_in_an_import_name_field_and_value(
        run_cli: Any, tmp_path: Path) -> None:
    run_cli("rules", "load", "--bundled")
    for value, says in [("0", "greater than 0"), ("-5", "greater than 0"),
                        ("100001", "less than or equal to 100000"),
                        ("814.0001", "3 decimal places")]:
        r = run_cli(*DECLARED, "--die-area", value)
        assert r.exit_code == 1, (value, r.output)
        assert "die_area_mm2" in r.output and value in r.output and says in r.output
    r = run_cli(*DECLARED, "--die-area", "lots")
    assert r.exit_code == 2 and "'--die-area'" in r.output and "'lots'" in r.output
    r = run_cli(*DECLARED[:13], "nvidia-h20", *DECLARED[14:16], "--die-area", "814")
    assert r.exit_code == 1
    assert "die_area_mm2 814" in r.output and "'nvidia-h20'" in r.output
    path = write(tmp_path, "die.jsonl", [
        line(type="shipment.recorded", exporter_id="acme", shipment_ref="I1",
             ship_date="2024-06-01", destination="CN", consignee_id="c1",
             product_id="nvidia-h20", quantity=1, die_area_mm2=814,
             authorization={"kind": "none"}),
        line(type="shipment.recorded", exporter_id="acme", shipment_ref="I2",
             ship_date="2024-06-01", destination="CN", consignee_id="c1",
             product_id="acme-asic", quantity=1, tpp_per_unit=2368, die_area_mm2="814",
             authorization={"kind": "none"}),
    ])
    r = run_cli("import", path)
    assert r.exit_code == 1
    assert "line 1:" in r.output and "die_area_mm2 814" in r.output
    assert "line 2:" in r.output and "die_area_mm2" in r.output and "'814'" in r.output
    assert "nothing appended" in r.output
