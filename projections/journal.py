"""The quota fold as a double-entry journal (beancount syntax), for independent rechecks.

An auditor should be able to recheck the ledger's totals with a tool they already
trust. This renders, for every country with a cap under the chosen rule revision, the
fold of ``projections.positions`` as beancount transactions in a ``TPP`` commodity:

    Equity:Rules:<rule>          the revision's cap comes from here
    Equity:Allocations           country-level allocations (cap increases)
    Equity:LppLimits             each consignee's yearly LPP limit
    Equity:Uncapped              shipments that count against no cap (VEU, tier 1, ...)
    Assets:Cap:<CC>              what is left of the country cap (its balance = remaining)
    Assets:License:<CC>:<id>     what is left of a license allocation
    Assets:Lpp:<consignee>:Y<yr> what is left of a consignee's LPP year
    Expenses:Shipped:<CC>:<bucket>  TPP shipped, by how it counted

Every shipment is one balanced transaction carrying its recorded position, and the
journal ends with ``balance`` assertions computed independently of the postings (the
fold's remaining, license amount minus shipped, LPP limit minus used). Changing one
shipment's amount either unbalances its transaction or breaks an assertion, and
``bean-check`` says so. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from ledger.rulebook import RuleBook
from projections.positions import Contribution, Position, country_position
from projections.state import LedgerState

COMMODITY = "TPP"


def account_part(text: str) -> str:
    """A beancount account component from an id: letters, digits and dashes, starting
    with a capital letter or digit."""
    part = re.sub(r"[^A-Za-z0-9-]", "-", text)
    part = part[:1].upper() + part[1:]
    if not part or not part[0].isalnum():
        part = "X" + part
    return part


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', "'") + '"'


def _txn(day: dt.date, narration: str, postings: list[tuple[str, int]],
         meta: dict[str, str | int]) -> list[str]:
    lines = [f"{day.isoformat()} * {_quote(narration)}"]
    lines += [f"  {k}: {_quote(v) if isinstance(v, str) else v}" for k, v in meta.items()]
    lines += [f"  {acct:<60} {amount:>22} {COMMODITY}" for acct, amount in postings if amount]
    return lines


def journal(state: LedgerState, rule: RuleBook, as_of: dt.date, *,
            known_at: int | None = None) -> str:
    """The beancount journal of every capped country's position on ``as_of`` under
    ``rule``, as known at ``known_at``. Returns the text."""
    positions: list[Position] = []
    for country in state.countries_with_activity():
        p = country_position(state, country, as_of, rule, known_at=known_at, explain=True)
        if p.cap_tpp is not None:
            positions.append(p)
    limit = rule.lpp_limit()
    rule_acct = f"Equity:Rules:{account_part(rule.id)}"
    entries: list[tuple[dt.date, int, list[str]]] = []
    accounts: set[str] = {rule_acct, "Equity:Allocations", "Equity:LppLimits",
                          "Equity:Uncapped"}
    balances: dict[str, int] = {}
    lpp_used: dict[str, int] = defaultdict(int)
    lpp_opened: set[str] = set()
    period = rule.cap_period()
    # a shipment contribution carries the ShipmentRecorded position: find its license
    licenses = {row.position: row.fields.authorization.ref for row in state.shipments.values()
                if row.fields.authorization.kind == "license"}
    for p in positions:
        cc = p.country
        cap_acct = f"Assets:Cap:{cc}"
        accounts.add(cap_acct)
        base = p.breakdown.get("rule_cap_tpp", 0)
        first = min([c.date for c in p.contributions or []] +
                    ([period.start] if period else []), default=as_of)
        entries.append((first, 0, _txn(first, f"{cc} cap under {rule.id}",
                                       [(cap_acct, base), (rule_acct, -base)],
                                       {"rule": rule.id})))
        shipped: dict[str, int] = defaultdict(int)
        for c in p.contributions or []:
            lines, extra = _contribution(c, cc, cap_acct, lpp_opened, shipped, licenses)
            accounts.update(a for a, _ in extra)
            entries.append((c.date, c.position, lines))
            if c.kind == "shipment" and c.bucket == "lpp" and c.consignee_id:
                lpp_used[_lpp_account(c.consignee_id, c.date.year)] += c.tpp
        balances[cap_acct] = p.remaining_tpp or 0
        for alloc_id in state.allocations_by_country.get(cc, ()):
            a = state.allocations[alloc_id]
            if not a.is_license or a.valid_from > as_of:
                continue
            acct = f"Assets:License:{cc}:{account_part(alloc_id)}"
            balances[acct] = (max(a.amount_on(as_of) - shipped[alloc_id], 0)
                              if a.in_force_on(as_of) else 0)
    entries.extend(_lpp_openings(lpp_opened, limit))
    for acct, used in lpp_used.items():
        balances[acct] = (limit or 0) - min(used, limit or 0)
    accounts |= set(balances)

    opened = min([e[0] for e in entries], default=as_of)
    out = [
        f"; quota-ledger journal: rule {rule.id}, as of {as_of}, "
        + ("everything recorded" if known_at is None else f"known at position {known_at}"),
        "; computed at recorded position "
        f"{state.position if known_at is None else min(known_at, state.position)}",
        f'option "title" {_quote(f"quota-ledger {rule.id} as of {as_of}")}',
        f'option "operating_currency" "{COMMODITY}"',
        "",
        f"{opened.isoformat()} commodity {COMMODITY}",
    ]
    out += [f"{opened.isoformat()} open {a} {COMMODITY}" for a in sorted(accounts)]
    out.append("")
    # same-day order: the fold's order (position), so the journal reads like the fold
    for _day, _pos, lines in sorted(entries, key=lambda e: (e[0], e[1])):
        out += lines
        out.append("")
    check_day = as_of + dt.timedelta(days=1)  # beancount checks at the start of the day
    for acct in sorted(balances):
        out.append(f"{check_day.isoformat()} balance {acct:<60} {balances[acct]:>22} "
                   f"{COMMODITY}")
    return "\n".join(out) + "\n"


def _lpp_account(consignee: str, year: int) -> str:
    return f"Assets:Lpp:{account_part(consignee)}:Y{year}"


def _lpp_openings(opened: set[str], limit: int | None
                  ) -> list[tuple[dt.date, int, list[str]]]:
    """The yearly limit of each consignee-year used, granted on 1 January."""
    new = []
    for acct in sorted(opened):
        day = dt.date(int(acct.rsplit(":Y", 1)[1]), 1, 1)
        new.append((day, -1, _txn(day, f"LPP limit {acct}",
                                  [(acct, limit or 0), ("Equity:LppLimits", -(limit or 0))],
                                  {})))
    return new


def _contribution(c: Contribution, cc: str, cap_acct: str, lpp_opened: set[str],
                  shipped: dict[str, int], licenses: dict[int, str | None]
                  ) -> tuple[list[str], list[tuple[str, int]]]:
    meta: dict[str, str | int] = {"position": c.position, "clause": c.clause}
    if c.kind == "shipment":
        out = f"Expenses:Shipped:{cc}:{account_part(c.bucket)}"
        postings: list[tuple[str, int]] = [(out, c.tpp)]
        rest = c.tpp - c.committed_delta  # the part not taken from the cap
        if c.bucket == "license":
            lic = licenses.get(c.position) or "unknown"
            shipped[lic] += c.tpp
            postings.append((f"Assets:License:{cc}:{account_part(lic)}", -rest))
            postings.append((cap_acct, -c.committed_delta))
        elif c.bucket == "lpp" and c.consignee_id:
            acct = _lpp_account(c.consignee_id, c.date.year)
            lpp_opened.add(acct)
            postings.append((acct, -rest))
            postings.append((cap_acct, -c.committed_delta))
        elif c.bucket == "none" and c.clause == "tier2-license":
            # under a valid license but dated outside the cap period: it uses the
            # license's amount (committed_delta: what the license can no longer ship)
            # and reaches the cap with nothing
            lic = licenses.get(c.position) or "unknown"
            shipped[lic] += c.tpp
            postings.append((f"Assets:License:{cc}:{account_part(lic)}", c.committed_delta))
            postings.append((cap_acct, -c.committed_delta))
            postings.append(("Equity:Uncapped", -c.tpp))
        elif c.committed_delta:
            postings.append((cap_acct, -c.committed_delta))
            if rest:
                postings.append(("Equity:Uncapped", -rest))
        else:
            postings.append(("Equity:Uncapped", -c.tpp))
        if c.flag:
            meta["flag"] = c.flag
        return _txn(c.date, f"shipment {c.identity}", postings, meta), postings
    if c.kind == "license":
        acct = f"Assets:License:{cc}:{account_part(c.identity)}"
        postings = [(acct, c.committed_delta), (cap_acct, -c.committed_delta)]
        return _txn(c.date, f"license {c.identity}: {c.detail}", postings, meta), postings
    postings = [(cap_acct, c.cap_delta), ("Equity:Allocations", -c.cap_delta)]
    return _txn(c.date, f"allocation {c.identity}: {c.detail}", postings, meta), postings

