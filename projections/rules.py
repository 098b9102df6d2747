"""Read-side views of rule revisions: the governing timeline and the diff of two books.

``timeline`` answers "which revision governed which period", in two lanes: enforced
(``ledger.rulebook.in_force``) and on the books (``ledger.rulebook.on_the_books``,
the legal text whether enforced or not: for books composed of instruments, the
composition of every instrument on the books, listed per period). It also lists each
instrument's own lifecycle (``instruments``) and every dated change of a country
group the books refer to (``group_changes``). ``diff`` answers "what changes between two
revisions": countries that move tier, caps, exception limits, thresholds, VEU limits,
license requirements and product rules.

Pure: rule books in, plain data out (JSON-ready, sorted, no clock).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.countries import COUNTRY_NAMES
from ledger.rulebook import RuleBook, in_force, on_the_books

LANES = {"enforced": in_force, "on-the-books": on_the_books}


def boundaries(books: list[RuleBook]) -> list[dt.date]:
    """Every date on which the answer of either lane can change."""
    days: set[dt.date] = set()
    for b in books:
        e = b.enforcement
        days |= {d for d in (b.effective, e.begins, e.suspended, e.rescinded) if d}
        for inst in b.instruments:
            life = inst.lifecycle
            days |= {d for d in (life.effective, life.rescinded) if d}
    return sorted(days)


def instrument_lanes(books: list[RuleBook], start: dt.date, end: dt.date
                     ) -> list[dict[str, Any]]:
    """Each instrument the books carry: its lifecycle and, clipped to start..end, the
    period it is on the books and the period it is enforced (None: not in range)."""
    from ledger.composition import instruments_of, ordered

    out: list[dict[str, Any]] = []
    for inst in ordered(instruments_of(books).values()):
        life = inst.lifecycle
        books_to = (life.rescinded - dt.timedelta(days=1)) if life.rescinded else end
        begins = life.enforcement_begins
        stops = [d for d in (life.suspended, life.rescinded) if d]
        enforced_to = (min(stops) - dt.timedelta(days=1)) if stops else end
        out.append({
            "instrument": inst.id, "kind": inst.kind, "title": inst.title,
            "citation": inst.citation,
            "lifecycle": life.model_dump(mode="python"),
            "on_the_books": _clip(life.effective, books_to, start, end),
            "enforced": None if begins is None else _clip(begins, enforced_to, start, end),
        })
    return out


def _clip(a: dt.date, b: dt.date, start: dt.date, end: dt.date) -> dict[str, Any] | None:
    a, b2 = max(a, start), min(b, end)
    if a > b2:
        return None
    return {"from": a, "to": b2, "open_ended": b >= end}


def group_changes(books: list[RuleBook]) -> list[dict[str, Any]]:
    """Every dated change of a country group the books refer to, in date order."""
    groups = {}
    for b in books:
        groups.update(b.groups)
    rows = [{"group": g.id, "title": g.title, "date": c.date, "add": c.add,
             "remove": c.remove, "source": c.source}
            for g in groups.values() for c in g.changes if c.date is not None]
    return sorted(rows, key=lambda r: (r["date"], r["group"]))


def timeline(books: list[RuleBook], start: dt.date | None = None,
             end: dt.date | None = None) -> dict[str, Any]:
    """Per lane, the periods and the revision governing each (None: none).

    Returns {"from", "to", "lanes": {lane: [{"rule", "from", "to"}]}}; the last period
    of a lane ends at ``to`` (default: a year after the last boundary date), and
    ``open_ended`` says it goes on."""
    days = boundaries(books)
    if not days:
        return {"from": None, "to": None, "lanes": {lane: [] for lane in LANES},
                "instruments": [], "group_changes": []}
    start = start or days[0]
    end = end or days[-1] + dt.timedelta(days=365)
    cuts = [start] + [d for d in days if start < d <= end]
    lanes: dict[str, list[dict[str, Any]]] = {}
    for lane, pick in LANES.items():
        periods: list[dict[str, Any]] = []
        for i, day in enumerate(cuts):
            last = cuts[i + 1] - dt.timedelta(days=1) if i + 1 < len(cuts) else end
            book = pick(books, day)
            rid = None if book is None else book.id
            if periods and periods[-1]["rule"] == rid:
                periods[-1]["to"] = last
            else:
                periods.append({"rule": rid, "from": day, "to": last})
                if lane == "on-the-books" and book is not None and book.instruments:
                    periods[-1]["instruments"] = [i.id for i in book.instruments]
        if periods:
            periods[-1]["open_ended"] = True
        lanes[lane] = periods
    return {"from": start, "to": end, "lanes": lanes,
            "instruments": instrument_lanes(books, start, end),
            "group_changes": [c for c in group_changes(books) if start <= c["date"] <= end]}


# --- diff ----------------------------------------------------------------------------


def _tier(book: RuleBook, country: str) -> int | None:
    """The country's tier under ``book`` on the book's effective date (groups are
    dated: Cambodia is tier 3 under the Diffusion rule until 2026-02-03)."""
    return book.tier_of(country, book.effective)


def diff(a: RuleBook, b: RuleBook) -> dict[str, Any]:
    """What changes from revision ``a`` to revision ``b``; only changed sections."""
    out: dict[str, Any] = {"from": a.id, "to": b.id}
    dates = {}
    for name, va, vb in [
        ("published", a.published, b.published), ("effective", a.effective, b.effective),
        ("enforcement_begins", a.enforcement.begins, b.enforcement.begins),
        ("enforcement_suspended", a.enforcement.suspended, b.enforcement.suspended),
        ("rescinded", a.enforcement.rescinded, b.enforcement.rescinded),
    ]:
        if va != vb:
            dates[name] = {"from": va, "to": vb}
    if dates:
        out["dates"] = dates

    moves = [{"country": c, "from": _tier(a, c), "to": _tier(b, c)}
             for c in sorted(COUNTRY_NAMES) if _tier(a, c) != _tier(b, c)]
    if moves:
        out["tier_moves"] = moves
        summary: dict[str, int] = {}
        for m in moves:
            key = f"{m['from'] or 'none'}->{m['to'] or 'none'}"
            summary[key] = summary.get(key, 0) + 1
        out["tier_moves_summary"] = dict(sorted(summary.items()))

    caps: dict[str, Any] = {}
    t2a, t2b = a.caps.tier2, b.caps.tier2
    if (t2a and t2a.tpp) != (t2b and t2b.tpp):
        caps["tier2_tpp"] = {"from": t2a and t2a.tpp, "to": t2b and t2b.tpp}
    pa, pb = a.cap_period(), b.cap_period()
    if pa != pb:
        caps["tier2_period"] = {"from": pa and [pa.start, pa.end], "to": pb and [pb.start, pb.end]}
    if a.caps.tier3_tpp != b.caps.tier3_tpp:
        caps["tier3_tpp"] = {"from": a.caps.tier3_tpp, "to": b.caps.tier3_tpp}
    if caps:
        out["caps"] = caps

    if a.lpp_limit() != b.lpp_limit():
        out["exceptions"] = {"lpp_limit_tpp_per_consignee_year":
                             {"from": a.lpp_limit(), "to": b.lpp_limit()}}

    ta = {(t.eccn, t.min_tpp, str(t.min_performance_density)) for t in a.control.thresholds}
    tb = {(t.eccn, t.min_tpp, str(t.min_performance_density)) for t in b.control.thresholds}
    if ta != tb:
        def fmt(t: tuple[str, int, str]) -> str:
            return f"{t[0]}: TPP >= {t[1]}" + ("" if t[2] == "None" else f", PD >= {t[2]}")
        out["thresholds"] = {"removed": sorted(fmt(t) for t in ta - tb),
                             "added": sorted(fmt(t) for t in tb - ta)}

    veu: dict[str, Any] = {}
    ua = a.veu.universal if a.veu else None
    ub = b.veu.universal if b.veu else None
    for field in ("max_share_single_non_tier1", "max_share_outside_tier1",
                  "min_share_us_for_us_headquartered"):
        sa = None if ua is None else str(getattr(ua, field))
        sb = None if ub is None else str(getattr(ub, field))
        if sa != sb:
            veu[f"universal_{field}"] = {"from": sa, "to": sb}
    na = [(n.through, n.h100_equivalents, n.tpp) for n in (a.veu.national if a.veu else [])]
    nb = [(n.through, n.h100_equivalents, n.tpp) for n in (b.veu.national if b.veu else [])]
    if na != nb:
        def caps_list(ns: list[tuple[dt.date, int, int]]) -> list[dict[str, Any]]:
            return [{"through": t, "h100_equivalents": h, "tpp": p} for t, h, p in ns]
        veu["national_caps"] = {"from": caps_list(na), "to": caps_list(nb)}
    if veu:
        out["veu"] = veu

    def required(book: RuleBook) -> set[str]:
        return (set(book.control.license_required)
                | {f"group {g}" for g in book.control.license_required_groups})

    la, lb = required(a), required(b)
    if la != lb:
        out["license_required"] = {"removed": sorted(la - lb), "added": sorted(lb - la)}

    def rules_of(book: RuleBook) -> set[str]:
        out: set[str] = set()
        for r in book.control.product_rules:
            where = ("anywhere" if r.anywhere else ", ".join(
                sorted(r.destinations) + [f"group {g}" for g in sorted(r.destination_groups)]))
            since = f" from {r.applies_from}" if r.applies_from else ""
            out.add(f"{', '.join(sorted(r.products))} to {where}{since} ({r.treatment})")
        return out
    ra, rb = rules_of(a), rules_of(b)
    if ra != rb:
        out["product_rules"] = {"removed": sorted(ra - rb), "added": sorted(rb - ra)}
    return out
