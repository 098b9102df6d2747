"""The auditor's report: one self-contained HTML page per ledger state, readable by people.

For every tier-2 country with activity: a chart of committed TPP over time against the
cap (first breach and rule changes marked), the licenses and how far they are
depleted, the LPP consignees near their yearly limit, VEU usage against limits, and,
when a ``--rule`` other than the revision in force is asked for, the comparison of
both (the same fold, ``country_position``, under each revision).

Charts are drawn by matplotlib into inline SVG (glyphs as paths, fixed ids, no
timestamps), so the page fetches nothing and the same ledger state gives the same
bytes. matplotlib is imported only here, inside ``render_chart``, so the rest of the
CLI never pays for it. The data part (``build_report``) is pure.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from ledger.countries import country_name
from ledger.rulebook import H100_TPP, RuleBook, in_force
from projections.history import History, country_history
from projections.positions import Position, country_position
from projections.state import LedgerState

#: a consignee is "near" its LPP limit from this share of it on
LPP_NEAR = 0.5


@dataclass
class LicenseLine:
    allocation_id: str
    holder: str
    valid_from: dt.date
    valid_to: dt.date | None
    amount: int
    shipped: int
    status: str

    @property
    def depletion(self) -> float:
        return self.shipped / self.amount if self.amount else 0.0


@dataclass
class LppLine:
    consignee_id: str
    year: int
    used: int
    limit: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0


@dataclass
class VeuLine:
    veu_id: str
    entity: str
    kind: str
    used_here: int
    used_total: int
    limit: int | None
    limit_basis: str


@dataclass
class RuleMark:
    day: dt.date
    label: str


@dataclass
class CountrySection:
    country: str
    position: Position
    history: History
    licenses: list[LicenseLine]
    lpp: list[LppLine]
    veus: list[VeuLine]
    rule_marks: list[RuleMark]
    compare: Position | None = None
    compare_history: History | None = None


@dataclass
class Report:
    as_of: dt.date
    rule: RuleBook | None
    in_force: RuleBook | None
    computed_at_position: int
    head_hash: str | None
    sections: list[CountrySection] = field(default_factory=list)


def _tier_book(state: LedgerState, rule: RuleBook | None, as_of: dt.date) -> RuleBook | None:
    """Whose tiers say which countries are tier 2: the rule used if it has tiers, else
    the latest revision with tiers (the Diffusion tiers stay on the books when caps are
    not enforced)."""
    if rule is not None and rule.tiers is not None:
        return rule
    books = [b for b in state.rule_books() if b.tiers is not None and b.effective <= as_of]
    return books[-1] if books else None


def rule_marks(state: LedgerState, start: dt.date, end: dt.date) -> list[RuleMark]:
    """The days the revision in force changes between ``start`` and ``end``."""
    days = set()
    for book in state.rule_books():
        e = book.enforcement
        days |= {d for d in (e.begins, e.suspended, e.rescinded) if d is not None}
    marks = []
    books = state.rule_books()
    for day in sorted(d for d in days if start < d <= end):
        before = in_force(books, day - dt.timedelta(days=1))
        after = in_force(books, day)
        if (before and before.id) != (after and after.id):
            marks.append(RuleMark(day, f"in force: {after.id if after else 'none'}"))
    return marks


def report_countries(state: LedgerState, as_of: dt.date, rule: RuleBook | None) -> list[str]:
    """The countries the report has a section for: tier 2 with activity."""
    used = rule if rule is not None else in_force(state.rule_books(), as_of)
    tiers = _tier_book(state, used, as_of)
    return [c for c in state.countries_with_activity()
            if tiers is not None and tiers.tier_of(c) == 2]


def build_report(state: LedgerState, as_of: dt.date, rule: RuleBook | None,
                 *, known_at: int | None = None, head_hash: str | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """The report's data: one section per tier-2 country with activity (pure).

    ``rule`` None means the revision in force on ``as_of``; another revision adds the
    comparison with the one in force. ``progress`` is called with each country as its
    section is computed."""
    books = state.rule_books()
    current = in_force(books, as_of)
    used = rule if rule is not None else current
    tiers = _tier_book(state, used, as_of)
    report = Report(as_of=as_of, rule=used, in_force=current,
                    computed_at_position=state.position if known_at is None
                    else min(known_at, state.position), head_hash=head_hash)
    for country in state.countries_with_activity():
        if tiers is None or tiers.tier_of(country, as_of) != 2:
            continue
        if progress is not None:
            progress(country)
        position = country_position(state, country, as_of, used, known_at=known_at)
        hist = country_history(state, country, used, from_date=None, to_date=as_of,
                               known_at=known_at)
        start = min([e.date for e in hist.entries], default=as_of)
        section = CountrySection(
            country=country, position=position, history=hist,
            licenses=_licenses(state, country, as_of),
            lpp=_lpp(state, country, as_of, used),
            veus=_veus(state, country, as_of, used),
            rule_marks=rule_marks(state, start, as_of),
        )
        if rule is not None and (current is None or current.id != rule.id):
            section.compare = country_position(state, country, as_of, current,
                                               known_at=known_at)
            section.compare_history = country_history(state, country, current,
                                                      from_date=None, to_date=as_of,
                                                      known_at=known_at)
        report.sections.append(section)
    return report


def _shipments(state: LedgerState, country: str | None, as_of: dt.date) -> list[Any]:
    keys = state.by_country.get(country, ()) if country else state.shipments.keys()
    return [state.shipments[k] for k in keys if not state.shipments[k].voided
            and state.shipments[k].fields.ship_date <= as_of]


def _licenses(state: LedgerState, country: str, as_of: dt.date) -> list[LicenseLine]:
    shipped: dict[str, int] = defaultdict(int)
    for row in _shipments(state, country, as_of):
        auth = row.fields.authorization
        if auth.kind == "license" and auth.ref:
            shipped[auth.ref] += row.tpp
    lines = []
    for alloc_id in sorted(state.allocations_by_country.get(country, ())):
        a = state.allocations[alloc_id]
        if not a.is_license or a.valid_from > as_of:
            continue
        if a.in_force_on(as_of):
            status = "active"
        elif a.revoked_on is not None and a.revoked_on == a.end_day:
            status = f"revoked {a.revoked_on}"
        else:
            status = f"expired {a.valid_to}"
        lines.append(LicenseLine(alloc_id, a.holder or "", a.valid_from, a.valid_to,
                                 a.amount_on(as_of), shipped[alloc_id], status))
    return lines


def _lpp(state: LedgerState, country: str, as_of: dt.date, rule: RuleBook | None
         ) -> list[LppLine]:
    limit = rule.lpp_limit() if rule is not None else None
    if limit is None:
        return []
    consignees = {r.fields.consignee_id for r in _shipments(state, country, as_of)
                  if r.fields.authorization.kind == "lpp"
                  and r.fields.ship_date.year == as_of.year}
    lines = []
    for consignee in sorted(consignees):
        used = sum(state.shipments[k].tpp for k in state.by_consignee.get(consignee, ())
                   if not state.shipments[k].voided
                   and state.shipments[k].fields.authorization.kind == "lpp"
                   and state.shipments[k].fields.ship_date.year == as_of.year
                   and state.shipments[k].fields.ship_date <= as_of)
        if used >= LPP_NEAR * limit:
            lines.append(LppLine(consignee, as_of.year, used, limit))
    return sorted(lines, key=lambda line: -line.share)


def _veus(state: LedgerState, country: str, as_of: dt.date, rule: RuleBook | None
          ) -> list[VeuLine]:
    here: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for row in _shipments(state, None, as_of):
        auth = row.fields.authorization
        if auth.kind == "veu" and auth.ref:
            total[auth.ref] += row.tpp
            if row.fields.destination == country:
                here[auth.ref] += row.tpp
    lines = []
    for veu_id, veu in sorted(state.veus.items()):
        version = veu.version_on(as_of)
        if country not in version.covered_countries and not here[veu_id]:
            continue
        limit, basis = _veu_limit(veu.kind, version.limits, rule, as_of)
        lines.append(VeuLine(veu_id, version.entity, veu.kind, here[veu_id], total[veu_id],
                             limit, basis))
    return lines


def _veu_limit(kind: str, limits: Any, rule: RuleBook | None, as_of: dt.date
               ) -> tuple[int | None, str]:
    if limits.cap_tpp is not None:
        return limits.cap_tpp, "the authorization's own cap"
    if rule is None or rule.veu is None:
        return None, "no VEU limits under this revision"
    if kind == "national":
        for cap in sorted(rule.veu.national, key=lambda c: c.through):
            if as_of <= cap.through:
                return cap.tpp, f"{rule.id}: national VEU cap through {cap.through}"
        return None, f"{rule.id}: no national cap after the last period"
    u = rule.veu.universal
    if u is not None and limits.total_compute_tpp is not None:
        share = u.max_share_single_non_tier1
        return int(limits.total_compute_tpp * share), (
            f"{rule.id}: {share:.0%} of the entity's total compute in one non-tier-1 country")
    return None, "universal VEU without a declared total compute"


# --- rendering ---------------------------------------------------------------------------------


def _series(hist: History) -> tuple[list[dt.date], list[float], list[float | None]]:
    """Committed and cap at the end of each day with activity, in millions of TPP (the
    unit the rule states its cap in), as step points."""
    days: list[dt.date] = []
    committed: list[float] = []
    caps: list[float | None] = []
    for e in hist.entries:
        if days and days[-1] == e.date:
            committed[-1] = e.committed_tpp / 1e6
            caps[-1] = None if e.cap_tpp is None else e.cap_tpp / 1e6
            continue
        days.append(e.date)
        committed.append(e.committed_tpp / 1e6)
        caps.append(None if e.cap_tpp is None else e.cap_tpp / 1e6)
    return days, committed, caps


def render_chart(section: CountrySection, as_of: dt.date, rule_id: str | None,
                 compare_id: str | None) -> str:
    """Committed TPP over time against the cap, as an inline SVG string."""
    import matplotlib

    matplotlib.use("Agg")  # no display; also keeps the CLI usable over SSH
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "quota-ledger"  # stable ids: same input, same bytes
    matplotlib.rcParams["svg.fonttype"] = "path"  # glyphs as paths: no font fetch

    def x(day: dt.date) -> float:
        # matplotlib's own day numbers: typed floats instead of dates
        return float(mdates.date2num(day))  # type: ignore[no-untyped-call]

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    try:
        day_list, committed, caps = _series(section.history)
        days = [x(d) for d in day_list]
        if days:
            days.append(x(as_of))
            committed.append(committed[-1])
            caps.append(caps[-1])
        ax.step(days, committed, where="post", color="#1f5fa8", linewidth=2,
                label=f"committed under {rule_id or 'no revision'}")
        if any(c is not None for c in caps):
            ax.step(days, [float("nan") if c is None else c for c in caps], where="post",
                    color="#b03030", linestyle="--", linewidth=1.5, label="cap")
        if section.compare_history is not None:
            compare_days, cc, _ = _series(section.compare_history)
            cd = [x(d) for d in compare_days]
            if cd:
                cd.append(x(as_of))
                cc.append(cc[-1])
                ax.step(cd, cc, where="post", color="#888888", linewidth=1.2,
                        label=f"committed under {compare_id or 'no revision'} (in force)")
        breach = section.position.first_breach
        if breach is not None:
            ax.axvline(x(breach.date), color="#b03030", linewidth=1, alpha=0.6)
            ax.plot([x(breach.date)], [breach.committed_tpp / 1e6], marker="o",
                    color="#b03030")
            ax.annotate(f"first breach {breach.date}",
                        (x(breach.date), breach.committed_tpp / 1e6),
                        textcoords="offset points", xytext=(6, -14), fontsize=8,
                        color="#b03030")
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.1)  # headroom for the labels
        top = ax.get_ylim()[1]
        for mark in section.rule_marks:
            ax.axvline(x(mark.day), color="#6a3d9a", linestyle=":", linewidth=1)
            ax.text(x(mark.day), top * 0.97, " " + mark.label, rotation=90, va="top",
                    fontsize=7, color="#6a3d9a")
        ax.set_ylabel("million TPP")
        ax.set_title(f"{_named(section.country)}: committed TPP against the cap, to {as_of}",
                     fontsize=10)
        ax.xaxis_date()
        ax.xaxis.set_major_formatter(
            mdates.DateFormatter("%Y-%m"))  # type: ignore[no-untyped-call]
        ax.grid(True, alpha=0.3)
        # below the plot: inside it would hide the rule-change labels
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8,
                  frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML
    # the RDF metadata block only names namespaces by URL; drop it so the page holds
    # no URL but the SVG namespace itself
    return re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)


def _tpp(v: int | None) -> str:
    return "no cap" if v is None else f"{v:,}"


def _h100(v: int | None) -> str:
    return "" if v is None else f"{v / H100_TPP:,.1f}"


def _pct(share: float) -> str:
    return f"{share:.0%}"


def _bar(share: float) -> str:
    width = max(0.0, min(share, 1.0)) * 100
    cls = "over" if share > 1 else ("near" if share >= 0.8 else "ok")
    return (f'<div class="bar"><div class="fill {cls}" style="width:{width:.0f}%"></div>'
            f"</div> {_pct(share)}")


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222;
max-width:1100px}
h1{font-size:1.5em}h2{border-bottom:2px solid #1f5fa8;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em}th,td{padding:.25em .7em;
border-bottom:1px solid #ddd;text-align:left;font-size:.9em}td.n{text-align:right;
font-variant-numeric:tabular-nums}.meta{color:#555;font-size:.9em}.over-cap{color:#b03030;
font-weight:bold}.within-cap{color:#2b7a2b}.bar{display:inline-block;width:120px;height:.7em;
background:#eee;vertical-align:middle}.fill{height:100%}.fill.ok{background:#2b7a2b}
.fill.near{background:#d08a00}.fill.over{background:#b03030}.chart svg{max-width:100%;
height:auto}.none{color:#777;font-style:italic}
"""

# Run by the browser test: counts the charts that actually rendered (non-zero size)
# and records script errors, so a headless --dump-dom shows both.
CHECK_SCRIPT = """
window.addEventListener('error', function (e) {
  document.body.setAttribute('data-errors', (document.body.getAttribute('data-errors') || '')
    + e.message + ';');
});
window.addEventListener('load', function () {
  var n = 0;
  document.querySelectorAll('.chart svg').forEach(function (s) {
    var r = s.getBoundingClientRect(); if (r.width > 0 && r.height > 0) { n++; }
  });
  document.body.setAttribute('data-charts-rendered', String(n));
  var first = document.querySelector('.chart svg');
  if (first) {
    var r = first.getBoundingClientRect();
    document.body.setAttribute('data-first-chart', [r.left + window.scrollX,
      r.top + window.scrollY, r.width, r.height].map(Math.round).join(','));
  }
});
"""


def _named(country: str) -> str:
    """'Mexico (MX)': the name beside the ISO code."""
    return f"{country_name(country)} ({country})"


def render_html(report: Report, *, progress: Callable[[str], None] | None = None) -> str:
    """The whole report as one HTML document (no external resources). ``progress``
    is called with each country as its chart is drawn (the slow part)."""
    e = html.escape
    rule_id = report.rule.id if report.rule else None
    compare_id = report.in_force.id if report.in_force else None
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Quota report as of {report.as_of}</title>",
        f"<style>{CSS}</style><script>{CHECK_SCRIPT}</script></head><body>",
        f"<h1>AI-chip export quota report as of {report.as_of}</h1>",
        '<p class="meta">',
        f"Rule revision applied: <b>{e(rule_id or 'none in force')}</b>"
        + (f" (in force on {report.as_of}: {e(compare_id or 'none')})"
           if rule_id != compare_id else " (in force)") + "<br>",
        f"Computed at recorded position <b>{report.computed_at_position}</b>"
        + (f", head hash <code>{e(report.head_hash)}</code>" if report.head_hash else "")
        + f"; reproduce with <code>ledger report --as-of {report.as_of}"
        + (f" --rule {e(rule_id)}" if rule_id != compare_id and rule_id else "")
        + f" --known-at {report.computed_at_position}</code></p>",
    ]
    if not report.sections:
        parts.append('<p class="none">No tier-2 country has activity.</p>')
    parts.append("<ul>" + "".join(
        f'<li><a href="#c-{s.country}">{e(_named(s.country))}</a>: {s.position.status}</li>'
        for s in report.sections) + "</ul>")
    for s in report.sections:
        p = s.position
        parts.append(f'<section id="c-{s.country}"><h2>{e(_named(s.country))}</h2>')
        status = p.status + (f" by {_tpp(-(p.remaining_tpp or 0))} TPP"
                             if p.status == "over-cap" else "")
        parts.append(
            "<table><tr><th>cap</th><th>committed</th><th>remaining</th><th>status</th>"
            "<th>first breach</th></tr>"
            f'<tr><td class="n">{_tpp(p.cap_tpp)}</td>'
            f'<td class="n">{_tpp(p.committed_tpp)} ({_h100(p.committed_tpp)} H100e)</td>'
            f'<td class="n">{_tpp(p.remaining_tpp) if p.cap_tpp is not None else "—"}</td>'
            f'<td class="{p.status}">{e(status)}</td><td>'
            + (e(f"{p.first_breach.date}: " + (
                f"shipment {p.first_breach.exporter_id}/{p.first_breach.shipment_ref}"
                if p.first_breach.type == "shipment"
                else f"{p.first_breach.type} {p.first_breach.allocation_id}"))
               if p.first_breach else "—")
            + "</td></tr></table>")
        if progress is not None:
            progress(s.country)
        parts.append(f'<div class="chart">{render_chart(s, report.as_of, rule_id, compare_id)}'
                     "</div>")
        parts.append("<h3>Licenses</h3>")
        if s.licenses:
            parts.append("<table><tr><th>license</th><th>holder</th><th>valid</th>"
                         "<th>amount TPP</th><th>shipped TPP</th><th>depletion</th>"
                         "<th>status</th></tr>")
            for lic in s.licenses:
                parts.append(
                    f"<tr><td>{e(lic.allocation_id)}</td><td>{e(lic.holder)}</td>"
                    f"<td>{lic.valid_from}..{lic.valid_to or ''}</td>"
                    f'<td class="n">{_tpp(lic.amount)}</td><td class="n">{_tpp(lic.shipped)}'
                    f"</td><td>{_bar(lic.depletion)}</td><td>{e(lic.status)}</td></tr>")
            parts.append("</table>")
        else:
            parts.append('<p class="none">No licenses.</p>')
        parts.append(f"<h3>LPP consignees near their {report.as_of.year} limit "
                     f"(≥ {LPP_NEAR:.0%})</h3>")
        if s.lpp:
            parts.append("<table><tr><th>consignee</th><th>year</th><th>used TPP</th>"
                         "<th>limit TPP</th><th>share</th></tr>")
            for line in s.lpp:
                parts.append(f"<tr><td>{e(line.consignee_id)}</td><td>{line.year}</td>"
                             f'<td class="n">{_tpp(line.used)}</td><td class="n">'
                             f"{_tpp(line.limit)}</td><td>{_bar(line.share)}</td></tr>")
            parts.append("</table>")
        else:
            parts.append('<p class="none">None near the limit.</p>')
        parts.append("<h3>VEU usage</h3>")
        if s.veus:
            parts.append("<table><tr><th>VEU</th><th>entity</th><th>kind</th>"
                         f"<th>shipped to {s.country} TPP</th><th>shipped in all TPP</th>"
                         "<th>limit TPP</th><th>usage</th><th>limit basis</th></tr>")
            for v in s.veus:
                usage = _bar(v.used_total / v.limit) if v.limit else "—"
                parts.append(f"<tr><td>{e(v.veu_id)}</td><td>{e(v.entity)}</td>"
                             f"<td>{v.kind}</td><td class=\"n\">{_tpp(v.used_here)}</td>"
                             f'<td class="n">{_tpp(v.used_total)}</td><td class="n">'
                             f"{_tpp(v.limit) if v.limit else '—'}</td><td>{usage}</td>"
                             f"<td>{e(v.limit_basis)}</td></tr>")
            parts.append("</table>")
        else:
            parts.append('<p class="none">No VEU covers this country.</p>')
        if s.compare is not None:
            c = s.compare
            parts.append(f"<h3>Replay comparison: {e(rule_id or '')} against "
                         f"{e(compare_id or 'no revision')} (in force)</h3>")
            parts.append("<table><tr><th></th><th>cap</th><th>committed</th>"
                         "<th>remaining</th><th>status</th><th>first breach</th></tr>")
            for label, q in ((rule_id, p), (f"{compare_id} (in force)", c)):
                parts.append(
                    f"<tr><td>{e(str(label))}</td><td class=\"n\">{_tpp(q.cap_tpp)}</td>"
                    f'<td class="n">{_tpp(q.committed_tpp)}</td><td class="n">'
                    f"{_tpp(q.remaining_tpp) if q.cap_tpp is not None else '—'}</td>"
                    f'<td class="{q.status}">{q.status}</td><td>'
                    f"{q.first_breach.date if q.first_breach else '—'}</td></tr>")
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
