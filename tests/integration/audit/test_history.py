"""``ledger history``: effective-date order, running committed, late arrivals, voids."""

from __future__ import annotations

import json
from typing import Any


def test_history_of_mexico(sample_ledger: Any, run_cli: Any) -> None:
    result = run_cli("history", "--country", "MX", "--rule", "ai-diffusion-2025", "--json")
    assert result.exit_code == 0, result.output
    h = json.loads(result.output)
    assert h["rule"] == "ai-diffusion-2025" and h["computed_at_position"] == 27
    entries = h["entries"]
    dates = [e["date"] for e in entries]
    assert dates == sorted(dates)
    # running committed is the sum of the deltas and ends at what ledger quota says
    running = 0
    for e in entries:
        running += e["committed_delta"]
        assert e["committed_tpp"] == running
    quota = json.loads(run_cli("quota", "--country", "MX", "--as-of", h["to_date"],
                               "--rule", "ai-diffusion-2025", "--json").output)
    assert entries[-1]["committed_tpp"] == quota["committed_tpp"]
    by_id = {(e["identity"], e["kind"]): e for e in entries}
    # S-099 (2025-02-15) was recorded after G-202 (2025-07-15): late
    late = by_id[("acme/S-099", "shipment.recorded")]
    assert late["late"] is True and late["late_after"] == 16
    assert by_id[("acme/S-100", "shipment.recorded")]["late"] is False
    # the corrected shipment counts with its corrected quantity and says so
    g200 = by_id[("globex/G-200", "shipment.recorded")]
    assert g200["tpp"] == 24_000 * 15_832 and "corrected 1x" in g200["detail"]
    # the voided one is listed, counting for nothing
    void = by_id[("acme/S-104", "shipment.voided")]
    assert void["committed_delta"] == 0
    # the first breach is visible: committed passes the cap at G-200
    first_over = next(e for e in entries if e["committed_tpp"] > e["cap_tpp"])
    assert first_over["identity"] == "globex/G-200"


def test_history_window_and_text(sample_ledger: Any, run_cli: Any) -> None:
    result = run_cli("history", "--country", "MX", "--from", "2025-06-01", "--to",
                     "2025-06-30", "--rule", "ai-diffusion-2025", "--json")
    entries = json.loads(result.output)["entries"]
    assert {e["date"][:7] for e in entries} == {"2025-06"}
    # totals carried in from before the window
    assert entries[0]["committed_tpp"] > entries[0]["committed_delta"]
    text = run_cli("history", "--country", "MX", "--rule", "ai-diffusion-2025").output
    assert "late (after 16)" in text
    assert "computed at recorded position 27; rerun with --known-at 27" in text


def test_history_bad_window(sample_ledger: Any, run_cli: Any) -> None:
    result = run_cli("history", "--country", "MX", "--from", "2025-07-01", "--to", "2025-06-01")
    assert result.exit_code == 1
    assert "--from 2025-07-01 is after --to 2025-06-01" in result.output
