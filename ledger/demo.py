"""A deterministic sample ledger for ``ledger demo``, tests and examples.

Everything is drawn from ``random.Random(seed)``: the same seed gives the same
commands, so the demo is reproducible and re-running it appends nothing new. All
companies and references are fictitious. The sample has licenses (one that expires,
one shipped past its amount), a government-to-government country-level allocation
(the doubling figure is secondary, see rules-facts.md), a universal and a national
VEU, LPP consignees (one over its yearly limit), tier-1, tier-2 and tier-3
destinations, and, in separate batches, late-reported shipments and a correction and
a void.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

#: tier-2 countries of the sample and how busy each is (relative shipment weight)
TIER2_WEIGHTS = {
    "AE": 9, "SA": 8, "IN": 7, "MY": 6, "SG": 5, "MX": 5, "BR": 4, "IL": 4,
    "TH": 3, "PL": 3, "VN": 2, "ID": 2, "CH": 2, "TR": 1,
}
TIER1 = ["FR", "DE", "JP", "GB", "CA"]
TIER3 = ["CN", "RU"]
EXPORTERS = ["nvidia-us", "amd-us", "smc-servers", "dell-dist", "hpe-systems"]
PRODUCTS = [  # (product id, weight, units per order: low, high)
    ("nvidia-h100-sxm", 6, 8, 800),
    ("nvidia-h200", 5, 8, 640),
    ("nvidia-b200", 3, 8, 256),
    ("nvidia-a100", 2, 8, 512),
    ("amd-mi325x", 2, 8, 384),
    ("nvidia-h20", 2, 8, 1_000),
]
START = dt.date(2025, 1, 15)
END = dt.date(2025, 6, 30)
#: shipments recorded in a later batch, as if reported late by the exporter
LATE_FROM = dt.date(2025, 6, 16)
G2G_COUNTRY = "AE"
#: the Diffusion rule's tier-2 cap, doubled by a government-to-government arrangement
#: (1,580,000,000 TPP is secondary; here it is applied as a country-level allocation
#: of 790,000,000 TPP, see rules-facts.md R1)
G2G_TPP = 790_000_000


@dataclass(frozen=True)
class DemoLedger:
    """The demo's commands, in the three batches they are recorded in."""

    setup: list[dict[str, Any]]       # allocations and VEU grants
    shipments: list[dict[str, Any]]   # shipments reported on time
    late: list[dict[str, Any]]        # late-reported shipments, a correction and a void


def _day(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def build(seed: int = 2025, shipments: int = 3_000) -> DemoLedger:
    """The demo ledger for ``seed``: about ``shipments`` shipments in all."""
    rng = random.Random(seed)
    setup: list[dict[str, Any]] = []
    licenses: dict[str, list[str]] = {}  # country -> license ids
    holders: dict[str, str] = {}
    for i, country in enumerate(TIER2_WEIGHTS):
        for j in range(2 if TIER2_WEIGHTS[country] >= 5 else 1):
            lic_id = f"LIC-{country}-{j + 1:03d}"
            holder = EXPORTERS[(i + j) % len(EXPORTERS)]
            amount = rng.choice([40, 60, 80, 120]) * 1_000_000
            valid_to = dt.date(2025, 4, 30) if (i + j) % 5 == 0 else dt.date(2026, 12, 31)
            setup.append({"type": "allocation.granted", "allocation_id": lic_id,
                          "country": country, "tpp_amount": amount,
                          "valid_from": "2025-01-15", "valid_to": valid_to.isoformat(),
                          "holder": holder, "reference": f"BIS license D{100000 + i * 10 + j}"})
            licenses.setdefault(country, []).append(lic_id)
            holders[lic_id] = holder
    setup.append({"type": "allocation.granted", "allocation_id": "LIC-CN-001", "country": "CN",
                  "tpp_amount": 20_000_000, "valid_from": "2025-02-01",
                  "valid_to": "2025-12-31", "holder": "nvidia-us",
                  "reference": "BIS license D200001 (case-by-case)"})
    licenses["CN"] = ["LIC-CN-001"]
    holders["LIC-CN-001"] = "nvidia-us"
    setup.append({"type": "allocation.granted", "allocation_id": f"G2G-{G2G_COUNTRY}-2025",
                  "country": G2G_COUNTRY, "tpp_amount": G2G_TPP, "valid_from": "2025-03-01",
                  "reference": "government-to-government arrangement (cap doubled; "
                               "1,580,000,000 TPP figure is secondary)"})
    setup.append({"type": "veu.granted", "veu_id": "UVEU-ATLAS", "entity": "Atlas Cloud Inc.",
                  "kind": "universal", "headquarters_country": "US",
                  "covered_countries": ["AE", "SA", "IN", "MY", "SG", "FR", "DE", "JP"],
                  "valid_from": "2025-01-20",
                  "limits": {"total_compute_tpp": 40_000_000_000}})
    setup.append({"type": "veu.granted", "veu_id": "NVEU-GULF", "entity": "Gulf Compute LLC",
                  "kind": "national", "headquarters_country": "AE",
                  "covered_countries": ["AE"], "valid_from": "2025-02-01",
                  "valid_to": "2025-05-31"})

    consignees = {c: [f"{c.lower()}-consignee-{k:02d}" for k in range(1, 7)]
                  for c in [*TIER2_WEIGHTS, *TIER1, *TIER3]}
    countries = list(TIER2_WEIGHTS) + TIER1 + TIER3
    weights = list(TIER2_WEIGHTS.values()) + [2] * len(TIER1) + [1] * len(TIER3)
    products = [p[0] for p in PRODUCTS]
    product_weights = [p[1] for p in PRODUCTS]
    ranges = {p[0]: (p[2], p[3]) for p in PRODUCTS}

    on_time: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    for n in range(shipments):
        country = rng.choices(countries, weights)[0]
        exporter = rng.choice(EXPORTERS)
        product = rng.choices(products, product_weights)[0]
        low, high = ranges[product]
        quantity = rng.randint(low, high)
        roll = rng.random()
        auth: dict[str, Any] = {"kind": "none"}
        if country in TIER2_WEIGHTS or country in TIER3:
            if roll < 0.30 and country in licenses:
                lic = rng.choice(licenses[country])
                auth, exporter = {"kind": "license", "ref": lic}, holders[lic]
            elif roll < 0.55 and country in TIER2_WEIGHTS:
                auth, quantity = {"kind": "lpp"}, rng.randint(8, 120)
            elif roll < 0.70 and country in ("AE", "SA", "IN", "MY", "SG"):
                auth = {"kind": "veu", "ref": "UVEU-ATLAS"}
            elif roll < 0.75 and country == "AE":
                auth = {"kind": "veu", "ref": "NVEU-GULF"}
        elif roll < 0.2:
            auth = {"kind": "veu", "ref": "UVEU-ATLAS"}
        ship_date = _day(rng, START, END)
        consignee = rng.choice(consignees[country])
        if auth["kind"] == "lpp" and country == "MX":
            consignee = "mx-consignee-01"  # one busy LPP consignee: goes over its limit
            quantity = rng.randint(150, 400)
        command = {"type": "shipment.recorded", "exporter_id": exporter,
                   "shipment_ref": f"{exporter.upper()}-2025-{n + 1:05d}",
                   "ship_date": ship_date.isoformat(), "destination": country,
                   "consignee_id": consignee, "product_id": product, "quantity": quantity,
                   "authorization": auth}
        (late if ship_date >= LATE_FROM and rng.random() < 0.08 else on_time).append(command)

    first = on_time[0]
    late.append({"type": "shipment.corrected", "exporter_id": first["exporter_id"],
                 "shipment_ref": first["shipment_ref"], "quantity": first["quantity"] + 100,
                 "reason": "invoice reconciliation: 100 more units shipped than first reported"})
    second = on_time[1]
    late.append({"type": "shipment.voided", "exporter_id": second["exporter_id"],
                 "shipment_ref": second["shipment_ref"],
                 "reason": "order cancelled before export; recorded in error"})
    return DemoLedger(setup, on_time, late)
