"""The beancount journal export, rechecked by ``bean-check`` (beancount's own checker).

The journal's balance assertions are the ledger's answers (remaining cap, license
left, LPP left); its postings are the individual shipments. bean-check must accept
the export and reject it when one shipment's amount is changed, whether the change
unbalances the transaction or is made consistently on both legs (then an assertion
breaks).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any


def export_journal(cli: Any, db: Path, out: Path) -> str:
    cli(db, "audit", "export", "--format", "ledger-journal", "--rule", "ai-diffusion-2025",
        "--as-of", "2025-12-31", "--out", str(out))
    return out.read_text()


def bean_check(binary: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, str(path)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_journal_passes_bean_check_and_matches_quota(cli: Any, sample_db: Path,
                                                     bean_check_bin: str,
                                                     tmp_path: Path) -> None:
    journal = tmp_path / "quota.beancount"
    text = export_journal(cli, sample_db, journal)
    result = bean_check(bean_check_bin, journal)
    assert result.returncode == 0, result.stdout + result.stderr
    quota = json.loads(cli(sample_db, "quota", "--country", "MX", "--as-of", "2025-12-31",
                           "--rule", "ai-diffusion-2025", "--json").stdout)
    assert re.search(rf"balance Assets:Cap:MX\s+{quota['remaining_tpp']} TPP", text)
    assert quota["remaining_tpp"] < 0  # Mexico is over its cap: the journal shows it too
    # one account per license and per consignee LPP year
    assert "Assets:License:MX:LIC-MX-ACME-1" in text
    assert re.search(r"balance Assets:Lpp:Mx-lab-1:Y2025\s+0 TPP", text)  # used up
    assert "computed at recorded position 27" in text


def _shipment_block(text: str, ref: str) -> tuple[int, int]:
    start = text.index(f'* "shipment {ref}"')
    end = text.index("\n\n", start)
    return start, end


def test_changed_shipment_amount_fails_bean_check(cli: Any, sample_db: Path,
                                                  bean_check_bin: str,
                                                  tmp_path: Path) -> None:
    text = export_journal(cli, sample_db, tmp_path / "q.beancount")
    start, end = _shipment_block(text, "acme/S-100")
    block = text[start:end]
    assert "158320000 TPP" in block

    one_leg = tmp_path / "one-leg.beancount"
    one_leg.write_text(text[:start] + block.replace(" 158320000 TPP", " 158320001 TPP", 1)
                       + text[end:])
    result = bean_check(bean_check_bin, one_leg)
    assert result.returncode != 0
    assert "does not balance" in (result.stdout + result.stderr)

    both_legs = tmp_path / "both-legs.beancount"
    both_legs.write_text(text[:start] + block.replace("158320000 TPP", "150000000 TPP")
                         + text[end:])
    result = bean_check(bean_check_bin, both_legs)
    assert result.returncode != 0
    assert "Balance failed for 'Assets:Cap:MX'" in (result.stdout + result.stderr)
