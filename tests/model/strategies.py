"""Hypothesis strategies for valid ledgers, as the JSON Lines ``ledger import`` takes.

A ledger is drawn action by action in recorded order, keeping a small model of what
is recorded so every line is one deciding accepts (an adjustment never after the
end nor after a revocation, a revocation not before the start, corrections and voids
only of live shipments). Dates come from a small pool per ledger, so same-day ties
are common; the pool mixes the boundaries that matter (the cap period's and LPP
years' edges, the rule changes) with random days from 2024-06-01 to 2026-06-01.

Covered: licenses from 2024 and across the period start, country-level allocations,
adjustments before the start and up to the end, revocations backdated before earlier
adjustments, licenses granted after the shipments that name them, VEUs amended
(countries, end) and revoked, LPP consignees across countries and years, corrections
moving a shipment to another country, date, quantity or authorization, voids, and
late reports (recorded after later-dated events). A product not in the catalog
(``custom-asic``) ships with a declared TPP around the 3A090 thresholds, with or
without a declared die area (densities at, just under and away from 5.92);
corrections declare a die area, or move a shipment to another product (declared, or
from the catalog, which drops the die area).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

START = dt.date(2024, 6, 1)
END = dt.date(2026, 6, 1)  # the builders' "now": later ship dates are refused
KEY_DATES = [dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2025, 5, 12),
             dt.date(2025, 5, 13), dt.date(2025, 6, 30), dt.date(2025, 7, 1),
             dt.date(2025, 12, 31), dt.date(2026, 1, 1),
             # the H20 notice, the Ascend guidance, Cambodia leaving D:5
             dt.date(2025, 4, 8), dt.date(2025, 4, 9), dt.date(2026, 2, 2),
             dt.date(2026, 2, 3)]
COUNTRIES = ["MX", "BR", "CN", "FR", "KH"]
LICENSE_COUNTRIES = ["MX", "BR", "CN"]
EXPORTERS = ["e1", "e2"]
CONSIGNEES = ["c1", "c2", "c3"]
LICENSES = ["L1", "L2", "L3"]
COUNTRY_ALLOCS = ["G1", "G2"]
VEUS = ["V1", "V2"]
#: a product not in the catalog, with declared figures (see DIE_AREAS)
CUSTOM = "custom-asic"
PRODUCTS = ["nvidia-h100-sxm", "nvidia-b200", "edge-npu", "nvidia-h20", "huawei-ascend-910b",
            CUSTOM]
#: the catalog products a correction may move a shipment to (no declared figures)
CATALOG_PRODUCTS = ["nvidia-h100-sxm", "nvidia-b200", "nvidia-h20", "huawei-ascend-910b"]
#: TPP per unit of the product that is not in the catalog (uncontrolled)
EDGE_TPP = 1_000
#: a product not in the catalog, shipped with a declared TPP and, or not, a declared
#: die area: TPPs around the 3A090 thresholds (1,600 and 4,800), die areas that put
#: the density (TPP / die area) exactly at, just under and well away from 5.92
CUSTOM_TPPS = [1_599, 1_600, 2_368, 3_000, 4_799, 4_800]
DIE_AREAS: list[int | float | None] = [None, None, 400, 400.001, 270.27, 270.271, 814,
                                       506.756, 60]
QUANTITIES = [1, 100, 700, 2_000, 5_000, 8_000, 12_000, 22_000]
AMOUNTS = [10_000_000, 20_000_000, 50_000_000, 100_000_000, 120_000_000, 200_000_000,
           450_000_000, 800_000_000]


def _day(d: dt.date) -> str:
    return d.isoformat()


@st.composite
def date_pools(draw: Any) -> list[dt.date]:
    keys = draw(st.lists(st.sampled_from(KEY_DATES), min_size=1, max_size=4, unique=True))
    randoms = draw(st.lists(st.dates(START, END), min_size=1, max_size=5))
    pool = sorted(set(keys + randoms))
    return pool


class _Model:
    """What has been recorded so far, for drawing only valid next lines."""

    def __init__(self) -> None:
        self.allocations: dict[str, dict[str, Any]] = {}
        self.veus: dict[str, dict[str, Any]] = {}
        self.shipments: dict[tuple[str, str], dict[str, Any]] = {}
        self.n = 0


def _near(draw: Any, pool: list[dt.date]) -> dt.date:
    """A day of the pool, sometimes one day off (just before/after a boundary)."""
    day: dt.date = draw(st.sampled_from(pool))
    shift = draw(st.sampled_from([0, 0, 0, -1, 1]))
    return min(max(day + dt.timedelta(days=shift), START), END)


def _authorization(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["none", "lpp", "license", "license", "veu"]))
    if kind == "license":
        return {"kind": "license", "ref": draw(st.sampled_from([*LICENSES, "G1"]))}
    if kind == "veu":
        return {"kind": "veu", "ref": draw(st.sampled_from(VEUS))}
    return {"kind": kind}


def _ship(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any]:
    m.n += 1
    exporter = draw(st.sampled_from(EXPORTERS))
    ref = f"S{m.n}"
    product = draw(st.sampled_from(PRODUCTS))
    line: dict[str, Any] = {
        "type": "shipment.recorded", "exporter_id": exporter, "shipment_ref": ref,
        "ship_date": _day(_near(draw, pool)), "destination": draw(st.sampled_from(COUNTRIES)),
        "consignee_id": draw(st.sampled_from(CONSIGNEES)), "product_id": product,
        "quantity": draw(st.sampled_from(QUANTITIES)), "authorization": _authorization(draw)}
    licenses = [i for i, a in m.allocations.items() if "holder" in a]
    if licenses and draw(st.integers(0, 9)) < 4:
        # most shipments naming a license would be refused by it (holder, country,
        # dates): aim some at a license as granted, on a day it may well be valid
        lic = draw(st.sampled_from(licenses))
        a = m.allocations[lic]
        inside = [d for d in pool if a["start"] <= d and (a["end"] is None or d <= a["end"])]
        line.update(exporter_id=a["holder"], destination=a["country"],
                    authorization={"kind": "license", "ref": lic},
                    ship_date=_day(draw(st.sampled_from(inside or [a["start"]]))))
    if product == "edge-npu":
        line["tpp_per_unit"] = EDGE_TPP
    if product == CUSTOM:
        line.update(_declared(draw))
    key = (line["exporter_id"], ref)
    m.shipments[key] = {k: v for k, v in line.items()
                        if k not in ("type", "exporter_id", "shipment_ref")}
    m.shipments[key]["voided"] = False
    return line


def _declared(draw: Any) -> dict[str, Any]:
    """The declared figures of a product not in the catalog: a TPP, maybe a die area."""
    figures: dict[str, Any] = {"tpp_per_unit": draw(st.sampled_from(CUSTOM_TPPS))}
    area = draw(st.sampled_from(DIE_AREAS))
    if area is not None:
        figures["die_area_mm2"] = area
    return figures


def _correct_product(draw: Any, m: _Model, key: tuple[str, str], current: dict[str, Any]
                     ) -> dict[str, Any] | None:
    """A correction of the product's figures: declare (another) die area for a declared
    product, or move the shipment to another product (declared or from the catalog),
    which drops the old die area unless it declares one."""
    # a reason of its own: a correction identical to an earlier one (values and
    # reason) would be a no-op, and this model would then be wrong about the shipment
    m.n += 1
    line: dict[str, Any] = {"type": "shipment.corrected", "exporter_id": key[0],
                            "shipment_ref": key[1], "reason": f"datasheet {m.n}"}
    if current["product_id"] == CUSTOM and draw(st.booleans()):
        area = draw(st.sampled_from([a for a in DIE_AREAS if a is not None]))
        if current.get("die_area_mm2") == area:
            return None
        current["die_area_mm2"] = area
        return {**line, "die_area_mm2": area}
    product = draw(st.sampled_from([CUSTOM, *CATALOG_PRODUCTS]))
    changes: dict[str, Any] = {"product_id": product}
    if product == CUSTOM:
        changes.update(_declared(draw))
    if product == current["product_id"] and all(
            changes.get(f) == current.get(f) for f in ("tpp_per_unit", "die_area_mm2")):
        return None  # the same product and figures: a correction that changes nothing
    current.pop("tpp_per_unit", None)
    current.pop("die_area_mm2", None)
    current.update(changes)
    return {**line, **changes}


def _correct(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any] | None:
    live = [k for k, v in m.shipments.items() if not v["voided"]]
    if not live:
        return None
    key = draw(st.sampled_from(live))
    current = m.shipments[key]
    what = draw(st.sampled_from(["ship_date", "destination", "quantity", "authorization",
                                 "consignee_id", "product"]))
    if what == "product":
        return _correct_product(draw, m, key, current)
    if what == "ship_date":
        new: Any = _day(_near(draw, pool))
    elif what == "destination":
        new = draw(st.sampled_from(COUNTRIES))
    elif what == "quantity":
        new = draw(st.sampled_from(QUANTITIES))
    elif what == "authorization":
        new = _authorization(draw)
    else:
        new = draw(st.sampled_from(CONSIGNEES))
    if current[what] == new:
        return None
    current[what] = new
    return {"type": "shipment.corrected", "exporter_id": key[0], "shipment_ref": key[1],
            what: new, "reason": "corrected"}


def _void(draw: Any, m: _Model) -> dict[str, Any] | None:
    live = [k for k, v in m.shipments.items() if not v["voided"]]
    if not live:
        return None
    key = draw(st.sampled_from(live))
    m.shipments[key]["voided"] = True
    return {"type": "shipment.voided", "exporter_id": key[0], "shipment_ref": key[1],
            "reason": "cancelled"}


def _grant(draw: Any, m: _Model, pool: list[dt.date], license: bool) -> dict[str, Any] | None:
    ids = LICENSES if license else COUNTRY_ALLOCS
    free = [i for i in ids if i not in m.allocations]
    if not free:
        return None
    alloc_id = free[0]
    start = _near(draw, pool)
    line: dict[str, Any] = {"type": "allocation.granted", "allocation_id": alloc_id,
                            "country": draw(st.sampled_from(LICENSE_COUNTRIES if license
                                                            else ["MX", "BR"])),
                            "tpp_amount": draw(st.sampled_from(AMOUNTS)),
                            "valid_from": _day(start)}
    if license:
        line["holder"] = draw(st.sampled_from(EXPORTERS))
    end = None
    if draw(st.booleans()):
        later = [d for d in pool if d >= start] or [start]
        end = draw(st.sampled_from(later)) + dt.timedelta(days=draw(st.sampled_from([0, 0,
                                                                                     1, 30])))
        line["valid_to"] = _day(end)
    m.allocations[alloc_id] = {"start": start, "end": end, "revoked": False,
                               "country": line["country"]}
    if license:
        m.allocations[alloc_id]["holder"] = line["holder"]
    return line


def _adjust(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any] | None:
    live = [i for i, a in m.allocations.items() if not a["revoked"]]
    if not live:
        return None
    alloc_id = draw(st.sampled_from(live))
    a = m.allocations[alloc_id]
    choices = [d for d in pool if a["end"] is None or d <= a["end"]]
    choices += [a["start"] - dt.timedelta(days=draw(st.integers(1, 60))), a["start"]]
    if a["end"] is not None:
        choices.append(a["end"])
    day = draw(st.sampled_from(choices))
    return {"type": "allocation.adjusted", "allocation_id": alloc_id,
            "tpp_amount": draw(st.sampled_from(AMOUNTS)), "effective_date": _day(day),
            "reason": "amended"}


def _revoke(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any] | None:
    live = [i for i, a in m.allocations.items() if not a["revoked"]]
    if not live:
        return None
    alloc_id = draw(st.sampled_from(live))
    a = m.allocations[alloc_id]
    a["revoked"] = True
    choices = [d for d in pool if d >= a["start"]] + [a["start"]]
    return {"type": "allocation.revoked", "allocation_id": alloc_id,
            "effective_date": _day(draw(st.sampled_from(choices))), "reason": "withdrawn"}


def _grant_veu(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any] | None:
    free = [v for v in VEUS if v not in m.veus]
    if not free:
        return None
    veu_id = free[0]
    start = _near(draw, pool)
    line: dict[str, Any] = {
        "type": "veu.granted", "veu_id": veu_id, "entity": f"Entity {veu_id}",
        "kind": "universal", "headquarters_country": "US",
        "covered_countries": draw(st.lists(st.sampled_from(COUNTRIES), min_size=1,
                                           max_size=3, unique=True)),
        "valid_from": _day(start)}
    if draw(st.booleans()):
        line["valid_to"] = _day(draw(st.sampled_from([d for d in pool if d >= start]
                                                     or [start])))
    m.veus[veu_id] = {"start": start, "revoked": False}
    return line


def _amend_veu(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any] | None:
    live = [v for v, x in m.veus.items() if not x["revoked"]]
    if not live:
        return None
    veu_id = draw(st.sampled_from(live))
    start = m.veus[veu_id]["start"]
    line: dict[str, Any] = {"type": "veu.amended", "veu_id": veu_id,
                            "effective_date": _day(_near(draw, pool)), "reason": "amended"}
    what = draw(st.sampled_from(["countries", "end", "both"]))
    if what in ("countries", "both"):
        line["covered_countries"] = draw(st.lists(st.sampled_from(COUNTRIES), min_size=1,
                                                  max_size=3, unique=True))
    if what in ("end", "both"):
        line["valid_to"] = _day(draw(st.sampled_from([d for d in pool if d >= start]
                                                     or [start])))
    return line


def _revoke_veu(draw: Any, m: _Model, pool: list[dt.date]) -> dict[str, Any] | None:
    live = [v for v, x in m.veus.items() if not x["revoked"]]
    if not live:
        return None
    veu_id = draw(st.sampled_from(live))
    start = m.veus[veu_id]["start"]
    m.veus[veu_id]["revoked"] = True
    return {"type": "veu.revoked", "veu_id": veu_id,
            "effective_date": _day(draw(st.sampled_from([d for d in pool if d >= start]
                                                        or [start]))),
            "reason": "withdrawn"}


ACTIONS = ["ship"] * 8 + ["license"] * 2 + ["country"] + ["adjust"] * 2 + ["revoke"] + \
    ["veu", "amend-veu", "revoke-veu"] + ["correct"] * 2 + ["void"]


@st.composite
def ledgers(draw: Any, max_actions: int = 24) -> list[dict[str, Any]]:
    """A valid ledger: JSON Lines objects in recorded order."""
    pool = draw(date_pools())
    m = _Model()
    lines: list[dict[str, Any]] = []
    n = draw(st.integers(1, max_actions))
    for _ in range(n):
        action = draw(st.sampled_from(ACTIONS))
        line: dict[str, Any] | None
        if action == "ship":
            line = _ship(draw, m, pool)
        elif action == "license":
            line = _grant(draw, m, pool, license=True)
        elif action == "country":
            line = _grant(draw, m, pool, license=False)
        elif action == "adjust":
            line = _adjust(draw, m, pool)
        elif action == "revoke":
            line = _revoke(draw, m, pool)
        elif action == "veu":
            line = _grant_veu(draw, m, pool)
        elif action == "amend-veu":
            line = _amend_veu(draw, m, pool)
        elif action == "revoke-veu":
            line = _revoke_veu(draw, m, pool)
        elif action == "correct":
            line = _correct(draw, m, pool)
        else:
            line = _void(draw, m)
        if line is not None:
            lines.append(line)
    return lines
