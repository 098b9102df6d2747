"""The operator's guide names the ledger's real PostgreSQL tables: every table a ledger
creates (after an import and a query) is named in deploy/README.md's Backups section,
the data ones among the tables its data-only ``pg_dump -t`` keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import drop_postgres_db, new_postgres_db, require_postgres

GUIDE = Path(__file__).resolve().parents[2] / "deploy" / "README.md"


@pytest.mark.postgres
def test_backup_section_names_every_table_of_a_real_ledger(tmp_path: Path) -> None:
    require_postgres()
    import psycopg
    from click.testing import CliRunner

    from ledger.cli import main

    url = new_postgres_db()
    try:
        sample = Path(__file__).resolve().parents[1] / "data" / "audit-sample.jsonl"
        for args in (["rules", "load", "--bundled"], ["import", str(sample)],
                     ["quota", "--all", "--as-of", "2025-12-31"]):
            r = CliRunner().invoke(main, ["--db", url, *args])
            assert r.exit_code == 0, r.output
        with psycopg.connect(url) as conn:
            tables = {row[0] for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public'")}
    finally:
        drop_postgres_db(url)
    backup = GUIDE.read_text().split("## Backups", 1)[1].split("\n## ", 1)[0]
    named = {t for t in tables if f"`{t}`" in backup}
    assert named == tables, f"not named in the Backups section: {sorted(tables - named)}"
    data_dump = next(line for line in backup.splitlines() if " -t " in line)
    data = {t for t in tables if not t.startswith("rm_")}
    assert {t for t in data if f"-t {t} " in data_dump} == data
