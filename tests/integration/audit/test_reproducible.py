"""Reproducible answers: every answer states the position it was computed at, and
rerunning it with ``--known-at`` that position gives the identical answer, whatever
is appended later: new and backdated shipments, corrections, voids, and a
retroactive rule revision (a copy of the AI Diffusion rule, published later, enforced
from a past date, which changes what is "in force" for past dates).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ledger.commands import PublishRuleRevision, parse_command
from ledger.rulebook import Enforcement, bundled_rulebook


def retroactive_rule() -> PublishRuleRevision:
    book = bundled_rulebook("ai-diffusion-2025").model_copy(update={
        "id": "ai-diffusion-2025-enforced",
        "title": "AI Diffusion rule, enforced (hypothetical revision, published later)",
        "published": dt.date(2026, 6, 1),
        "enforcement": Enforcement(begins=dt.date(2025, 5, 14)),
    })
    return PublishRuleRevision(document=book)


def later_appends() -> list[Any]:
    def ship(ref: str, day: str, qty: int, auth: dict[str, str] | None = None) -> Any:
        return parse_command({"type": "shipment.recorded", "exporter_id": "acme",
                              "shipment_ref": ref, "ship_date": day, "destination": "MX",
                              "consignee_id": "mx-dc-9", "product_id": "nvidia-h100-sxm",
                              "quantity": qty, "authorization": auth or {"kind": "none"}})
    return [
        ship("L-1", "2025-05-20", 4_000),                 # backdated, before 06-30
        ship("L-2", "2025-08-01", 1_000),
        parse_command({"type": "shipment.corrected", "exporter_id": "acme",
                       "shipment_ref": "S-100", "reason": "recount", "quantity": 12_000}),
        parse_command({"type": "shipment.voided", "exporter_id": "globex",
                       "shipment_ref": "G-203", "reason": "never left the warehouse"}),
        parse_command({"type": "allocation.revoked", "allocation_id": "LIC-MX-ACME-1",
                       "effective_date": "2025-04-30", "reason": "license revoked"}),
        retroactive_rule(),
    ]


def answers(run_cli: Any, known_at: str | None, tmp_path: Path) -> dict[str, str]:
    """The ledger's answers as a user gets them (CLI output)."""
    k = [] if known_at is None else ["--known-at", known_at]
    out: dict[str, str] = {}
    for name, args in {
        "quota-in-force": ["quota", "--country", "MX", "--as-of", "2025-06-30", "--json"],
        "quota-rule": ["quota", "--country", "MX", "--as-of", "2025-06-30", "--rule",
                       "ai-diffusion-2025", "--json"],
        "quota-all": ["quota", "--all", "--as-of", "2025-12-31", "--json"],
        "history": ["history", "--country", "MX", "--to", "2025-09-30", "--rule",
                    "ai-diffusion-2025", "--json"],
        "history-in-force": ["history", "--country", "MX", "--to", "2025-09-30", "--json"],
    }.items():
        result = run_cli(*args, *k)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        # known_at echoes the question; the answer is everything else
        for item in data if isinstance(data, list) else [data]:
            item.pop("known_at", None)
        out[name] = json.dumps(data, sort_keys=True)
    text = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", *k).output
    out["quota-text"] = text[text.index("  cap "):]  # the heading echoes --known-at
    return out


def files(run_cli: Any, to: int, tmp_path: Path) -> dict[str, str]:
    out = {}
    for fmt in ("jsonl", "csv", "ledger-journal"):
        path = tmp_path / f"export.{fmt}"
        extra = ["--rule", "ai-diffusion-2025", "--as-of", "2025-12-31"] \
            if fmt == "ledger-journal" else []
        result = run_cli("audit", "export", "--to", str(to), "--format", fmt, "--out",
                         str(path), *extra)
        assert result.exit_code == 0, result.output
        assert f"computed at recorded position {to}" in result.output
        out[fmt] = path.read_text()
    return out


def test_answers_are_reproducible_after_later_appends(sample_ledger: Any, run_cli: Any,
                                                      tmp_path: Path) -> None:
    n = sample_ledger.max_position()
    now = answers(run_cli, None, tmp_path)
    assert json.loads(now["quota-rule"])["computed_at_position"] == n
    assert f"computed at recorded position {n}; rerun with --known-at {n}" in now["quota-text"]
    assert json.loads(now["history"])["computed_at_position"] == n
    at_n = answers(run_cli, str(n), tmp_path)
    assert at_n == now
    exported = files(run_cli, n, tmp_path)

    sample_ledger.submit(later_appends(), actor="cli:auditor-test")
    assert sample_ledger.max_position() == n + 6

    later = answers(run_cli, None, tmp_path)
    # the appends did change today's answers (otherwise this test proves nothing) ...
    for name in ("quota-in-force", "quota-rule", "quota-all", "history", "history-in-force"):
        assert later[name] != now[name], name
    assert json.loads(later["quota-in-force"])["rule"] == "ai-diffusion-2025-enforced"
    assert json.loads(now["quota-in-force"])["rule"] == "diffusion-nonenforcement-2025"
    # ... but not what the ledger said at position n
    assert answers(run_cli, str(n), tmp_path) == now
    assert files(run_cli, n, tmp_path) == exported


def test_known_at_as_a_time(sample_ledger: Any, run_cli: Any, tmp_path: Path) -> None:
    n, recorded_at, _ = sample_ledger.head()
    before = answers(run_cli, str(n), tmp_path)
    sample_ledger.submit(later_appends(), actor="cli:auditor-test")
    assert answers(run_cli, recorded_at, tmp_path) == before
