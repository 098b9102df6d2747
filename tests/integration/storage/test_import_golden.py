"""``ledger import`` stores exactly the same rows as before it was made faster.

Golden digests, computed from main before the import's fast path was written:
importing the 10k bench ledger, and a fixed set of hypothesis-drawn ledgers (with
duplicates, corrections, voids and bad lines mixed in), with a fixed clock and actor,
stores the same event rows (topic, originator id, version, state bytes, in recorded
order) and reports the same duplicates and the same bad lines (line number, error
type, field, message). Without ``--skip-bad`` a file with a bad line appends nothing
and lists every bad line. Chunks are small so that decisions cross chunk borders.

The read model is a fold of the stored rows in recorded order, so equal rows give
equal read-model answers; the test also compares the read model's shipment rows.

Regenerate (only when a stored byte is meant to change, from a commit whose import
has no fast path, e.g. 68f5f74): ``python -m tests.integration.storage.test_import_golden``
(keeps the drawn ledgers; delete ``hypothesis_ledgers.jsonl`` to draw new ones).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.generate import write_jsonl
from ledger.application import ImportRejected, ImportResult, Ledger
from ledger.cli.imports import read_chunks

GOLDEN = Path(__file__).parents[2] / "golden" / "imports"
LEDGERS = GOLDEN / "hypothesis_ledgers.jsonl"
DIGESTS = GOLDEN / "digests.json"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
ACTOR = "cli:golden"
BENCH_SIZE = 10_000


def _stored_rows(ledger: Ledger) -> list[list[Any]]:
    table = ledger.recorder.events_table_name  # type: ignore[attr-defined]
    rows = ledger._query(f"SELECT topic, originator_id, originator_version, state FROM {table} "
                         "ORDER BY originator_id, originator_version")
    out = []
    for topic, originator, version, state in rows:
        hexid = originator.hex if hasattr(originator, "hex") and not isinstance(
            originator, str) else str(originator).replace("-", "")
        out.append([topic, hexid, int(version), bytes(state).decode("utf-8")])
    return out


def _positions(ledger: Ledger) -> list[list[Any]]:
    """(originator id, version) in recorded order."""
    return [[str(e.originator_id), e.originator_version] for _, e in ledger.read()]


def _result_summary(result: ImportResult) -> dict[str, Any]:
    return {"commands": result.commands, "appended": result.appended,
            "duplicates": result.duplicates,
            "errors": [[n, type(e).__name__, getattr(e, "field", None), str(e)]
                       for n, e in result.errors]}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def import_digest(db: str, path: Path, chunk: int) -> str:
    """Import with --skip-bad into a fresh ledger: digest of rows, order and result."""
    ledger = Ledger(db)
    try:
        result = ledger.import_stream(read_chunks(path, chunk), actor=ACTOR, skip_bad=True,
                                      now=NOW)
        return _digest({"rows": _stored_rows(ledger), "order": _positions(ledger),
                        "result": _result_summary(result)})
    finally:
        ledger.close()


def rejected_digest(db: str, path: Path, chunk: int) -> str | None:
    """Import without --skip-bad: None if it went through, else the digest of the
    listed bad lines (after checking nothing was appended)."""
    ledger = Ledger(db)
    try:
        try:
            ledger.import_stream(read_chunks(path, chunk), actor=ACTOR, now=NOW)
        except ImportRejected as e:
            assert ledger.max_position() == 0, "a rejected import appended events"
            return _digest(_result_summary(e.result)["errors"])
        return None
    finally:
        ledger.close()


def hypothesis_files(folder: Path) -> Iterator[tuple[int, Path]]:
    for i, text in enumerate(LEDGERS.read_text().splitlines()):
        path = folder / f"ledger-{i}.jsonl"
        path.write_text("\n".join(json.loads(text)) + "\n")
        yield i, path


def _fresh(db_url: str, tmp: Path, name: str) -> str:
    if db_url.startswith("postgres"):
        from tests.conftest import new_postgres_db

        return new_postgres_db()
    return str(tmp / f"{name}.db")


def _drop(db: str) -> None:
    if db.startswith("postgres"):
        from tests.conftest import drop_postgres_db

        drop_postgres_db(db)


def test_hypothesis_ledgers_store_the_golden_rows(db_url: str, tmp_path: Path) -> None:
    golden = json.loads(DIGESTS.read_text())["hypothesis"]
    files = list(hypothesis_files(tmp_path))
    assert len(files) == len(golden)
    for i, path in files:
        db = _fresh(db_url, tmp_path, f"h{i}-skip")
        try:
            assert import_digest(db, path, chunk=5) == golden[i]["skip_bad"], f"ledger {i}"
        finally:
            _drop(db)
        db = _fresh(db_url, tmp_path, f"h{i}-all")
        try:
            assert rejected_digest(db, path, chunk=5) == golden[i]["rejected"], f"ledger {i}"
        finally:
            _drop(db)


@pytest.mark.slow
def test_bench_ledger_stores_the_golden_rows(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    write_jsonl(path, BENCH_SIZE)
    golden = json.loads(DIGESTS.read_text())["bench"]
    assert import_digest(db_url, path, chunk=3_000) == golden


def _regenerate() -> None:  # pragma: no cover - run by hand, from main
    import tempfile

    from hypothesis import HealthCheck, given, settings

    from tests.model.strategies import ledgers

    drawn: list[list[dict[str, Any]]] = []

    @settings(max_examples=40, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(ledgers(max_actions=40))
    def draw(lines: list[dict[str, Any]]) -> None:
        drawn.append(lines)

    if LEDGERS.exists():  # recompute the digests of the same ledgers
        drawn.clear()
    else:
        draw()
    import random

    files = []
    for i, lines in enumerate(d for d in drawn if len(d) >= 3):
        rng = random.Random(i)
        texts = [json.dumps(line) for line in lines]
        # duplicates (identical repeats), with and without a command id
        for _ in range(rng.randrange(3)):
            texts.insert(rng.randrange(len(texts) + 1), rng.choice(texts))
        if i % 3 == 0:
            keyed = dict(rng.choice(lines), command_id=f"cmd-{i}")
            texts += [json.dumps(keyed), json.dumps(keyed)]
        if i % 2 == 1:  # bad lines: malformed, unknown shipment, conflicting record
            texts.insert(rng.randrange(len(texts) + 1), '{"type": "shipment.recorded", ')
            texts.insert(rng.randrange(len(texts) + 1), json.dumps(
                {"type": "shipment.voided", "exporter_id": "e9", "shipment_ref": "nope",
                 "reason": "never recorded"}))
            ships = [x for x in lines if x["type"] == "shipment.recorded"]
            if ships:
                clash = dict(ships[0], quantity=ships[0]["quantity"] + 1)
                texts.append(json.dumps(clash))
        files.append(texts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        GOLDEN.mkdir(parents=True, exist_ok=True)
        if files:
            LEDGERS.write_text("".join(json.dumps(t) + "\n" for t in files))
        hyp = []
        for i, path in hypothesis_files(folder):
            hyp.append({"skip_bad": import_digest(str(folder / f"{i}a.db"), path, chunk=5),
                        "rejected": rejected_digest(str(folder / f"{i}b.db"), path, chunk=5)})
        bench = folder / "bench.jsonl"
        write_jsonl(bench, BENCH_SIZE)
        digests = {"hypothesis": hyp,
                   "bench": import_digest(str(folder / "bench.db"), bench, chunk=3_000)}
        DIGESTS.write_text(json.dumps(digests, indent=1) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _regenerate()
