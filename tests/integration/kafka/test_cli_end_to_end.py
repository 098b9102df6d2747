"""End to end through the CLI: ``ledger produce`` 10,000 shipments, ``ledger consume``
them, and the quota positions equal ``ledger import`` of the same file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import main

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

AS_OF = ("2025-05-31", "2025-06-30", "2025-09-30", "2026-01-31")
#: the rule in force counts nothing after the 2025-05-13 non-enforcement, so compare
#: the counterfactual "had the January 2025 rule been enforced" too
RULES = (None, "ai-diffusion-2025")


def cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def positions(db: str) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    import datetime as dt

    from ledger.application import Ledger
    from projections.views import load_state, quota_all

    app = Ledger(db)
    try:
        state = load_state(app)
        return {(day, rule): [p.model_dump(mode="json") for p in
                              quota_all(state, dt.date.fromisoformat(day), rule_id=rule)]
                for day in AS_OF for rule in RULES}
    finally:
        app.close()


def test_produce_consume_equals_import(kafka_bootstrap: str, new_topic: Callable[..., str],
                                       key_dir: Path, keyring_path: Path, tmp_path: Path,
                                       shipments_file: Callable[..., Path]) -> None:
    from .conftest import load_rules

    topic = new_topic(3)
    file = shipments_file(10_000)
    kafka_db, import_db = str(tmp_path / "kafka.db"), str(tmp_path / "import.db")
    load_rules(kafka_db)
    load_rules(import_db)

    produced = cli("produce", str(file), "--bootstrap", kafka_bootstrap, "--topic", topic,
                   "--exporter", "acme", "--key-file", str(key_dir / "acme.pem"), "--json")
    assert produced.exit_code == 0, produced.output
    assert json.loads(produced.output)["published"] == 10_000

    consumed = cli("--db", kafka_db, "consume", "--bootstrap", kafka_bootstrap, "--topic", topic,
                   "--group", f"e2e-{topic}", "--keyring", str(keyring_path), "--batch", "1000",
                   "--idle-exit", "2", "--stats", "--max-poll-interval-ms", "5000",
                   "--session-timeout-ms", "6000")
    assert consumed.exit_code == 0, consumed.output
    stats = json.loads(consumed.stdout)
    assert (stats["appended_messages"], stats["dead_lettered"]) == (10_000, 0)

    imported = cli("--db", import_db, "import", str(file), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["appended"] == 10_000

    kafka_view, import_view = positions(kafka_db), positions(import_db)
    counted = kafka_view[("2026-01-31", "ai-diffusion-2025")]
    assert sum(p["shipments_counted"] for p in counted) > 5_000
    assert kafka_view == import_view
