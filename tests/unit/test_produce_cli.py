"""``ledger produce`` / ``ledger keygen`` / ``ledger consume`` input handling, without a
broker: CSV and JSON Lines reading, every bad line listed, errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import main
from ledger.cli.produce import read_shipments
from ledger.commands import CorrectShipment, RecordShipment, VoidShipment
from ledger.errors import ValidationError

CSV = """type,shipment_ref,ship_date,destination,consignee_id,product_id,quantity,tpp_per_unit,authorization,reason
,R-1,2025-06-02,MX,c-1,nvidia-h100-sxm,10,,none,
shipment.recorded,R-2,2025-06-03,BR,c-2,acme-x1,5,5000,license:LIC-7,
shipment.corrected,R-1,,,,,12,,,miscounted
shipment.voided,R-2,,,,,,,,cancelled
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_csv_rows_become_shipment_commands(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(CSV)
    commands = read_shipments(path, "acme", None)
    assert [type(c) for c in commands] == [RecordShipment, RecordShipment, CorrectShipment,
                                           VoidShipment]
    assert commands[1].authorization.ref == "LIC-7" and commands[1].tpp_per_unit == 5000
    assert commands[2].quantity == 12 and all(c.exporter_id == "acme" for c in commands)


def test_every_bad_line_is_listed_with_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    good = {"shipment_ref": "R-1", "ship_date": "2025-06-02", "destination": "MX",
            "consignee_id": "c", "product_id": "nvidia-h100-sxm", "quantity": 1,
            "authorization": {"kind": "none"}}
    path.write_text("\n".join([
        json.dumps(good),
        "{oops",
        json.dumps({**good, "destination": "XX"}),
        json.dumps({**good, "exporter_id": "globex"}),
        json.dumps({"type": "veu.granted", "veu_id": "V"}),
    ]) + "\n")
    with pytest.raises(ValidationError) as info:
        read_shipments(path, "acme", None)
    details = info.value.details  # type: ignore[attr-defined]
    assert [d.split(":")[0] for d in details] == ["line 2", "line 3", "line 4", "line 5"]
    assert "'XX'" in details[1] and "'globex'" in details[2] and "veu.granted" in details[3]


def test_cli_errors_are_one_line_and_exit_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("shipment_ref,colour\nR-1,red\n")
    key = tmp_path / "acme.pem"
    assert run("keygen", "--exporter", "acme", "--out", str(key)).exit_code == 0
    result = run("produce", str(bad), "--bootstrap", "127.0.0.1:9", "--topic", "t",
                 "--exporter", "acme", "--key-file", str(key))
    assert result.exit_code == 1
    assert "unknown columns ['colour']" in result.output and "Traceback" not in result.output
    result = run("produce", str(bad), "--bootstrap", "nonsense", "--topic", "t",
                 "--exporter", "acme", "--key-file", str(key))
    assert result.exit_code == 1 and "must be HOST:PORT" in result.output
    # keygen never overwrites a key
    again = run("keygen", "--exporter", "acme", "--out", str(key))
    assert again.exit_code == 1 and "not overwriting" in again.output


def test_consume_rejects_a_bad_keyring(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    ring.write_text(json.dumps({"keys": [{"key_id": "a", "exporter_id": "acme",
                                          "public_key": "not base64!"}]}))
    result = run("--db", str(tmp_path / "l.db"), "consume", "--bootstrap", "127.0.0.1:9",
                 "--topic", "t", "--group", "g", "--keyring", str(ring))
    assert result.exit_code == 1
    assert "public_key must be the base64" in result.output and "Traceback" not in result.output


def test_query_commands_do_not_import_kafka() -> None:
    import subprocess
    import sys

    code = ("import sys, ledger.cli.quota, ledger.cli.produce, ledger.cli.consume; "
            "print('kafka' in sys.modules or 'consumers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_tls_and_sasl_settings_pass_through(tmp_path: Path) -> None:
    from consumers.settings import Connection
    from ledger.cli.kafka_options import pop_connection

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    kwargs: dict[str, Any] = {"bootstrap": "k1:9093,k2:9093", "security_protocol": "SASL_SSL",
                              "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "ledger",
                              "sasl_password": "s3cret", "ssl_cafile": str(ca),
                              "ssl_certfile": None, "ssl_keyfile": None, "other": 1}
    connection = pop_connection(kwargs)
    assert kwargs == {"other": 1}
    assert connection.kafka_config() == {
        "bootstrap_servers": ["k1:9093", "k2:9093"], "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "ledger",
        "sasl_plain_password": "s3cret", "ssl_cafile": str(ca)}
    assert Connection("k:1").kafka_config() == {"bootstrap_servers": ["k:1"]}


def test_kafka_options_are_read_from_the_environment(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    ring.write_text('{"keys": []}')
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "l.db"), "consume", "--topic", "t", "--group", "g",
               "--keyring", str(ring)],
        env={"KAFKA_BOOTSTRAP_SERVERS": "k:1", "KAFKA_SECURITY_PROTOCOL": "TLS-PLEASE"})
    assert result.exit_code == 2
    assert "'TLS-PLEASE' is not one of" in result.output


def test_a_csv_die_area_becomes_an_exact_number_and_a_bad_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("shipment_ref,ship_date,destination,consignee_id,product_id,quantity,"
                    "tpp_per_unit,die_area_mm2,authorization\n"
                    "R-1,2025-06-02,MX,c-1,acme-x1,10,2368,814.5,none\n"
                    "R-2,2025-06-02,MX,c-1,acme-x1,10,2368,-3,none\n"
                    "R-3,2025-06-02,MX,c-1,acme-x1,10,2368,lots,none\n")
    with pytest.raises(ValidationError) as info:
        read_shipments(path, "acme", None)
    details = info.value.details  # type: ignore[attr-defined]
    assert [d.split(":")[0] for d in details] == ["line 3", "line 4"]
    assert all("die_area_mm2" in d for d in details)
    assert "-3" in details[0] and "'lots'" in details[1]
    path.write_text(path.read_text().splitlines()[0] + "\n"
                    "R-1,2025-06-02,MX,c-1,acme-x1,10,2368,814.5,none\n")
    (command,) = read_shipments(path, "acme", None)
    assert str(command.die_area_mm2) == "814.5"  # type: ignore[union-attr]
    assert '"die_area_mm2":814.5' in command.model_dump_json()
