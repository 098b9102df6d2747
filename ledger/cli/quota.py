"""``ledger quota``: a country's quota position on a date, as known at a moment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from ledger.cli.common import COUNTRY, DATE, open_ledger, require_rules
from ledger.cli.output import (
    STATUS_STYLE,
    Col,
    console,
    fit_table,
    h100,
    print_fitted,
    print_json,
    tpp,
    tpp_h100,
)
from ledger.countries import country_name

#: above this many items, --explain sums shipments per exporter and consignee
EXPLAIN_AGGREGATE_OVER = 50


@click.command()
@click.option("--country", "-c", type=COUNTRY, help="ISO 3166-1 alpha-2 code, e.g. MX.")
@click.option("--all", "all_", is_flag=True, help="Every country with activity.")
@click.option("--tier", type=click.IntRange(1, 3), help="With --all: only this tier.")
@click.option("--as-of", type=DATE, required=True, help="Effective date of the position.")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--rule", "rule_id", help="Apply this rule revision to every date "
                                         "(counterfactual) instead of the one in force.")
@click.option("--rule-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Apply a draft rule that is not in the ledger (a draft instrument or a "
                   "whole rule book, validated like 'rules load'); nothing is written. "
                   "The answer names the file and its SHA-256.")
@click.option("--on-the-books", "books", is_flag=True,
              help="Follow the legal text instead of enforcement: the revision on the "
                   "books on --as-of, enforced or not (e.g. ai-diffusion-2025 after its "
                   "2025-05-13 non-enforcement).")
@click.option("--explain", type=click.Choice(["summary", "full"]), is_flag=False,
              flag_value="summary",
              help="With --country: list what the position is made of, each item with "
                   "the amount it adds and the clause (and citation) that made it count. "
                   f"Over {EXPLAIN_AGGREGATE_OVER} items, shipments are summed per "
                   "exporter and consignee; --explain=full lists every one.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--wide", is_flag=True, help="With --all: every column, however narrow the "
                                          "terminal (default: drop H100e, flagged, first "
                                          "breach, tier in that order to fit).")
@click.pass_context
def quota(ctx: click.Context, country: str | None, all_: bool, tier: int | None,
          as_of: dt.date, known_at: str | None, rule_id: str | None,
          rule_file: Path | None, books: bool, explain: str | None, as_json: bool,
          wide: bool) -> None:
    """Cap, committed, remaining and status of a country's quota on a date.

    \b
    Without --rule the revision in force on --as-of applies; with --rule that
    revision applies (what-if). --known-at answers as the ledger stood at a past
    recorded position or time.

    \b
    Examples:
      ledger quota --country MX --as-of 2025-06-30
      ledger quota --country MX --as-of 2025-06-30 --rule ai-diffusion-2025 --json
      ledger quota --all --as-of 2025-06-30 --known-at 2025-07-01T00:00:00Z
      ledger quota --country MX --as-of 2025-06-30 --on-the-books --explain
      ledger quota --all --tier 2 --as-of 2026-06-30 --rule-file draft.yaml
      ledger quota --all --as-of 2025-06-30 --wide      # every column, however narrow
    """

    if (country is None) == (not all_):
        raise click.UsageError("give exactly one of --country CC or --all")
    if tier is not None and country is not None:
        raise click.UsageError("--tier filters --all; with --country it would be ignored")
    if books and rule_id is not None:
        raise click.UsageError(f"--on-the-books and --rule {rule_id!r} both choose the "
                               "revision: give one")
    chosen = [o for o, v in (("--rule", rule_id), ("--rule-file", rule_file),
                             ("--on-the-books", books)) if v]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} all choose the revision: give one")
    drafted: list[Any] = []
    draft = None
    if rule_file is not None:
        draft = _draft_rule(rule_file, drafted)
    if explain is not None and country is None:
        raise click.UsageError("--explain needs --country CC (one position at a time)")
    past = known_at.strip() if known_at is not None else None
    if (as_json and country is not None and explain is None and draft is None
            and (past is None or (past.isascii() and past.isdigit()))):
        # the common question, answered from the position index on a bare connection
        # (no Ledger application, no pydantic); None: the full path below answers
        from projections.position_index import lookup_database

        indexed = lookup_database(ctx.obj["db"], country, as_of, rule_id=rule_id,
                                  on_the_books=books,
                                  known_at=None if past is None else int(past))
        if indexed is not None:
            print_json(indexed)
            return
    from projections.views import readmodel_quota, readmodel_quota_all

    ledger = open_ledger(ctx)
    require_rules(ledger)
    position = ledger.resolve_known_at(known_at)
    # answered from the read model (caught up first), not by replaying the log
    if country is not None:
        p = readmodel_quota(ledger, country, as_of, rule_id=rule_id, known_at=position,
                            explain=explain is not None, on_the_books=books, draft=draft)
        lineage = None
        if explain is not None:
            lineage = explain_items(p.contributions or [], full=explain == "full")
        if as_json:
            data = p.model_dump(mode="json", exclude_none=False, exclude={"contributions"})
            if lineage is not None:
                data["contributions"] = lineage
            if drafted:
                data["draft"] = drafted[0].describe()
            print_json(data)
        else:
            if drafted:
                click.echo(drafted[0].line())
            _print_position(p)
            if lineage is not None:
                _print_lineage(lineage)
        return
    positions = readmodel_quota_all(ledger, as_of, rule_id=rule_id, known_at=position,
                                    tier=tier, on_the_books=books, draft=draft)
    if as_json:
        rows = [p.model_dump(mode="json", exclude={"contributions"}) for p in positions]
        if drafted:  # every row carries the draft it was computed under
            rows = [{**r, "draft": drafted[0].describe()} for r in rows]
        print_json(rows)
        return
    if drafted:
        click.echo(drafted[0].line())
    print_table(positions, title=f"Quota positions as of {as_of}", wide=wide)


def _draft_rule(path: Path, drafted: list[Any]) -> Any:
    """A DraftRule for the views: validates the file against the state's revisions
    and keeps the Draft in ``drafted`` for the output."""
    from ledger.drafts import load_draft

    data = path.read_bytes()

    def build(state: Any) -> Any:
        draft = load_draft(data, str(path), state.rule_books())
        drafted[:] = [draft]
        return draft.book

    return build


def explain_items(contributions: list[Any], *, full: bool) -> list[dict[str, Any]]:
    """The lineage as JSON-ready rows, in fold order (effective date, then recorded).

    Allocations are always listed one by one. With more than
    ``EXPLAIN_AGGREGATE_OVER`` items and not ``full``, shipments are summed per
    exporter, consignee and deciding clause (a group never mixes clauses, so its
    citation stays exact); each group sits where its first shipment was."""
    rows = [c.model_dump(mode="json") for c in contributions]
    if full or len(rows) <= EXPLAIN_AGGREGATE_OVER:
        return rows
    out: list[dict[str, Any]] = []
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if r["kind"] != "shipment":
            out.append(r)
            continue
        key = (r["exporter_id"], r["consignee_id"], r["bucket"], r["flag"], r["clause"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "kind": "shipments", "exporter_id": r["exporter_id"],
                "consignee_id": r["consignee_id"], "bucket": r["bucket"], "flag": r["flag"],
                "clause": r["clause"], "citation": r["citation"],
                "instrument": r.get("instrument"), "count": 0, "tpp": 0,
                "committed_delta": 0, "first_date": r["date"], "last_date": r["date"],
            }
            out.append(g)
        g["count"] += 1
        g["tpp"] += r["tpp"]
        g["committed_delta"] += r["committed_delta"]
        g["last_date"] = max(g["last_date"], r["date"])
    return out


#: the --explain table: nothing dropped, the item and the clause wrap
LINEAGE_COLUMNS = [
    Col("date", wrap=True), Col("item", wrap=True), Col("TPP", "right"),
    Col("Δ committed", "right"), Col("clause", wrap=True),
]


def _print_lineage(rows: list[dict[str, Any]]) -> None:
    from rich import box

    out = console()
    out.print("What the position is made of")
    cited: dict[str, tuple[str, str | None]] = {}
    cells: list[list[str]] = []
    for r in rows:
        if r["kind"] == "shipments":
            when = (r["first_date"] if r["first_date"] == r["last_date"]
                    else f"{r['first_date']} .. {r['last_date']}")
            item = f"{r['count']} shipments {r['exporter_id']} → {r['consignee_id']}"
        else:
            when = r["date"]
            item = f"{r['kind']} {r['identity']}"
            if r.get("cap_delta"):
                item += f" (cap {r['cap_delta']:+,})"
        clause = r["clause"] + (f" ({r['flag']})" if r["flag"] else "")
        cited[r["clause"]] = (r["citation"], r.get("instrument"))
        cells.append([str(when), item, tpp(r["tpp"]), f"{r['committed_delta']:+,}", clause])
    style: dict[str, Any] = {"box": box.SIMPLE_HEAD, "pad_edge": False}
    if cells:
        _table, need, _ = fit_table(LINEAGE_COLUMNS, cells, width=out.width, **style)
        if need <= out.width:
            print_fitted(out, LINEAGE_COLUMNS, cells, **style)
        else:
            # long ids: the clause goes on a line of its own under the item
            narrow = [Col("date", wrap=True), Col("item / clause", wrap=True),
                      Col("TPP", "right"), Col("Δ committed", "right")]
            print_fitted(out, narrow, [[c[0], f"{c[1]}\n  {c[4]}", c[2], c[3]]
                                       for c in cells], **style)
    else:
        out.print("  nothing contributes to this position")
    for clause, (citation, instrument) in sorted(cited.items()):
        by = f" (instrument {instrument})" if instrument else ""
        out.print(f"  {clause}{by}: {citation}", soft_wrap=True)


def status_text(p: Any) -> str:
    """The status as shown; outside the cap period, with the period's dates."""
    if p.status == "outside-cap-period" and p.cap_period is not None:
        return f"outside-cap-period ({p.cap_period.start}..{p.cap_period.end})"
    return str(p.status)


def _print_position(p: Any) -> None:
    out = console()
    rule = p.rule or "no rule revision in force"
    known = "everything recorded" if p.known_at is None else f"known at position {p.known_at}"
    out.print(f"[bold]{country_name(p.country)} ({p.country})[/bold] as of {p.as_of}, "
              f"rule {rule}, tier {p.tier if p.tier is not None else '—'}, {known}",
              soft_wrap=True)
    if p.status == "outside-cap-period":
        out.print(f"  cap        — (the rule's cap of {tpp(p.breakdown.get('rule_cap_tpp'))} TPP "
                  f"runs {p.cap_period.start}..{p.cap_period.end})", soft_wrap=True)
    else:
        out.print(f"  cap        {tpp_h100(p.cap_tpp)}")
    out.print(f"  committed  {tpp_h100(p.committed_tpp)}")
    out.print(f"  remaining  {tpp_h100(p.remaining_tpp) if p.cap_tpp is not None else '—'}")
    style = STATUS_STYLE[p.status]
    status = p.status
    if p.status == "over-cap":
        status += f" by {tpp(-p.remaining_tpp)} TPP"
    out.print(f"  status     [{style}]{status_text(p)}[/{style}]" if p.status != "over-cap"
              else f"  status     [{style}]{status}[/{style}]")
    if p.first_breach is not None:
        b = p.first_breach
        who = (f"shipment {b.exporter_id}/{b.shipment_ref}" if b.type == "shipment"
               else f"{b.type} {b.allocation_id}")
        out.print(f"  first breach {b.date}: {who} (committed {tpp(b.committed_tpp)} > "
                  f"cap {tpp(b.cap_tpp)})", soft_wrap=True)
    for flag, total in p.flagged.items():
        out.print(f"  flagged {flag}: {total.count} shipments, {tpp_h100(total.tpp)}")
    out.print(f"[dim]computed at recorded position {p.computed_at_position}; rerun with "
              f"--known-at {p.computed_at_position} to reproduce[/dim]")


#: short names of the flags in the --all table (the legend is printed below it)
FLAG_ABBREVIATIONS = {
    "unlicensed": "unl", "prohibited": "proh", "lpp-excess": "lppx",
    "license-excess": "licx", "license-invalid": "licinv", "veu-invalid": "veuinv",
}


#: the --all table's columns; ``drop`` is the order they go when the terminal is narrow
ALL_COLUMNS = [
    Col("country"), Col("tier", "right", drop=4), Col("cap", "right"),
    Col("committed", "right"), Col("H100e", "right", drop=1), Col("remaining", "right"),
    Col("status"), Col("first breach", drop=3), Col("flagged", drop=2, wrap=True),
]


def print_table(positions: list[Any], *, title: str, wide: bool = False) -> None:
    """One row per country, exact TPP; the rule goes in the title (one query, one
    rule). Narrow terminals drop H100e, flagged, first breach, tier in that order."""
    from rich import box

    rules = sorted({p.rule or "no rule in force" for p in positions})
    rows = []
    for p in positions:
        style = STATUS_STYLE[p.status]
        breach = ""
        if p.first_breach is not None:
            b = p.first_breach
            breach = f"{b.date} {b.exporter_id}/{b.shipment_ref}" if b.type == "shipment" \
                else f"{b.date} {b.allocation_id}"
        flags = " ".join(f"{FLAG_ABBREVIATIONS.get(k, k)}:{v.count}"
                         for k, v in p.flagged.items())
        rows.append([p.country, str(p.tier or "—"), tpp(p.cap_tpp), tpp(p.committed_tpp),
                     h100(p.committed_tpp), tpp(p.remaining_tpp),
                     f"[{style}]{status_text(p)}[/{style}]", breach, flags])
    out = console()
    out.print(f"[bold]{title}[/bold], rule {', '.join(rules) or '—'}", soft_wrap=True)
    dropped = print_fitted(out, ALL_COLUMNS, rows, wide=wide, box=box.SIMPLE_HEAD,
                           pad_edge=False)
    out.print("TPP; H100e = committed / 15,832" if "H100e" not in dropped else "TPP",
              soft_wrap=True)
    used = sorted({k for p in positions for k in p.flagged})
    if used and "flagged" not in dropped:
        out.print("flagged: " + ", ".join(f"{FLAG_ABBREVIATIONS.get(k, k)} = {k}"
                                          for k in used) + " (shipments)", soft_wrap=True)
    if positions:
        out.print(f"[dim]computed at recorded position {positions[0].computed_at_position}[/dim]")
