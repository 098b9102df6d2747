"""Command builders shared by the storage suite (imported by its test modules)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def shipment(ref: str, *, dest: str = "MX", quantity: int = 10, day: str = "2025-06-01",
             exporter: str = "EXP01", auth: dict[str, Any] | None = None,
             consignee: str = "C1") -> Any:
    from ledger.commands import parse_command

    return parse_command({
        "type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
        "ship_date": day, "destination": dest, "consignee_id": consignee,
        "product_id": "nvidia-h100-sxm", "quantity": quantity,
        "authorization": auth or {"kind": "none"},
    })


@contextmanager
def imported_bench_ledger(db_url: str, folder: Path, size: int) -> Iterator[Any]:
    """A ledger holding ``bench.generate``'s seeded ledger of ``size`` shipments, its
    read model caught up; closed after."""
    from bench.generate import write_jsonl
    from ledger.application import Ledger
    from ledger.cli.imports import import_file
    from projections.readmodel import ReadModel

    path = folder / "bench.jsonl"
    write_jsonl(path, size)
    ledger = Ledger(db_url)
    try:
        import_file(ledger, path, actor="test")
        ReadModel(ledger).catch_up()
        yield ledger
    finally:
        ledger.close()
