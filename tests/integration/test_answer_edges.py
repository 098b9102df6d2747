"""Answers that must not mislead (issue 10, defects 8 and 9), on both stores: the
advice after tampering, the LATE flag of ``history``, the read models' lag counted in
events, and positions outside a revision's cap period."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SHIP = {"type": "shipment.recorded", "exporter_id": "acme", "consignee_id": "c1",
        "product_id": "nvidia-h100-sxm", "authorization": {"kind": "none"}}


def shipment(ref: str, day: str, dest: str = "MX", qty: int = 100) -> dict[str, Any]:
    return {**SHIP, "shipment_ref": ref, "ship_date": day, "destination": dest,
            "quantity": qty}


def load(run_cli: Any, tmp_path: Path, *lines: dict[str, Any]) -> None:
    path = tmp_path / f"batch-{len(list(tmp_path.glob('batch-*')))}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_cli("import", str(path))
    assert result.exit_code == 0, result.output


# --- defect 8: after tampering, restore, do not rebuild ------------------------------------


def test_after_tampering_the_advice_is_to_restore_and_verify_not_to_rebuild(
        run_cli: Any, db_url: str, tmp_path: Path) -> None:
    from tests.integration.audit.conftest import RawDB

    run_cli("rules", "load", "--bundled")
    load(run_cli, tmp_path, shipment("S1", "2025-03-01", "PL"))
    assert run_cli("quota", "--country", "PL", "--as-of", "2025-06-30").exit_code == 0
    raw = RawDB(db_url)
    position = raw.run("SELECT MAX({pos}) FROM stored_events")[0][0]
    originator, version, topic, state = raw.event(position)
    raw.set_event(position, (originator, version, topic,
                             bytes(state).replace(b'"quantity":100', b'"quantity":1')))
    text = run_cli("audit", "verify", "--read-model")
    assert text.exit_code == 5
    advice = text.output.split("what to do:")[1]
    assert "do NOT run 'ledger projections rebuild'" in advice
    assert "audit import" in advice and "--expect-head" in advice
    data = json.loads(run_cli("audit", "verify", "--read-model", "--json").output)
    assert "audit import" in data["advice"] and "do NOT" in data["advice"]


def test_a_wrong_read_model_over_an_intact_log_is_rebuilt(run_cli: Any, db_url: str,
                                                          tmp_path: Path) -> None:
    from tests.integration.audit.conftest import RawDB

    run_cli("rules", "load", "--bundled")
    load(run_cli, tmp_path, shipment("S1", "2025-03-01", "PL"))
    assert run_cli("quota", "--country", "PL", "--as-of", "2025-06-30").exit_code == 0
    RawDB(db_url).run("UPDATE rm_shipment_versions SET quantity = 1")
    result = run_cli("audit", "verify", "--read-model")
    assert result.exit_code == 5
    assert "log verified intact" in result.output
    assert "rebuild them from it with 'ledger projections rebuild'" in result.output


# --- defect 8: LATE depends on the ledger only -----------------------------------------


def test_the_late_flag_does_not_depend_on_from_and_to(run_cli: Any, tmp_path: Path) -> None:
    run_cli("rules", "load", "--bundled")
    load(run_cli, tmp_path, shipment("APR", "2025-04-10"))
    load(run_cli, tmp_path, shipment("FEB", "2025-02-10"))   # backdated: recorded after APR
    load(run_cli, tmp_path, shipment("MAY", "2025-05-10"))

    def late_flags(*window: str) -> dict[str, Any]:
        result = run_cli("history", "--country", "MX", "--rule", "ai-diffusion-2025",
                         *window, "--json")
        assert result.exit_code == 0, result.output
        return {e["identity"]: (e["late"], e["late_after"])
                for e in json.loads(result.output)["entries"]}

    whole = late_flags()
    assert whole["acme/FEB"][0] is True and whole["acme/APR"][0] is False
    assert whole["acme/MAY"][0] is False
    # a window that ends before APR used to hide the reason FEB was late
    for window in (("--to", "2025-03-01"), ("--from", "2025-02-01", "--to", "2025-02-28"),
                   ("--from", "2025-04-01"), ("--to", "2025-12-31")):
        flags = late_flags(*window)
        assert flags and all(flags[k] == whole[k] for k in flags), (window, flags)
    assert late_flags("--to", "2025-03-01")["acme/FEB"] == whole["acme/FEB"]


# --- defect 8: projections status counts events, not positions -----------------------------


@pytest.mark.postgres
def test_status_counts_events_when_positions_have_gaps(run_cli: Any, db_url: str,
                                                       tmp_path: Path) -> None:
    if not db_url.startswith("postgresql://"):
        pytest.skip("SQLite positions are rowids: no gaps")
    import psycopg

    run_cli("rules", "load", "--bundled")
    assert run_cli("projections", "catch-up").exit_code == 0
    # a rolled-back insert (a crash, a lost race) leaves sequence numbers unused
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT nextval(pg_get_serial_sequence('ledger_events', "
                     "'notification_id')) FROM generate_series(1, 7)")
    load(run_cli, tmp_path, shipment("S1", "2025-02-01"), shipment("S2", "2025-02-02"))
    status = json.loads(run_cli("projections", "status", "--json").output)
    assert status["head"] - status["position"] == 9
    assert status["behind"] == 2


# --- defect 9: a date outside the cap period -------------------------------------------


@pytest.mark.parametrize("as_of", ["2024-06-30", "2028-06-30"])
def test_a_position_outside_the_cap_period_says_so(run_cli: Any, tmp_path: Path,
                                                   as_of: str) -> None:
    run_cli("rules", "load", "--bundled")
    # 60,000 H100s = 949,920,000 TPP: over the 790,000,000 cap inside the period
    load(run_cli, tmp_path, shipment("BIG", "2025-03-01", qty=60_000))
    inside = json.loads(run_cli("quota", "--country", "MX", "--as-of", "2025-06-30",
                                "--rule", "ai-diffusion-2025", "--json").output)
    assert inside["status"] == "over-cap" and inside["cap_tpp"] == 790_000_000
    assert inside["cap_period"] == {"start": "2025-01-01", "end": "2027-12-31"}

    outside = json.loads(run_cli("quota", "--country", "MX", "--as-of", as_of, "--rule",
                                 "ai-diffusion-2025", "--json").output)
    assert outside["status"] == "outside-cap-period"
    assert outside["cap_period"] == {"start": "2025-01-01", "end": "2027-12-31"}
    assert outside["cap_tpp"] is None and outside["remaining_tpp"] is None
    table = run_cli("quota", "--all", "--tier", "2", "--as-of", as_of, "--rule",
                    "ai-diffusion-2025")
    assert table.exit_code == 0
    row = next(r for r in table.output.splitlines() if r.strip("│ ").startswith("MX"))
    assert "outside-cap-period (2025-01-01..2027-12-31)" in row
    one = run_cli("quota", "--country", "MX", "--as-of", as_of, "--rule", "ai-diffusion-2025")
    assert "outside-cap-period (2025-01-01..2027-12-31)" in one.output
    assert "over-cap" not in one.output and "790,000,000 TPP runs 2025-01-01" in one.output
    rows = json.loads(run_cli("quota", "--all", "--as-of", as_of, "--rule",
                              "ai-diffusion-2025", "--json").output)
    assert next(p for p in rows if p["country"] == "MX")["status"] == "outside-cap-period"
