"""``ledger replay``: what-if of a rule revision against the shipments that happened.

Reads only: the state as known at ``--known-at`` comes from the read model (caught
up first, like ``ledger quota``: its tables, not a decode of every event) and both
lanes are computed by ``projections.replay``; nothing is ever appended to the log.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ledger.cli.common import DATE, open_ledger, require_rules
from ledger.cli.output import (
    STATUS_STYLE,
    Col,
    console,
    echo_json_stream,
    print_fitted,
    progress,
    tpp,
)


@click.command()
@click.option("--rule", "rule_id",
              help="The revision to replay, e.g. ai-diffusion-2025.")
@click.option("--rule-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replay a draft rule that is not in the ledger instead of --rule (a "
                   "draft instrument layered on the revision in force, or a whole rule "
                   "book; validated like 'rules load'). Nothing is written; the output "
                   "names the file and its SHA-256.")
@click.option("--against", default="in-force", show_default=True,
              help="A rule id, 'in-force' (the revision in force on each shipment's "
                   "date) or 'on-the-books' (the one whose legal text governed it).")
@click.option("--from", "window_from", type=DATE,
              help="First ship date compared (default: the first in the ledger).")
@click.option("--to", "window_to", type=DATE,
              help="Last ship date compared, and the as-of date of the positions "
                   "(default: the last ship date in the ledger).")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (byte-identical for "
                                                       "the same ledger and options).")
@click.option("--csv", "as_csv", type=click.Choice(["countries", "changes"]),
              is_flag=False, flag_value="countries",
              help="Print CSV: the per-country comparison (--csv) or the shipments "
                   "that change treatment (--csv=changes).")
@click.option("--limit", type=click.IntRange(0), default=30, show_default=True,
              help="Shipment changes listed in the terminal (0: all); --json and "
                   "--csv always list all.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--engine", type=click.Choice(["auto", "columnar", "rows"]), default="auto",
              show_default=True,
              help="columnar: numpy over typed columns of the shipments (fast, little "
                   "memory); rows: the per-shipment fold. Same output. auto: columnar, "
                   "handing over to rows for a ledger it does not model.")
@click.option("--wide", is_flag=True, help="Every column, however narrow the terminal "
                                          "(default: drop Δ committed, first breach, tier, "
                                          "status in that order to fit).")
@click.pass_context
def replay(ctx: click.Context, rule_id: str | None, rule_file: Path | None, against: str,
           window_from: dt.date | None,
           window_to: dt.date | None, known_at: str | None, as_json: bool,
           as_csv: str | None, limit: int, quiet: bool, engine: str, wide: bool) -> None:
    """Replay a rule revision against past shipments and compare, side by side.

    \b
    Every shipment shipped by --to is treated under --rule and under --against.
    Per country: tier, cap, committed, remaining, status and the first breach
    under each, and the difference. Per shipment whose treatment changes: who,
    when, where, TPP, the treatment under each and the clause (with citation)
    that decided it. Totals last. Never writes to the ledger.

    \b
    Positions are as of --to and include every shipment up to it (caps are
    cumulative); --from only narrows the shipments compared one by one.
    With --against in-force each shipment and allocation is treated under the
    revision in force on its own date, and caps and tiers come from the revision
    in force on --to (on-the-books: likewise, following the legal text).

    \b
    Examples:
      ledger replay --rule ai-diffusion-2025
      ledger replay --rule ai-diffusion-2025 --from 2025-05-15 --to 2025-12-31 --json
      ledger replay --rule ai-diffusion-2025 --against baseline-2023 --csv=changes
      ledger replay --rule-file draft.yaml --to 2026-06-30
    """
    from projections.readmodel import ReadModel

    ledger = open_ledger(ctx)
    require_rules(ledger)
    position = ledger.resolve_known_at(known_at)
    # the read model's rows give the same state as folding the log (checked by the
    # read-model equivalence tests) without decoding every event: the full decode was
    # a third of a replay's time and held every event's pydantic model in memory
    rm = ReadModel(ledger)
    rm.catch_up()
    if (rule_id is None) == (rule_file is None):
        raise click.UsageError("give exactly one of --rule ID or --rule-file FILE")
    bar, task = progress(None, "replaying", quiet=quiet or as_json or as_csv is not None)

    def on_progress(total: int, done: int) -> None:
        bar.update(task, total=total, completed=done)

    # The state and the replay build millions of long-lived, acyclic objects (rows,
    # treatments, outcomes); the cyclic collector kept traversing all of them as they
    # grew, ~20% of the time at 1M shipments (state 15 -> 9 s, engine 80 -> 68 s).
    # Nothing here makes cycles worth collecting, and the collector is back on after.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        request = ReplayRequest(rule_id, rule_file, against, window_from, window_to, position)
        result, draft = None, None
        if engine != "rows":
            result, draft = columnar_replay(rm, request, forced=engine == "columnar")
        if result is None:
            with bar:
                result, draft = rows_replay(rm, request, on_progress)
    finally:
        if gc_was_enabled:
            gc.enable()
    if as_json:
        # the same text as print_json(result.model_dump(mode="json")), streamed: the
        # shipment changes are most of it and are written from their dataclasses
        head = result.model_dump(mode="json", exclude={"changes"})
        if draft is not None:
            head["draft"] = draft.describe()
        echo_json_stream(head, "changes", result.changes, encode=_change_encoder(result))
    elif as_csv == "changes":
        click.echo(changes_csv(result), nl=False)
    elif as_csv == "countries":
        click.echo(countries_csv(result), nl=False)
    else:
        if draft is not None:
            click.echo(draft.line())
        print_result(result, limit=limit, wide=wide)


@dataclass(frozen=True)
class ReplayRequest:
    rule_id: str | None
    rule_file: Path | None
    against: str
    window_from: dt.date | None
    window_to: dt.date | None
    known_at: int | None


def _draft(request: ReplayRequest, state: Any) -> Any:
    if request.rule_file is None:
        return None
    from ledger.drafts import load_draft

    return load_draft(request.rule_file.read_bytes(), str(request.rule_file),
                      state.rule_books())


def columnar_replay(rm: Any, request: ReplayRequest, *, forced: bool) -> tuple[Any, Any]:
    """The columnar engine's result (and the draft, if any); (None, None) when the
    ledger holds a case it does not model and ``forced`` is false: the caller then
    runs the per-shipment engine. Forced, such a case is an error naming it."""
    from projections.columns import ColumnsUnsupported
    from projections.replay_columnar import Unsupported, replay_columns

    try:
        state, cols = rm.shipment_columns(request.known_at)
        draft = _draft(request, state)
        rule_id = request.rule_id if draft is None else draft.book.id
        assert rule_id is not None
        result = replay_columns(
            state, cols, rule_id, request.against, window_from=request.window_from,
            window_to=request.window_to, known_at=request.known_at,
            drafts=None if draft is None else {rule_id: draft.book})
    except (ColumnsUnsupported, Unsupported) as e:
        if forced:
            raise click.ClickException(f"--engine columnar: {e}") from e
        return None, None
    return result, draft


def rows_replay(rm: Any, request: ReplayRequest, on_progress: Any) -> tuple[Any, Any]:
    """The per-shipment engine over the read model's full state."""
    from projections.replay import replay as run_replay

    state = rm.full_state(request.known_at)
    draft = _draft(request, state)
    rule_id = request.rule_id if draft is None else draft.book.id
    assert rule_id is not None
    result = run_replay(state, rule_id, request.against, window_from=request.window_from,
                        window_to=request.window_to, known_at=request.known_at,
                        progress=on_progress,
                        drafts=None if draft is None else {rule_id: draft.book})
    return result, draft


def _change_encoder(result: Any) -> Any:
    """The columnar replay's fast encoder of its changes (None: the general one)."""
    from projections.replay_columnar import ChangeRows

    if not isinstance(result.changes, ChangeRows):
        return None
    from ledger.cli.replay_json import ChangeEncoder

    return ChangeEncoder(result.changes)


def _breach(b: Any) -> str:
    if b is None:
        return ""
    who = f"{b.exporter_id}/{b.shipment_ref}" if b.type == "shipment" else b.allocation_id
    return f"{b.date} {who}"


def _signed(value: int | None) -> str:
    return "—" if value is None else f"{value:+,}"


def countries_csv(result: Any) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["country", "lane", "rule", "tier", "cap_tpp", "committed_tpp",
                "remaining_tpp", "status", "first_breach_date", "first_breach",
                "committed_difference_tpp", "status_changed"])
    for c in result.countries:
        for lane, label in (("rule", result.rule), ("against", result.against)):
            p = getattr(c, lane)
            b = p.first_breach
            w.writerow([c.country, lane, label, p.tier or "", _blank(p.cap_tpp),
                        p.committed_tpp, _blank(p.remaining_tpp), p.status,
                        b.date if b else "", _breach(b).partition(" ")[2] if b else "",
                        c.committed_difference_tpp, c.status_changed])
    return buf.getvalue()


def changes_csv(result: Any) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["exporter_id", "shipment_ref", "ship_date", "destination", "consignee_id",
                "tpp", "rule", "rule_treatment", "rule_counted_tpp", "rule_clause",
                "rule_citation", "against", "against_treatment", "against_counted_tpp",
                "against_clause", "against_citation"])
    for ch in result.changes:
        w.writerow([ch.exporter_id, ch.shipment_ref, ch.ship_date, ch.destination,
                    ch.consignee_id, ch.tpp,
                    ch.rule.rule or "", ch.rule.treatment, ch.rule.counted_tpp,
                    ch.rule.clause, ch.rule.citation,
                    ch.against.rule or "", ch.against.treatment, ch.against.counted_tpp,
                    ch.against.clause, ch.against.citation])
    return buf.getvalue()


def _blank(value: int | None) -> Any:
    return "" if value is None else value


_WORD = {"over-cap": "OVER", "within-cap": "within", "no-cap": "no cap",
         "outside-cap-period": "outside period"}


def _status(status: str) -> str:
    return f"[{STATUS_STYLE[status]}]{_WORD[status]}[/{STATUS_STYLE[status]}]"


def _some(codes: list[str], most: int = 20) -> str:
    """Country codes for a line of text: the first ``most``, then how many more."""
    more = f" … (+{len(codes) - most})" if len(codes) > most else ""
    return ", ".join(codes[:most]) + more


#: the per-country table; ``drop`` is the order columns go when the terminal is narrow
COUNTRY_COLUMNS = [
    Col("country"), Col("tier", "right", drop=3), Col(""), Col("cap", "right"),
    Col("committed", "right"), Col("remaining", "right"), Col("status", drop=4),
    Col("first breach", drop=2), Col("Δ committed", "right", drop=1),
]
#: the shipments whose treatment changes
CHANGE_COLUMNS = [
    Col("date", drop=3), Col("exporter/ref"), Col("to", drop=2), Col("TPP", "right"),
    Col("under A \\[clause]", wrap=True), Col("under B \\[clause]", wrap=True),
    Col("B revision", drop=1),
]


def print_result(result: Any, *, limit: int, wide: bool = False) -> None:
    """The replay as a user reads it: two rows per country (A = --rule, B = --against),
    then the shipments that change treatment with the deciding clauses listed below."""
    from rich import box

    out = console()
    a, b = result.rule, result.against
    caps = f", caps from {result.against_caps_from}" if result.against_caps_from else ""
    out.print(f"[bold]Replay[/bold] A = {a}  vs  B = {b}{caps}")
    out.print(f"shipments {result.window_from or '—'}..{result.window_to or '—'}, "
              f"positions as of {result.window_to or '—'}, TPP")
    rows: list[list[str]] = []
    sections: list[bool] = []
    for c in result.countries:
        for lane, p in (("A", c.rule), ("B", c.against)):
            first = lane == "A"
            rows.append([c.country if first else "", str(p.tier or "—"), lane,
                         tpp(p.cap_tpp), tpp(p.committed_tpp), tpp(p.remaining_tpp),
                         _status(p.status), _breach(p.first_breach),
                         _signed(c.committed_difference_tpp) if first else ""])
            sections.append(not first)
    style: dict[str, Any] = {"box": box.SIMPLE_HEAD, "pad_edge": False}
    print_fitted(out, COUNTRY_COLUMNS, rows, wide=wide, sections=sections, **style)

    shown = result.changes if limit == 0 else result.changes[:limit]
    if shown:
        out.print(f"[bold]Shipments whose treatment changes[/bold] "
                  f"({len(result.changes):,})")
        clauses: dict[tuple[str, str], str] = {}
        change_rows: list[list[str]] = []
        for ch in shown:
            cells = [f"{lt.treatment} [dim]\\[{lt.clause}][/dim]"
                     for lt in (ch.rule, ch.against)]
            for lt in (ch.rule, ch.against):
                clauses[(lt.rule or "none", lt.clause)] = lt.citation
            change_rows.append([str(ch.ship_date), f"{ch.exporter_id}/{ch.shipment_ref}",
                                ch.destination, tpp(ch.tpp), *cells,
                                ch.against.rule or "none"])
        print_fitted(out, CHANGE_COLUMNS, change_rows, wide=wide, **style)
        if len(shown) < len(result.changes):
            out.print(f"[dim]… {len(result.changes) - len(shown)} more; --limit 0 or "
                      "--csv=changes for all[/dim]")
        out.print("[bold]Clauses that decided[/bold]")
        for (rule, clause), citation in sorted(clauses.items()):
            out.print(f"  {rule} \\[{clause}]: {citation}")
    t = result.totals
    out.print(f"[bold]Totals[/bold]: {t.shipments_changed:,} of {t.shipments_in_window:,} "
              f"shipments change treatment ({tpp(t.tpp_changed)} of {tpp(t.tpp_in_window)} "
              f"TPP); {len(t.countries_status_changed)} of {t.countries} countries change "
              f"status" + (f" ({_some(t.countries_status_changed)})"
                           if t.countries_status_changed else ""))
    out.print(f"  over cap under A: {_some(t.over_cap_under_rule) or 'none'}; "
              f"under B: {_some(t.over_cap_under_against) or 'none'}")
    out.print(f"[dim]computed at recorded position {result.computed_at_position}; rerun "
              f"with --known-at {result.computed_at_position} to reproduce[/dim]")
