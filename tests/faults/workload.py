"""The fault suite's workload: deterministic (seeded) JSON Lines files and commands.

Every file holds one exporter's shipments plus corrections and voids of some of them
(never both for one shipment, so a re-import of the file is a pure no-op). The same
commands are replayed one after another in-process (``sequential_reference``) to give
the event count and content any interleaving of the concurrent writers must end with.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from consumers.testing import sample_shipments

#: the shipment six processes correct at once
HOT = {"type": "shipment.recorded", "exporter_id": "hot", "shipment_ref": "X-1",
       "ship_date": "2025-02-14", "destination": "MX", "consignee_id": "hot-c",
       "product_id": "nvidia-h100-sxm", "quantity": 10, "authorization": {"kind": "none"}}
CORRECTORS = 6
LOOP_SHIPMENTS = 8


def exporter_lines(exporter: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` shipments of one exporter, then corrections of a tenth and voids of a
    twentieth of them (disjoint)."""
    ships = sample_shipments(n, (exporter,), seed)
    rng = random.Random(seed)
    chosen = rng.sample(ships, n // 10 + n // 20)
    lines: list[dict[str, Any]] = list(ships)
    for s in chosen[: n // 10]:
        lines.append({"type": "shipment.corrected", "exporter_id": exporter,
                      "shipment_ref": s["shipment_ref"], "quantity": int(str(s["quantity"])) + 1,
                      "reason": "recount"})
    for s in chosen[n // 10:]:
        lines.append({"type": "shipment.voided", "exporter_id": exporter,
                      "shipment_ref": s["shipment_ref"], "reason": "order cancelled"})
    return lines


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def loop_command(exporter: str, i: int) -> dict[str, Any]:
    """What ``worker.py ship-loop`` records as its i-th ``ledger ship record``."""
    return {"type": "shipment.recorded", "exporter_id": exporter,
            "shipment_ref": f"{exporter}-{i}", "ship_date": "2025-03-01",
            "destination": "MX" if i % 2 else "AE", "consignee_id": f"{exporter}-c",
            "product_id": "nvidia-h100-sxm", "quantity": 1 + i,
            "authorization": {"kind": "none"}}


def correction(i: int) -> dict[str, Any]:
    """The correction the i-th corrector process makes to the hot shipment."""
    return {"type": "shipment.corrected", "exporter_id": "hot", "shipment_ref": "X-1",
            "quantity": 11 + i, "reason": f"recount by process {i}"}


def correction_args(i: int) -> list[str]:
    c = correction(i)
    return ["ship", "correct", "--exporter", "hot", "--ref", "X-1", "--reason",
            str(c["reason"]), "--quantity", str(c["quantity"])]


def setup_ledger(db: str) -> None:
    """The bundled rule books and the hot shipment, before any writer starts."""
    from ledger.application import Ledger
    from ledger.commands import PublishRuleRevision, parse_command
    from ledger.rulebook import bundled_rulebooks

    app = Ledger(db)
    try:
        app.submit([PublishRuleRevision(document=b) for b in bundled_rulebooks()],
                   actor="faults")
        app.submit([parse_command(HOT)], actor="faults")
    finally:
        app.close()


def sequential_reference(db: str, batches: list[list[dict[str, Any]]]) -> None:
    """Apply ``batches`` one after another, each one transaction, after the setup."""
    from ledger.application import Ledger
    from ledger.commands import parse_command

    setup_ledger(db)
    app = Ledger(db)
    try:
        for batch in batches:
            app.submit([parse_command(c) for c in batch], actor="faults")
    finally:
        app.close()
