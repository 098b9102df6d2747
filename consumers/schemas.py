"""JSON Schema files of the wire format, generated from the pydantic models.

``python -m consumers.schemas`` writes ``schemas/*.schema.json`` (checked in, so
exporters in any language can validate before sending); a test fails when the files
and the models differ. ``python -m consumers.schemas --check`` exits 1 on drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from consumers.envelope import Envelope
from ledger.commands import CorrectShipment, RecordShipment, VoidShipment

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
BASE_ID = "https://quota-ledger.invalid/schemas/"

#: file name -> model
MODELS: dict[str, type[BaseModel]] = {
    "shipment-message.v1.schema.json": Envelope,
    "shipment.recorded.schema.json": RecordShipment,
    "shipment.corrected.schema.json": CorrectShipment,
    "shipment.voided.schema.json": VoidShipment,
}


def schema_of(name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": BASE_ID + name,
            **schema}


def render(name: str, model: type[BaseModel]) -> str:
    return json.dumps(schema_of(name, model), indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> the text the models generate now."""
    return {name: render(name, model) for name, model in MODELS.items()}


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of the files that are missing or differ from the models."""
    return [name for name, text in expected_files().items()
            if not (directory / name).exists()
            or (directory / name).read_text(encoding="utf-8") != text]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = drift()
        for name in stale:
            print(f"schemas/{name} differs from the models; run python -m consumers.schemas",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in write():
        print(path.relative_to(SCHEMA_DIR.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
