"""A deliberately simple reference of the README's counting semantics.

Written from the README's "How a shipment counts" table and its "Position" section
(with the day rule), NOT from ``projections/``: it imports nothing of the project.
It reads the ledger as the JSON Lines lines ``ledger import`` takes, in recorded
order, and answers one country's position with a plain loop over the events in
effective-date order. No indexes, no caching, no optimisation: slow and obvious.

Two revisions are modelled, each by a tiny table of its own:

- ``CAPPED``: the January 2025 rule (ai-diffusion-2025) applied to every date: tiers,
  the tier-2 cap of 790,000,000 TPP over 2025-01-01..2027-12-31, the tier-3 cap of 0,
  LPP at 26,900,000 TPP per consignee and calendar year, VEUs.
- ``UNCAPPED``: what every revision in force on the generated dates says (baseline,
  H20, non-enforcement, H200): no caps; a valid license still carries what ships
  under it; a controlled shipment to a license-required destination without a valid
  license is flagged ``unlicensed``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

CAPPED = "capped"
UNCAPPED = "uncapped"

# --- the reference's own tables --------------------------------------------------------

#: product id -> (TPP per unit from the catalog, how the thresholds treat it). A
#: product not here must carry its own tpp_per_unit in the ledger.
#:   "controlled" - TPP >= 4,800: 3A090.a by its TPP alone
#:   "below"      - below every 3A090 threshold: edge-npu (1,000 TPP); the H20 (2,368
#:                  TPP, performance density about 2.9: below 3A090.a and 3A090.b)
#:   "not-us"     - not US-origin (Huawei Ascend): never counted against a US cap
PRODUCTS: dict[str, tuple[int | None, str]] = {
    "nvidia-h100-sxm": (15_832, "controlled"),
    "nvidia-b200": (36_000, "controlled"),
    "edge-npu": (None, "below"),
    "nvidia-h20": (2_368, "below"),
    "huawei-ascend-910b": (5_120, "not-us"),
}
#: A product not in the table is classified by the TPP per unit the shipment declares
#: and the die area it may declare with it (rules-facts.md "Classification"; every
#: revision here counts by the 3A090.a thresholds): controlled from 4,800 TPP; from
#: 1,600 TPP if its performance density (TPP / die area in mm²) is at least 5.92, or
#: if no die area is declared (unknown density counts as controlled); never below
#: 1,600 TPP. Compared in exact fractions: TPP * 100 >= 592 * die area.
A_TPP, MIN_TPP, A_PD_HUNDREDTHS = 4_800, 1_600, 592
#: the H20 notice: from this ship date the H20 needs a license to China, Hong Kong,
#: Macau and D:5 whatever its figures; part of the revisions in force from then (the
#: Diffusion rule alone, CAPPED, does not carry it)
H20_NOTICE = dt.date(2025, 4, 9)
#: the guidance on Huawei Ascend (General Prohibition 10): flagged from this ship date
#: under the revisions in force (not under the Diffusion rule alone)
GP10_GUIDANCE = dt.date(2025, 5, 13)
#: Cambodia left Country Group D:5 on this date: tier 3 and license-required before,
#: tier 2 and not license-required from then on
KH_LEAVES_D5 = dt.date(2026, 2, 3)
#: tiers under the January 2025 rule (every other country would be tier 2); KH: below
TIERS = {"US": 1, "FR": 1, "MX": 2, "BR": 2, "CN": 3}
TIER2_CAP = 790_000_000
TIER3_CAP = 0
PERIOD = (dt.date(2025, 1, 1), dt.date(2027, 12, 31))
LPP_LIMIT = 26_900_000
#: destinations that need a license under every revision (partial; what we generate)
LICENSE_REQUIRED = {"CN"}


def tier(country: str, day: dt.date) -> int:
    """The country's tier under the January 2025 rule on ``day``."""
    if country == "KH":
        return 3 if day < KH_LEAVES_D5 else 2
    return TIERS[country]


def license_required(country: str, day: dt.date) -> bool:
    return country in LICENSE_REQUIRED or (country == "KH" and day < KH_LEAVES_D5)


# --- the ledger as known ------------------------------------------------------------------


@dataclass
class Shipment:
    position: int
    exporter: str
    ref: str
    fields: dict[str, Any]
    voided: bool = False

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.fields["ship_date"])

    @property
    def tpp(self) -> int:
        return int(self.fields["quantity"]) * int(self.fields["tpp_per_unit"])


@dataclass
class Allocation:
    position: int
    line: dict[str, Any]
    adjustments: list[tuple[dt.date, int, int]] = field(default_factory=list)
    revoked: tuple[dt.date, int] | None = None

    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.line["valid_from"])

    @property
    def valid_to(self) -> dt.date | None:
        v = self.line.get("valid_to")
        return None if v is None else dt.date.fromisoformat(v)


@dataclass
class Veu:
    position: int
    line: dict[str, Any]
    amendments: list[tuple[dt.date, int, dict[str, Any]]] = field(default_factory=list)
    revoked: dt.date | None = None


@dataclass
class Known:
    shipments: dict[tuple[str, str], Shipment] = field(default_factory=dict)
    allocations: dict[str, Allocation] = field(default_factory=dict)
    veus: dict[str, Veu] = field(default_factory=dict)


SHIPMENT_FIELDS = ("ship_date", "destination", "consignee_id", "product_id", "quantity",
                   "tpp_per_unit", "authorization", "die_area_mm2")


def known(lines: list[dict[str, Any]], first_position: int, known_at: int | None) -> Known:
    """What the ledger knows after the lines recorded at or before ``known_at``
    (line i is recorded at position ``first_position + i``)."""
    k = Known()
    for i, line in enumerate(lines):
        pos = first_position + i
        if known_at is not None and pos > known_at:
            break
        t = line["type"]
        if t == "shipment.recorded":
            f = {name: line.get(name) for name in SHIPMENT_FIELDS}
            if f["tpp_per_unit"] is None:
                f["tpp_per_unit"] = PRODUCTS[f["product_id"]][0]
            k.shipments[(line["exporter_id"], line["shipment_ref"])] = Shipment(
                pos, line["exporter_id"], line["shipment_ref"], f)
        elif t == "shipment.corrected":
            s = k.shipments[(line["exporter_id"], line["shipment_ref"])]
            for name in SHIPMENT_FIELDS:
                if line.get(name) is not None:
                    s.fields[name] = line[name]
            if line.get("product_id") is not None and line.get("tpp_per_unit") is None:
                s.fields["tpp_per_unit"] = PRODUCTS[line["product_id"]][0]
            # a die area is the declared product's: another product comes without it
            # unless the correction declares one
            if line.get("product_id") is not None and line.get("die_area_mm2") is None:
                s.fields["die_area_mm2"] = None
        elif t == "shipment.voided":
            k.shipments[(line["exporter_id"], line["shipment_ref"])].voided = True
        elif t == "allocation.granted":
            k.allocations[line["allocation_id"]] = Allocation(pos, line)
        elif t == "allocation.adjusted":
            k.allocations[line["allocation_id"]].adjustments.append(
                (dt.date.fromisoformat(line["effective_date"]), pos, line["tpp_amount"]))
        elif t == "allocation.revoked":
            k.allocations[line["allocation_id"]].revoked = (
                dt.date.fromisoformat(line["effective_date"]), pos)
        elif t == "veu.granted":
            k.veus[line["veu_id"]] = Veu(pos, line)
        elif t == "veu.amended":
            k.veus[line["veu_id"]].amendments.append(
                (dt.date.fromisoformat(line["effective_date"]), pos, line))
        elif t == "veu.revoked":
            k.veus[line["veu_id"]].revoked = dt.date.fromisoformat(line["effective_date"])
    return k


# --- validity of an authorization on a day ----------------------------------------------


def license_valid(k: Known, s: Shipment, day: dt.date) -> bool:
    """The license the shipment names: known, a license (has a holder), held by the
    exporter, for the destination, started, not past valid_to, not revoked by then."""
    a = k.allocations.get(s.fields["authorization"].get("ref") or "")
    if a is None or a.line.get("holder") is None:
        return False
    if a.line["holder"] != s.exporter or a.line["country"] != s.fields["destination"]:
        return False
    if day < a.start or (a.valid_to is not None and day > a.valid_to):
        return False
    return a.revoked is None or day < a.revoked[0]


def veu_valid(k: Known, s: Shipment, day: dt.date) -> bool:
    """The VEU the shipment names, with its terms as amended by ``day`` (amendments in
    effective-date order, ties in recorded order, each changing its own fields)."""
    v = k.veus.get(s.fields["authorization"].get("ref") or "")
    if v is None:
        return False
    covered, valid_to = v.line["covered_countries"], v.line.get("valid_to")
    for eff, _pos, amendment in sorted(v.amendments, key=lambda a: (a[0], a[1])):
        if eff <= day:
            if amendment.get("covered_countries") is not None:
                covered = amendment["covered_countries"]
            if amendment.get("valid_to") is not None:
                valid_to = amendment["valid_to"]
    if s.fields["destination"] not in covered:
        return False
    if day < dt.date.fromisoformat(v.line["valid_from"]):
        return False
    if valid_to is not None and day > dt.date.fromisoformat(valid_to):
        return False
    return v.revoked is None or day < v.revoked


# --- how one shipment counts (the README's table) ----------------------------------------


def declared_treatment(s: Shipment) -> str:
    """"controlled" or "below" for a product not in the table, by its declared figures."""
    tpp = int(s.fields["tpp_per_unit"])
    area = s.fields.get("die_area_mm2")
    if tpp >= A_TPP:
        return "controlled"
    if tpp < MIN_TPP:
        return "below"
    if area is None:
        return "controlled"
    return "controlled" if tpp * 100 >= A_PD_HUNDREDTHS * Fraction(str(area)) else "below"


def classify(k: Known, s: Shipment, revision: str) -> tuple[str, str | None]:
    """(bucket, flag): bucket none, cap, license, lpp or veu."""
    day = s.date
    dest = s.fields["destination"]
    kind = s.fields["authorization"]["kind"]
    product = s.fields["product_id"]
    treated = PRODUCTS[product][1] if product in PRODUCTS else declared_treatment(s)
    if treated == "not-us":
        gp10 = revision == UNCAPPED and day >= GP10_GUIDANCE
        return "none", ("gp10-ascend" if gp10 else None)
    h20_named = (product == "nvidia-h20" and revision == UNCAPPED and day >= H20_NOTICE
                 and license_required(dest, day))
    if treated == "below" and not h20_named:
        return "none", None
    licensed = kind == "license" and license_valid(k, s, day)
    if tier(dest, day) == 1:
        return "none", None
    if revision == UNCAPPED:
        if licensed:
            return "license", None
        return "none", ("unlicensed" if license_required(dest, day) else None)
    if tier(dest, day) == 3:
        return ("license", None) if licensed else ("cap", "prohibited")
    if kind == "veu":
        return ("veu", None) if veu_valid(k, s, day) else ("cap", "veu-invalid")
    if kind == "lpp":
        return "lpp", None
    if kind == "license":
        return ("license", None) if licensed else ("cap", "license-invalid")
    return "cap", "unlicensed"


def outside_period(s: Shipment, revision: str) -> bool:
    """A tier-2 shipment dated outside the cap period reaches the cap in no way."""
    return (revision == CAPPED and tier(s.fields["destination"], s.date) == 2
            and not PERIOD[0] <= s.date <= PERIOD[1])


# --- the position: one loop over the events in effective-date order ---------------------


@dataclass
class Standing:
    """An allocation as the loop has seen it so far."""

    started: bool = False
    ended: bool = False
    amount: int = 0
    #: the adjustment with the latest effective date so far (ties: recorded later)
    latest: int | None = None
    shipped: int = 0
    counted: int = 0

    def in_force(self) -> bool:
        return self.started and not self.ended

    def committed(self) -> int:
        unused = max(self.amount - self.shipped, 0) if self.in_force() else 0
        return self.counted + unused


def position(lines: list[dict[str, Any]], first_position: int, country: str,
             as_of: dt.date, revision: str = CAPPED, known_at: int | None = None
             ) -> dict[str, Any]:
    """The position of ``country`` on ``as_of``: cap, committed, remaining, status,
    first breach, flags and the number of shipments counted."""
    k = known(lines, first_position, known_at)
    base_cap: int | None = None
    if revision == CAPPED and tier(country, as_of) != 1:
        base_cap = TIER2_CAP if tier(country, as_of) == 2 else TIER3_CAP

    # every dated event: (day, 0 = allocation event / 1 = shipment, recorded position)
    events: list[tuple[dt.date, int, int, str, Any]] = []
    for alloc_id, a in k.allocations.items():
        if a.line["country"] != country:
            continue
        events.append((a.start, 0, a.position, "grant", alloc_id))
        for eff, pos, amount in a.adjustments:
            events.append((eff, 0, pos, "adjust", (alloc_id, amount)))
        if a.revoked is not None:
            events.append((a.revoked[0], 0, a.revoked[1], "revoke", alloc_id))
        if a.valid_to is not None:
            events.append((a.valid_to + dt.timedelta(days=1), 0, a.position, "expire",
                           alloc_id))
    for s in k.shipments.values():
        if not s.voided:
            events.append((s.date, 1, s.position, "shipment", s))
    events = sorted((e for e in events if e[0] <= as_of), key=lambda e: e[:3])

    standing: dict[str, Standing] = {}
    outside = 0           # shipments counted against the cap outside licenses
    lpp_year: dict[tuple[str, int], int] = {}
    flags: dict[str, list[int]] = {}
    counted = 0
    breach: dict[str, Any] | None = None

    def cap() -> int | None:
        if base_cap is None:
            return None
        return base_cap + sum(st.amount for i, st in standing.items()
                              if st.in_force() and k.allocations[i].line.get("holder") is None)

    def committed() -> int:
        return outside + sum(st.committed() for i, st in standing.items()
                             if k.allocations[i].line.get("holder") is not None)

    def flag(name: str, tpp: int) -> None:
        f = flags.setdefault(name, [0, 0])
        f[0] += 1
        f[1] += tpp

    def over() -> bool:
        c = cap()
        return breach is None and c is not None and committed() > c

    i = 0
    while i < len(events):
        day = events[i][0]
        todays = []
        while i < len(events) and events[i][0] == day:
            todays.append(events[i])
            i += 1
        # 1. the day's allocation events, all at the start of the day, together
        allocation_events = [e for e in todays if e[1] == 0]
        if allocation_events:
            before = {a: (st.ended, st.in_force(), st.amount, st.committed())
                      for a, st in standing.items()}
            touched: dict[str, list[tuple[str, int]]] = {}
            for _day, _phase, pos, kind, ref in allocation_events:
                alloc_id = ref[0] if kind == "adjust" else ref
                st = standing.setdefault(alloc_id, Standing())
                touched.setdefault(alloc_id, []).append((kind, pos))
                if kind == "grant":
                    st.started = True
                    grant_amount = k.allocations[alloc_id].line["tpp_amount"]
                    st.amount = st.latest if st.latest is not None else grant_amount
                elif kind == "adjust" and not st.ended:
                    st.latest = ref[1]
                    if st.started:
                        st.amount = ref[1]
                elif kind in ("revoke", "expire"):
                    st.ended = True
            worsened = []
            for alloc_id, what in touched.items():
                st = standing[alloc_id]
                was_ended, was_in_force, was_amount, was_committed = before.get(
                    alloc_id, (False, False, 0, 0))
                if was_ended:
                    continue  # already ended: nothing changes any more
                if not st.in_force() and not was_in_force:
                    continue  # not started yet, or started and ended the same day
                if k.allocations[alloc_id].line.get("holder") is not None:
                    worse = st.committed() - was_committed
                else:
                    worse = ((was_amount if was_in_force else 0)
                             - (st.amount if st.in_force() else 0))
                if worse > 0:
                    worsened.append((_change_position(what, st), alloc_id,
                                     _change_kind(what, st)))
            if over() and worsened:
                pos, alloc_id, kind = max(worsened)
                breach = {"type": kind, "date": day, "position": pos, "exporter_id": None,
                          "shipment_ref": None, "allocation_id": alloc_id,
                          "committed_tpp": committed(), "cap_tpp": cap()}
        # 2. the day's shipments, in recorded order (every country: LPP is per consignee)
        for _day, _phase, _pos, _kind, s in todays:
            if _phase != 1:
                continue
            bucket, flagged = classify(k, s, revision)
            tpp = s.tpp
            if bucket == "lpp":
                key = (s.fields["consignee_id"], s.date.year)
                used = lpp_year.get(key, 0)
                lpp_year[key] = used + tpp
                excess = max(0, min(tpp, used + tpp - LPP_LIMIT))
            if s.fields["destination"] != country:
                continue
            if outside_period(s, revision) and bucket in ("cap", "license"):
                if bucket == "license":
                    standing[s.fields["authorization"]["ref"]].shipped += tpp
                continue  # counts for nothing, no flag
            if bucket != "none":
                counted += 1
            if flagged is not None:
                flag(flagged, tpp)
            if bucket == "cap":
                outside += tpp
            elif bucket == "license":
                st = standing[s.fields["authorization"]["ref"]]
                over_license = max(0, min(tpp, st.shipped + tpp - st.amount))
                st.shipped += tpp
                st.counted += tpp
                if over_license:
                    flag("license-excess", over_license)
            elif bucket == "lpp" and excess and not outside_period(s, revision):
                outside += excess
                flag("lpp-excess", excess)
            if over():
                breach = {"type": "shipment", "date": day, "position": s.position,
                          "exporter_id": s.exporter, "shipment_ref": s.ref,
                          "allocation_id": None, "committed_tpp": committed(),
                          "cap_tpp": cap()}

    c = cap()
    total = committed()
    status = "no-cap" if c is None else ("over-cap" if total > c else "within-cap")
    if (c is not None and revision == CAPPED and tier(country, as_of) == 2
            and not PERIOD[0] <= as_of <= PERIOD[1]):
        # a date outside the tier-2 cap period has no cap to be within or over
        c, status = None, "outside-cap-period"
    return {
        "cap_tpp": c,
        "committed_tpp": total,
        "remaining_tpp": None if c is None else c - total,
        "status": status,
        "first_breach": breach,
        "flagged": {name: {"count": v[0], "tpp": v[1]} for name, v in sorted(flags.items())},
        "shipments_counted": counted,
    }


def _change_kind(what: list[tuple[str, int]], st: Standing) -> str:
    if not st.in_force():
        return "allocation-ended"
    if any(kind == "grant" for kind, _ in what):
        return "allocation"
    return "allocation-adjusted"


def _change_position(what: list[tuple[str, int]], st: Standing) -> int:
    """The recorded position a day's change of one allocation stands at: its grant
    (also for an expiry), its revocation, or its latest-recorded adjustment that day."""
    if not st.in_force():
        revoked = [pos for kind, pos in what if kind == "revoke"]
        if revoked:
            return revoked[0]
        return next(pos for kind, pos in what if kind == "expire")
    grant = [pos for kind, pos in what if kind == "grant"]
    if grant:
        return grant[0]
    return max(pos for kind, pos in what if kind == "adjust")
