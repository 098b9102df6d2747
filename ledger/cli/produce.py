"""``ledger produce``: publish a JSON Lines or CSV file of shipments to Kafka, signed;
``ledger keygen``: make an exporter's Ed25519 key pair.

The Kafka client and the ``consumers`` package are imported inside the commands, so
other commands never load them.

CSV files have a header row; the columns are ``type`` (default ``shipment.recorded``),
``shipment_ref``, ``ship_date``, ``destination``, ``consignee_id``, ``product_id``,
``quantity``, ``tpp_per_unit``, ``die_area_mm2`` (mm², a product not in the catalog),
``authorization`` (``none``, ``lpp``,
``license:ALLOCATION_ID``, ``veu:VEU_ID``), ``reason`` (corrections and voids) and
optionally ``exporter_id``; an empty cell means "not given".
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from ledger.cli.kafka_options import kafka_connection_options, pop_connection
from ledger.cli.output import print_json, progress

CSV_COLUMNS = ("type", "exporter_id", "shipment_ref", "ship_date", "destination",
               "consignee_id", "product_id", "quantity", "tpp_per_unit", "die_area_mm2",
               "authorization", "reason")


def _csv_rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, object or error) per CSV row."""
    from ledger.cli.ship import _authorization
    from ledger.errors import LedgerError, ValidationError

    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
    if not reader.fieldnames or unknown:
        raise ValidationError(
            f"{path}: CSV header has unknown columns {unknown} (columns: "
            f"{', '.join(CSV_COLUMNS)})" if unknown else f"{path}: CSV file has no header row",
            field="header", value=unknown or None)
    rows: list[tuple[int, Any]] = []
    for row in reader:
        line = reader.line_num
        data: dict[str, Any] = {k: v.strip() for k, v in row.items()
                                if k is not None and isinstance(v, str) and v.strip()}
        if None in row:
            rows.append((line, ValidationError(f"line {line}: more cells than columns",
                                               field="(row)", value=row[None])))
            continue
        if "authorization" in data:
            try:
                data["authorization"] = _authorization(data["authorization"])
            except LedgerError as e:
                rows.append((line, e))
                continue
        rows.append((line, data))
    return rows


def _jsonl_rows(path: Path) -> list[tuple[int, Any]]:
    from ledger.errors import ValidationError

    rows: list[tuple[int, Any]] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                rows.append((number, ValidationError(f"malformed JSON: {e}", field="(line)")))
                continue
            if not isinstance(data, dict):
                rows.append((number, ValidationError(
                    f"expected a JSON object, got {type(data).__name__}", field="(line)")))
                continue
            rows.append((number, data))
    return rows


def read_shipments(path: Path, exporter: str, fmt: str | None) -> list[Any]:
    """Every shipment command of the file. Raises ValidationError listing every bad
    line (with field and value) when any line is bad."""
    from consumers.producer import shipment_command
    from ledger.errors import LedgerError, ValidationError

    kind = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    rows = _csv_rows(path) if kind == "csv" else _jsonl_rows(path)
    commands: list[Any] = []
    bad: list[str] = []
    for number, item in rows:
        if isinstance(item, LedgerError):
            bad.append(f"line {number}: {item}")
            continue
        try:
            commands.append(shipment_command(item, exporter))
        except LedgerError as e:
            bad.append(f"line {number}: {e}")
    if bad:
        err = ValidationError(f"{path}: {len(bad)} of {len(rows)} lines are bad; nothing was "
                              "published", field="FILE", value=str(path))
        err.details = bad[:50] + ([f"... and {len(bad) - 50} more"] if len(bad) > 50 else [])  # type: ignore[attr-defined]
        raise err
    if not commands:
        raise ValidationError(f"{path}: no shipments in the file", field="FILE", value=str(path))
    return commands


@click.command("produce")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@kafka_connection_options
@click.option("--topic", required=True, help="Topic exporters publish shipments to.")
@click.option("--exporter", required=True, help="Your exporter id (the Kafka message key).")
@click.option("--key-file", required=True, type=click.Path(exists=True, dir_okay=False,
                                                            path_type=Path),
              envvar="LEDGER_EXPORTER_KEY",
              help="Your Ed25519 private key, PEM (see 'ledger keygen').")
@click.option("--key-id", help="Key id in the ledger's keyring [default: the exporter id].")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]),
              help="File format [default: csv for *.csv, else jsonl].")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def produce(file: Path, topic: str, exporter: str, key_file: Path, key_id: str | None,
            fmt: str | None, as_json: bool, **kwargs: Any) -> None:
    """Publish the shipments of FILE (JSON Lines, or CSV with a header row) to Kafka.

    Every line is checked first; if any is bad, each bad line is listed with its
    field and value and nothing is published. Each message is signed with your key,
    keyed by your exporter id, and confirmed by the brokers (acks=all) before this
    command reports success. Republishing a file is harmless: each message's id is
    derived from your exporter id and the line, and the ledger applies a message id
    once (a correction replayed after a later one changes nothing). To send the same
    change again on purpose (back to an earlier value), give the line a new
    "command_id".
    """
    from consumers.producer import ShipmentProducer
    from consumers.signing import load_private_key

    connection = pop_connection(kwargs)
    commands = read_shipments(file, exporter, fmt)
    key = load_private_key(key_file)
    partitions: set[int] = set()
    with ShipmentProducer(connection, topic=topic, exporter_id=exporter, private_key=key,
                          key_id=key_id) as producer:
        bar, task = progress(len(commands), "publishing", quiet=as_json)
        with bar:
            confirmed = producer.publish(commands,
                                         on_delivered=lambda n: bar.advance(task, n))
        partitions = {m.partition for m in confirmed}
    summary = {"published": len(confirmed), "topic": topic, "exporter_id": exporter,
               "partitions": sorted(partitions)}
    if as_json:
        print_json(summary)
    else:
        click.echo(f"{file}: {len(confirmed)} shipments published to {topic} "
                   f"(partition {', '.join(map(str, sorted(partitions)))}), all confirmed")


@click.command("keygen")
@click.option("--exporter", required=True, help="Exporter id the key belongs to.")
@click.option("--key-id", help="Key id [default: the exporter id].")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, mode 0600).")
@click.option("--keyring", type=click.Path(dir_okay=False, path_type=Path),
              help="Also add the public key to this keyring file (created if missing), "
                   "the file 'ledger consume --keyring' reads.")
def keygen(exporter: str, key_id: str | None, out: Path, keyring: Path | None) -> None:
    """Make an exporter's Ed25519 key pair: writes the private key to --out and prints
    the keyring entry (public key) to give to the ledger's operators; with --keyring,
    adds that entry to the keyring file as well.

    \b
    Examples:
      ledger keygen --exporter acme --key-id acme-2025 --out acme.pem
      ledger keygen --exporter acme --key-id acme-2026 --out acme-2026.pem \\
        --keyring deploy/keyring.json        # rotation: both keys stay valid
    """
    import os

    from consumers.signing import generate_private_key, private_key_pem, public_key_text
    from ledger.errors import ValidationError

    if out.exists():
        raise ValidationError(f"--out {str(out)!r} exists; not overwriting a key",
                              field="out", value=str(out))
    kid = key_id or exporter
    entries = _keyring_entries(keyring, kid) if keyring is not None else None
    key = generate_private_key()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    entry = {"key_id": kid, "exporter_id": exporter,
             "public_key": public_key_text(key.public_key())}
    if keyring is not None and entries is not None:
        _write_keyring(keyring, [*entries, entry])
        click.echo(f"{keyring}: added key {kid!r} of exporter {exporter!r} "
                   f"({len(entries) + 1} keys)", err=True)
    click.echo(json.dumps(entry))


def _keyring_entries(path: Path, key_id: str) -> list[dict[str, str]]:
    """The entries of an existing keyring (checked as 'ledger consume' checks it), or
    none for a new file. Refuses a key id already in it."""
    from consumers.signing import Keyring
    from ledger.errors import ValidationError

    if not path.exists():
        return []
    ring = Keyring.load(path)  # raises ConfigurationError naming the file and entry
    if ring.get(key_id) is not None:
        raise ValidationError(f"--keyring {str(path)!r} already has key id {key_id!r}; give "
                              "another --key-id (rotation keeps both)", field="key_id",
                              value=key_id)
    entries: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))["keys"]
    return entries


def _write_keyring(path: Path, entries: list[dict[str, str]]) -> None:
    """Replace the keyring file in one step (a reader never sees half a file)."""
    import os
    import tempfile

    text = json.dumps({"keys": entries}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # public keys: the consumer's user must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
