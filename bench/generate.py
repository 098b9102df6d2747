"""A seeded synthetic ledger: the bench's (and the equivalence tests') input.

``generate(n, seed)`` returns JSON-able command dicts in the order they are recorded
(the ``ledger import`` JSON Lines format): the bundled rule revisions, ~150
destination countries, a few thousand consignees (each with a home country), 20
exporters, licenses (allocations held by an exporter) and country-level allocations
with some adjustments and revocations, VEUs with amendments, then ``n`` shipments
under no authorization, LPP, a license or a VEU, of which ~2% are corrected later,
~1% voided and ~5% reported late (recorded at the end with old ship dates). The same
(n, seed) always gives the same file.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PRODUCTS = ["nvidia-h100-sxm", "nvidia-h200", "nvidia-h800", "nvidia-a100", "nvidia-h20",
            "nvidia-b200", "amd-mi325x"]
START = dt.date(2024, 9, 1)
DAYS = 540  # ship dates from 2024-09-01 to 2026-02-23
EXPORTERS = [f"EXP{i:02d}" for i in range(20)]


def _day(rng: random.Random, lo: int = 0, hi: int = DAYS) -> str:
    return (START + dt.timedelta(days=rng.randrange(lo, hi))).isoformat()


def generate(n: int, seed: int = 2025) -> Iterator[dict[str, Any]]:
    """Yield the commands of a ledger with ``n`` shipments (before corrections)."""
    from ledger.countries import COUNTRY_NAMES
    from ledger.rulebook import bundled_rulebooks

    rng = random.Random(seed)
    for book in bundled_rulebooks():
        yield {"type": "rule.published", "document": book.model_dump(mode="json")}
    codes = sorted(c for c in COUNTRY_NAMES if c != "US")
    countries = rng.sample(codes, min(150, len(codes)))
    # a skew like real trade: a few destinations take most shipments
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(countries))]
    n_consignees = max(50, min(3000, n // 100))
    consignee_home = {f"C{i:05d}": rng.choices(countries, weights)[0]
                      for i in range(n_consignees)}
    consignees_by_country: dict[str, list[str]] = {}
    for cid, home in consignee_home.items():
        consignees_by_country.setdefault(home, []).append(cid)
    all_consignees = list(consignee_home)

    licenses_by_country: dict[str, list[tuple[str, str]]] = {}
    n_licenses = max(20, min(5000, n // 200))
    for i in range(n_licenses):
        country = rng.choices(countries, weights)[0]
        holder = rng.choice(EXPORTERS)
        lid = f"LIC-{i:05d}"
        start = _day(rng, 0, 200)
        grant: dict[str, Any] = {"type": "allocation.granted", "allocation_id": lid,
                                 "country": country, "holder": holder,
                                 "tpp_amount": rng.randrange(1, 400) * 15832 * 10,
                                 "valid_from": start, "reference": f"BIS-{i}"}
        if rng.random() < 0.5:
            grant["valid_to"] = (dt.date.fromisoformat(start)
                                 + dt.timedelta(days=rng.randrange(90, 500))).isoformat()
        yield grant
        licenses_by_country.setdefault(country, []).append((lid, holder))
        if rng.random() < 0.1:
            amount = rng.randrange(1, 600) * 15832 * 10
            # never after the license ended: deciding refuses an adjustment that would
            # revive it
            effective = min(_day(rng, 200, 400), grant.get("valid_to", "9999-12-31"))
            yield {"type": "allocation.adjusted", "allocation_id": lid,
                   "tpp_amount": amount, "effective_date": effective,
                   "reason": "amended license"}
        elif rng.random() < 0.03:
            yield {"type": "allocation.revoked", "allocation_id": lid,
                   "effective_date": _day(rng, 250, 450), "reason": "revoked"}
    for i in range(20):
        yield {"type": "allocation.granted", "allocation_id": f"G2G-{i:03d}",
               "country": rng.choice(countries), "tpp_amount": rng.randrange(10, 100) * 10**8,
               "valid_from": _day(rng, 100, 300), "reference": "government-to-government"}
    veus_by_country: dict[str, list[str]] = {}
    for i in range(40):
        covered = sorted(set(rng.sample(countries, rng.randrange(1, 6))))
        vid = f"VEU-{i:03d}"
        yield {"type": "veu.granted", "veu_id": vid, "entity": f"Datacenter {i}",
               "kind": "national" if i % 3 else "universal",
               "headquarters_country": rng.choice(codes), "covered_countries": covered,
               "valid_from": _day(rng, 0, 300)}
        for c in covered:
            veus_by_country.setdefault(c, []).append(vid)
        if i % 5 == 0:
            yield {"type": "veu.amended", "veu_id": vid, "effective_date": _day(rng, 300, 450),
                   "valid_to": _day(rng, 450, DAYS), "reason": "narrowed"}
        if i % 13 == 0:
            yield {"type": "veu.revoked", "veu_id": vid, "effective_date": _day(rng, 400, DAYS),
                   "reason": "revoked"}

    late: list[dict[str, Any]] = []
    fixes: list[dict[str, Any]] = []
    for i in range(n):
        dest = rng.choices(countries, weights)[0]
        exporter = rng.choice(EXPORTERS)
        r = rng.random()
        auth: dict[str, Any] = {"kind": "none"}
        if r < 0.25:
            auth = {"kind": "lpp"}
        elif r < 0.40 and dest in licenses_by_country:
            lid, exporter = rng.choice(licenses_by_country[dest])
            auth = {"kind": "license", "ref": lid}
        elif r < 0.48 and dest in veus_by_country:
            auth = {"kind": "veu", "ref": rng.choice(veus_by_country[dest])}
        local = consignees_by_country.get(dest)
        consignee = rng.choice(local) if local and rng.random() < 0.8 \
            else rng.choice(all_consignees)
        ship = {"type": "shipment.recorded", "exporter_id": exporter,
                "shipment_ref": f"S{i:08d}", "ship_date": _day(rng), "destination": dest,
                "consignee_id": consignee, "product_id": rng.choice(PRODUCTS),
                "quantity": rng.randrange(1, 400), "authorization": auth}
        q = rng.random()
        if q < 0.05:
            late.append(ship)  # reported late: recorded after everything else
        else:
            yield ship
        f = rng.random()
        key = {"exporter_id": exporter, "shipment_ref": ship["shipment_ref"]}
        if f < 0.01:
            fixes.append({"type": "shipment.voided", **key, "reason": "cancelled order"})
        elif f < 0.03:
            change: dict[str, Any] = {"type": "shipment.corrected", **key,
                                      "reason": "corrected quantity",
                                      "quantity": ship["quantity"] + rng.randrange(1, 400)}
            if f < 0.015:
                change["destination"] = rng.choice(countries)
                change["authorization"] = {"kind": "none"}
                change["reason"] = "wrong destination"
            fixes.append(change)
    # corrections after their shipments (late ones included), in a stable mixed order
    yield from late
    rng.shuffle(fixes)
    yield from fixes


def write_jsonl(path: Path, n: int, seed: int = 2025) -> int:
    """Write the ledger's commands as JSON Lines; returns the number of lines."""
    count = 0
    with path.open("w") as f:
        for command in generate(n, seed):
            f.write(json.dumps(command, separators=(",", ":")))
            f.write("\n")
            count += 1
    return count
