"""Writes ``ledger.jsonl``, the golden replay ledger (run it only to change the ledger).

    python tests/integration/replay/golden/make_ledger.py

The file is committed; the tests import it as is. Every amount is a multiple of
10,000 TPP (the fictional product ``golden-chip`` has 10,000 TPP per unit) so the
expected numbers in README.md can be checked by hand. The last line is a
hypothetical retroactive revision (``golden-retro-2025``), recorded after every
shipment, so ``--known-at`` one position before it reproduces the earlier answers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ledger.rulebook import bundled_rulebook, bundled_rulebooks

HERE = Path(__file__).parent


def ship(exporter: str, ref: str, day: str, to: str, consignee: str, units: int,
         auth: dict[str, str]) -> dict[str, Any]:
    return {"type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
            "ship_date": day, "destination": to, "consignee_id": consignee,
            "product_id": "golden-chip", "quantity": units, "tpp_per_unit": 10_000,
            "authorization": auth}


NONE = {"kind": "none"}
LPP = {"kind": "lpp"}


def retro_revision() -> dict[str, Any]:
    base = bundled_rulebook("ai-diffusion-2025")
    caps = base.caps.model_copy(update={"tier2": base.caps.tier2.model_copy(  # type: ignore[union-attr]
        update={"tpp": 500_000_000, "source": "hypothetical golden-test figure",
                "secondary": False, "note": "hypothetical: 500,000,000 TPP"})})
    doc = base.model_copy(update={
        "id": "golden-retro-2025",
        "title": "Hypothetical retroactive revision (golden replay test only)",
        "citation": "hypothetical golden-test revision, not a real rule",
        "published": dt.date(2026, 6, 1),
        "effective": dt.date(2025, 5, 1),
        "enforcement": base.enforcement.model_copy(
            update={"begins": dt.date(2025, 5, 1), "suspended": None}),
        "supersedes": ["diffusion-nonenforcement-2025"],
        "caps": caps,
        "notes": [("Hypothetical revision for the golden replay test: the Diffusion rule "
                   "with a 500,000,000 TPP tier-2 cap, published 2026-06-01 and enforced "
                   "retroactively from 2025-05-01, superseding the non-enforcement.")],
    })
    return {"type": "rule.published", "document": doc.model_dump(mode="json")}


def lines() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "rule.published", "document": b.model_dump(mode="json")}
        for b in bundled_rulebooks()
    ]
    out += [
        {"type": "allocation.granted", "allocation_id": "lic-sa-1", "country": "SA",
         "tpp_amount": 50_000_000, "valid_from": "2025-01-01", "valid_to": "2025-12-31",
         "holder": "exp-a", "reference": "golden license, shipped past its amount"},
        {"type": "allocation.granted", "allocation_id": "lic-in-1", "country": "IN",
         "tpp_amount": 40_000_000, "valid_from": "2025-01-01", "valid_to": "2025-06-30",
         "holder": "exp-b", "reference": "golden license, expires 2025-06-30"},
        {"type": "veu.granted", "veu_id": "uveu-1", "entity": "CloudCo",
         "kind": "universal", "headquarters_country": "US",
         "covered_countries": ["US", "GB", "AE", "MY"], "valid_from": "2025-01-01",
         "limits": {"total_compute_tpp": 1_000_000_000}},
        # MX crosses the ai-diffusion-2025 cap (790,000,000) at mx-3
        ship("exp-a", "mx-1", "2025-02-10", "MX", "mx-cons-1", 40_000, NONE),
        ship("exp-a", "mx-2", "2025-06-15", "MX", "mx-cons-1", 30_000, NONE),
        ship("exp-b", "mx-3", "2025-09-01", "MX", "mx-cons-2", 10_000, NONE),
        ship("exp-b", "mx-4", "2025-04-01", "MX", "mx-cons-2", 5_000, NONE),
        {"type": "shipment.voided", "exporter_id": "exp-b", "shipment_ref": "mx-4",
         "reason": "golden: recorded in error"},
        # AE: ae-lpp-1 crosses the LPP limit in 2025; ae-lpp-2 only across 2024-2025
        ship("exp-a", "ae-4", "2024-12-01", "AE", "ae-lpp-2", 2_000, LPP),
        ship("exp-a", "ae-5", "2025-01-20", "AE", "ae-lpp-2", 2_000, LPP),
        ship("exp-a", "ae-1", "2025-03-01", "AE", "ae-lpp-1", 1_500, LPP),
        ship("exp-a", "ae-2", "2025-11-01", "AE", "ae-lpp-1", 1_500, LPP),
        # SA: license lic-sa-1 (50,000,000) shipped to 60,000,000
        ship("exp-a", "sa-1", "2025-03-01", "SA", "sa-cons-1", 3_000,
             {"kind": "license", "ref": "lic-sa-1"}),
        ship("exp-a", "sa-2", "2025-07-01", "SA", "sa-cons-1", 3_000,
             {"kind": "license", "ref": "lic-sa-1"}),
        # IN: lic-in-1 used before it expired, then named after it expired
        ship("exp-b", "in-1", "2025-02-01", "IN", "in-cons-1", 1_000,
             {"kind": "license", "ref": "lic-in-1"}),
        ship("exp-b", "in-2", "2025-08-01", "IN", "in-cons-1", 1_000,
             {"kind": "license", "ref": "lic-in-1"}),
        # universal VEU uveu-1: total compute 1,000,000,000; MY gets 8% (> 7%)
        ship("exp-c", "v-1", "2025-03-01", "US", "cloudco-us", 60_000,
             {"kind": "veu", "ref": "uveu-1"}),
        ship("exp-c", "v-2", "2025-04-01", "MY", "cloudco-my", 8_000,
             {"kind": "veu", "ref": "uveu-1"}),
        ship("exp-c", "v-3", "2025-06-01", "AE", "cloudco-ae", 5_000,
             {"kind": "veu", "ref": "uveu-1"}),
        # tier 3 without a license, and tier 1
        ship("exp-a", "cn-1", "2025-06-01", "CN", "cn-cons-1", 100, NONE),
        ship("exp-c", "de-1", "2025-05-20", "DE", "de-cons-1", 1_000, NONE),
    ]
    out.append(retro_revision())
    return out


if __name__ == "__main__":
    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines())
    (HERE / "ledger.jsonl").write_text(text, encoding="utf-8")
    print(f"wrote {HERE / 'ledger.jsonl'}")
