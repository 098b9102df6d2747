"""Command builders shared by the storage suite (imported by its test modules)."""

from __future__ import annotations

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
