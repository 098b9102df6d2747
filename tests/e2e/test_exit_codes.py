"""The exit-code table (``ledger/cli/exitcodes.py``, README "Exit codes") as a user
meets it: each code from a real command line, JSON errors on stderr under --json,
``ledger ... | head`` ending quietly, and --db after a command named as global."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger.cli import exitcodes
from tests.e2e.conftest import ledger_process


def test_usage_errors_exit_2(run: Any) -> None:
    both = run("quota", "--as-of", "2025-06-30")
    assert both.returncode == exitcodes.USAGE
    assert "give exactly one of --country CC or --all" in both.stderr
    auth = run("ship", "record", "--exporter", "a", "--ref", "r", "--date", "2025-06-01",
               "--to", "MX", "--consignee", "c", "--product", "nvidia-h100-sxm",
               "--quantity", "1", "--auth", "foo")
    assert auth.returncode == exitcodes.USAGE
    assert "'--auth'" in auth.stderr and "'foo'" in auth.stderr
    assert "Traceback" not in auth.stderr + both.stderr


def test_db_after_the_command_is_named_a_global_option(run: Any, tmp_path: Path) -> None:
    late = run("quota", "--db", str(tmp_path / "x.db"), "--country", "MX", "--as-of",
               "2025-06-30", db=None)
    assert late.returncode == exitcodes.USAGE
    assert "--db is a global option" in late.stderr
    assert "ledger --db PATH quota" in late.stderr


def test_refused_input_exits_1_and_partial_import_3(run: Any, tmp_path: Path) -> None:
    unknown = run("quota", "--country", "MX", "--as-of", "2025-06-30", "--rule", "nope")
    assert unknown.returncode == exitcodes.REFUSED and "'nope'" in unknown.stderr
    db = tmp_path / "p.db"
    assert run("rules", "load", "--bundled", db=db).returncode == 0
    mixed = tmp_path / "mixed.jsonl"
    good = {"type": "allocation.granted", "allocation_id": "A1", "country": "MX",
            "tpp_amount": 1000, "valid_from": "2025-01-01"}
    mixed.write_text(json.dumps(good) + "\n" + '{"type": "allocation.granted"}\n')
    assert run("import", str(mixed), db=db).returncode == exitcodes.REFUSED
    assert run("import", str(mixed), "--skip-bad", db=db).returncode == \
        exitcodes.PARTIAL_IMPORT


CHECK = ("check", "--exporter", "acme", "--ref", "NEW-1", "--date", "2025-06-30",
         "--consignee", "c-new", "--product", "nvidia-h100-sxm", "--rule",
         "ai-diffusion-2025")


def test_check_fits_0_would_breach_4(run: Any) -> None:
    fits = run(*CHECK, "--to", "IN", "--quantity", "10")
    assert fits.returncode == exitcodes.OK, fits.stderr
    assert "FITS" in fits.stdout
    breach = run(*CHECK, "--to", "MX", "--quantity", "10")
    assert breach.returncode == exitcodes.CHECK_FAILED, breach.stderr
    assert "WOULD BREACH" in breach.stdout and "over-cap" in breach.stdout
    prohibited = run(*CHECK, "--to", "CN", "--quantity", "1")
    assert prohibited.returncode == exitcodes.CHECK_FAILED
    assert "prohibited" in prohibited.stdout


def test_ship_record_with_an_unknown_license_records_and_warns(run: Any, small_ledger: Path,
                                                               tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "w.db"
    shutil.copy(small_ledger, db)
    done = run("ship", "record", "--exporter", "acme", "--ref", "W-1", "--date",
               "2025-06-02", "--to", "MX", "--consignee", "c", "--product",
               "nvidia-h100-sxm", "--quantity", "1", "--auth", "license:UNKNOWN", db=db)
    assert done.returncode == exitcodes.OK, done.stderr
    assert "acme/W-1: shipment.recorded at position 28" in done.stdout
    assert "warning: recorded, but allocation 'UNKNOWN' is not known" in done.stderr
    assert "license-invalid" in done.stderr
    counted = run("shipment", "show", "acme", "W-1", "--rule", "ai-diffusion-2025",
                  "--json", db=db)
    assert json.loads(counted.stdout)["counting"]["flag"] == "license-invalid"


def test_tampering_exits_5(run: Any, small_ledger: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    db = tmp_path / "t.db"
    shutil.copy(small_ledger, db)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid = 5")
    broken = run("audit", "verify", db=db)
    assert broken.returncode == exitcodes.TAMPERED, broken.stdout + broken.stderr


def test_json_errors_are_one_object_on_stderr(run: Any) -> None:
    refused = run("quota", "--country", "MX", "--as-of", "2025-06-30", "--rule", "nope",
                  "--json")
    assert refused.stdout == ""
    error = json.loads(refused.stderr)
    assert error["exit_code"] == exitcodes.REFUSED == refused.returncode
    assert error["error"]["code"] == "unknown-rule" and "'nope'" in error["error"]["message"]
    usage = run("quota", "--country", "ZZ", "--as-of", "2025-06-30", "--json")
    error = json.loads(usage.stderr)
    assert usage.returncode == exitcodes.USAGE == error["exit_code"]
    assert error["error"]["code"] == "usage" and error["error"]["field"] == "country"
    assert "'ZZ'" in error["error"]["message"]


def test_piping_into_head_ends_quietly(small_ledger: Path) -> None:
    # an export far larger than a pipe's buffer, read one line
    cmd = (f"{sys.executable} -m ledger --db {small_ledger} audit export --format jsonl "
           "| head -c 100 >/dev/null; echo ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0", done.stdout
    assert done.stderr == "", done.stderr


def test_a_table_into_a_closed_pipe_ends_quietly(small_ledger: Path) -> None:
    # `true` exits without reading: the first write of the table meets a closed pipe
    cmd = (f"{sys.executable} -m ledger --db {small_ledger} history --country MX --rule "
           "ai-diffusion-2025 --wide | true; echo ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0", done.stdout
    assert done.stderr == "", done.stderr


def test_the_readme_lists_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    for code, _meaning in exitcodes.TABLE:
        assert f"| `{code}` |" in section, code


def test_ledger_process_helper_runs() -> None:
    assert ledger_process("--help").returncode == 0
