"""``ledger projections`` and ``ledger quota`` as a user runs them, on both backends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from bench.generate import write_jsonl


def replayed(db_url: str, as_of: str, rule: str | None, *countries: str
             ) -> dict[str, dict[str, Any]]:
    """The positions by a full replay of the log (no read model), as ``quota --json``
    prints them: of ``countries``, or of every country with activity."""
    from ledger.application import Ledger
    from projections.views import load_state, quota, quota_all

    app = Ledger(db_url)
    try:
        state = load_state(app)
    finally:
        app.close()
    day = dt.date.fromisoformat(as_of)
    positions = ([quota(state, c, day, rule_id=rule) for c in countries] if countries
                 else quota_all(state, day, rule_id=rule))
    return {p.country: p.model_dump(mode="json", exclude={"contributions"}) for p in positions}


def quota_json(run_cli: Any, *args: str) -> Any:
    result = run_cli("quota", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_rebuild_status_catch_up_and_quota(run_cli: Any, db_url: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 300, seed=3)
    assert run_cli("import", str(events)).exit_code == 0

    rebuilt = run_cli("projections", "rebuild", "--quiet")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "read models rebuilt" in rebuilt.output

    status = json.loads(run_cli("projections", "status", "--json").output)
    assert status["behind"] == 0 and status["position"] == status["head"] > 0

    again = run_cli("projections", "catch-up")
    assert again.exit_code == 0 and "folded 0 events" in again.output

    # the read model's answers are the full replay's, country by country
    for as_of, rule in [("2025-09-30", "ai-diffusion-2025"), ("2025-03-31", None)]:
        expected = replayed(db_url, as_of, rule)
        assert len(expected) > 20
        assert sum(p["committed_tpp"] for p in expected.values()) > 0
        rule_args = ["--rule", rule] if rule else []
        every = quota_json(run_cli, "--all", "--as-of", as_of, *rule_args)
        assert {p["country"]: p for p in every} == expected
        # --country reads other rows than --all: the busiest countries, one by one
        busiest = sorted(expected, key=lambda c: -expected[c]["committed_tpp"])[:3]
        for country in busiest:
            one = quota_json(run_cli, "--country", country, "--as-of", as_of, *rule_args)
            assert one == expected[country], country


NEW_SHIPMENTS = [
    {"type": "shipment.recorded", "exporter_id": "late-exporter", "shipment_ref": f"N-{i}",
     "ship_date": f"2025-06-0{i + 1}", "destination": "MX", "consignee_id": "mx-new",
     "product_id": "nvidia-h100-sxm", "quantity": 100 * (i + 1),
     "authorization": {"kind": "none"}}
    for i in range(3)
]


def test_quota_catches_up_by_itself(run_cli: Any, db_url: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No rebuild: the first query folds the log, later ones fold only what is new."""
    from projections.readmodel import ReadModel

    folded: list[int] = []
    catch_up = ReadModel.catch_up

    def counting_catch_up(self: ReadModel, *args: Any, **kwargs: Any) -> int:
        n = catch_up(self, *args, **kwargs)
        folded.append(n)
        return n

    monkeypatch.setattr(ReadModel, "catch_up", counting_catch_up)
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 50, seed=4)
    run_cli("import", str(events))
    head = json.loads(run_cli("projections", "status", "--json").output)["head"]
    args = ["--country", "MX", "--as-of", "2025-06-30", "--rule", "ai-diffusion-2025"]

    first = quota_json(run_cli, *args)
    assert folded == [head]  # the whole log, once
    assert first == replayed(db_url, "2025-06-30", "ai-diffusion-2025", "MX")["MX"]
    status = json.loads(run_cli("projections", "status", "--json").output)
    assert status["behind"] == 0 and status["position"] == head

    assert quota_json(run_cli, *args) == first
    # nothing new: nothing folded (the position index answered, or a catch-up found
    # nothing to fold)
    assert folded[0] == head and not any(folded[1:])

    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps(c) + "\n" for c in NEW_SHIPMENTS))
    assert run_cli("import", str(more)).exit_code == 0
    later = quota_json(run_cli, *args)
    assert folded[-1] == len(NEW_SHIPMENTS)  # only the three new events
    assert later["committed_tpp"] == first["committed_tpp"] + 600 * 15_832
    assert later == replayed(db_url, "2025-06-30", "ai-diffusion-2025", "MX")["MX"]
    assert later["computed_at_position"] == head + len(NEW_SHIPMENTS)


def test_unknown_rule_is_a_clean_error(run_cli: Any, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_jsonl(events, 10, seed=5)
    run_cli("import", str(events))
    result = run_cli("quota", "--country", "MX", "--as-of", "2025-06-30", "--rule", "nope")
    assert result.exit_code != 0
    assert "nope" in result.output and "Traceback" not in result.output


def test_quota_imports_only_what_it_needs(sqlite_url: str) -> None:
    """A query loads no Kafka client, no chart library, no YAML parser and none of
    the write side (commands, decisions)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ledger.cli import main\n"
        "try:\n"
        f"    main(['--db', {sqlite_url!r}, 'quota', '--country', 'MX', '--as-of',"
        " '2025-06-30', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "banned = ('kafka', 'matplotlib', 'yaml', 'consumers', 'ledger.decide',"
        " 'ledger.commands')\n"
        "print(sorted(m for m in sys.modules if m.startswith(banned)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
