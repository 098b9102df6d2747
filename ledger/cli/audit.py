"""``ledger audit``: verify the hash chain, print the head, export and restore the trail.

For auditors and regulators: ``verify`` proves the stored history was not changed
(and, with ``--expect-head``, that it still extends a head kept outside the ledger);
``export`` takes the trail away as JSON Lines, CSV or a beancount journal; ``import``
restores a JSON Lines export verbatim into an empty ledger (same positions, same
head hash).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from ledger.cli.common import DATE, open_ledger
from ledger.cli.output import print_json

from ledger.cli.exitcodes import TAMPERED as EXIT_BROKEN


@click.group()
def audit() -> None:
    """Tamper evidence and the audit trail: verify, head, export, import."""


@audit.command("verify")
@click.option("--expect-head", metavar="POS:HASH",
              help="A head printed earlier by 'ledger audit head': prove the ledger "
                   "still extends it.")
@click.option("--read-model", is_flag=True,
              help="Also recompute every country's position from the log and compare it "
                   "with the read model behind 'ledger quota' (derived tables are outside "
                   "the chain; this costs a full replay).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def verify_cmd(ctx: click.Context, expect_head: str | None, read_model: bool,
               as_json: bool) -> None:
    """Recompute the hash chain over the stored bytes and report EVERY break.

    \b
    Breaks: edited (bytes, identity, type or recorded time), deleted, inserted,
    reordered, truncated (tail removed), chain-row-edited, not-extending-head.
    Exit code 0 when intact, 5 when any break is found (or, with --read-model,
    when the read model differs from the log).

    \b
    Example:
      ledger audit verify --expect-head 42:3f1c…
    """
    from ledger.audit import parse_expect_head, verify

    expected = parse_expect_head(expect_head) if expect_head else None
    ledger = open_ledger(ctx)
    result = verify(ledger, expected)
    differences: list[str] = []
    if read_model:
        from projections.views import read_model_differences

        differences = read_model_differences(ledger)
    advice = repair_advice(result.ok, bool(differences))
    if as_json:
        data = result.as_dict()
        if read_model:
            data["read_model_differences"] = differences
        if advice:
            data["advice"] = advice
        print_json(data)
    elif result.ok:
        # plain echo, not rich: auditors paste and grep this, so no wrapping
        head = result.head
        where = ("empty ledger" if head is None else
                 f"positions 1..{head.position}, head {head.position}:{head.hash}")
        extra = f"; extends the expected head {expected[0]}" if expected else ""
        click.echo(click.style("OK", fg="green") + f": {result.events} events, "
                   f"{result.links} links verified ({where}){extra}")
    else:
        click.echo(click.style("BROKEN", fg="red", bold=True) + f": {len(result.breaks)} "
                   f"break(s) in {result.events} events / {result.links} links")
        for b in result.breaks:
            click.echo(f"  position {b.position}: {b.kind}: {b.message}")
    if read_model and not as_json:
        if differences:
            click.echo(click.style("READ MODEL DIFFERS", fg="red", bold=True) + ": "
                       f"{len(differences)} answer(s) differ from the log")
            for d in differences:
                click.echo(f"  {d}")
        else:
            click.echo(click.style("OK", fg="green") + ": the read model gives the log's "
                       "answer for every country and rule")
    if advice and not as_json:
        click.echo(f"what to do: {advice}")
    if not result.ok or differences:
        ctx.exit(EXIT_BROKEN)


def repair_advice(chain_ok: bool, read_model_differs: bool) -> str | None:
    """What an operator should do about a failed verification, or None if nothing.

    A broken chain means the log itself was altered: rebuilding the read models from
    it would bake the altered events into every answer, so the remedy is a restore
    from a trusted export, verified against a head saved before the damage."""
    if not chain_ok:
        return ("the event log itself was altered: do NOT run 'ledger projections "
                "rebuild' on it (that would bake the altered events into every answer). "
                "Restore the ledger from a trusted export into a new database "
                "('ledger --db NEW audit import EXPORT.jsonl'), verify it against a head "
                "saved before the damage ('ledger --db NEW audit verify --expect-head "
                "POSITION:HASH --read-model'), and only then rebuild its read models there")
    if read_model_differs:
        return ("the event log verified intact, so only the read models are wrong: "
                "rebuild them from it with 'ledger projections rebuild'")
    return None


@audit.command("head")
@click.option("--json", "as_json", is_flag=True, help="Print the head as JSON.")
@click.pass_context
def head_cmd(ctx: click.Context, as_json: bool) -> None:
    """The current position, recorded time and head hash, to keep outside the ledger.

    The last line is ready to paste: ledger audit verify --expect-head POS:HASH
    """
    head = open_ledger(ctx).head()
    if as_json:
        print_json(None if head is None else
                   {"position": head[0], "recorded_at": head[1], "hash": head[2],
                    "expect_head": f"{head[0]}:{head[2]}"})
        return
    if head is None:
        click.echo("empty ledger: no head yet")
        return
    position, recorded_at, digest = head
    click.echo(f"position     {position}")
    click.echo(f"recorded at  {recorded_at}")
    click.echo(f"head hash    {digest}")
    click.echo(f"--expect-head {position}:{digest}")


@contextlib.contextmanager
def _output(out: Path | None) -> Iterator[IO[str]]:
    if out is None:
        yield sys.stdout
        return
    with out.open("w", encoding="utf-8", newline="") as f:
        yield f


@audit.command("export")
@click.option("--from", "start", type=click.IntRange(min=1), default=1, show_default=True,
              help="First recorded position.")
@click.option("--to", "stop", type=click.IntRange(min=1),
              help="Last recorded position (default: the head).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "ledger-journal"]),
              default="jsonl", show_default=True)
@click.option("--as-of", type=DATE, help="ledger-journal: effective date of the balances "
                                         "(default: the latest effective date).")
@click.option("--rule", "rule_id", help="ledger-journal: rule revision to count under "
                                         "(default: the one in force on --as-of).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.pass_context
def export_cmd(ctx: click.Context, start: int, stop: int | None, fmt: str,
               as_of: dt.date | None, rule_id: str | None, out: Path | None) -> None:
    """Export the audit trail of recorded positions --from..--to.

    \b
    jsonl, csv: one record per event: recorded position and time, effective date,
      type, every field, actor, chain hash (and, in jsonl, the exact stored bytes,
      so 'ledger audit import' can restore it verbatim).
    ledger-journal: a beancount journal of every capped country's quota as known
      at --to, with balance assertions; recheck it with 'bean-check FILE'.

    \b
    Examples:
      ledger audit export --format jsonl --out trail.jsonl
      ledger audit export --to 120 --format ledger-journal \
        --rule ai-diffusion-2025 --out q.beancount
    """
    from ledger.audit import export_rows, write_csv, write_jsonl

    ledger = open_ledger(ctx)
    head = ledger.max_position()
    last = head if stop is None else stop
    if last < start:
        from ledger.errors import ValidationError

        raise ValidationError(f"--to {last} is before --from {start}", field="to", value=last)
    if fmt == "ledger-journal":
        text = _journal(ledger, start, last, as_of, rule_id)
        with _output(out) as f:
            f.write(text)
        n = None
    else:
        rows = export_rows(ledger, start, last)
        with _output(out) as f:
            n = write_jsonl(rows, f) if fmt == "jsonl" else write_csv(rows, f)
    if out is not None:
        what = "journal" if n is None else f"{n} events"
        click.echo(f"{out}: {what} exported from positions {start}..{last}; computed at "
                   f"recorded position {last}", err=True)


def _journal(ledger: Any, start: int, last: int, as_of: dt.date | None,
             rule_id: str | None) -> str:
    from ledger.errors import UnknownRule, ValidationError
    from projections.journal import journal
    from projections.views import load_state, select_rule

    if start != 1:
        raise ValidationError(f"--from {start}: a journal's balances need the whole history; "
                              "use --to to cut it", field="from", value=start)
    state = load_state(ledger, last)
    if as_of is None:
        dates = [r.fields.ship_date for r in state.shipments.values()]
        dates += [a.valid_from for a in state.allocations.values()]
        as_of = max(dates, default=dt.date.today())
    rule = select_rule(state, as_of, rule_id)
    if rule is None:
        raise UnknownRule(f"no rule revision is in force on {as_of}; name one with --rule")
    return journal(state, rule, as_of, known_at=last)


@audit.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def import_cmd(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Restore a JSON Lines audit export verbatim into an EMPTY ledger.

    Events are written with their original positions, recorded times, bytes and
    chain links, each link checked before anything is written, in one transaction;
    the restored ledger then has the same head hash as the original. (Appending new
    facts is 'ledger import'; this is the auditor's copy.)
    """
    from ledger.audit import parse_export_line, restore, verify

    rows = []
    with file.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                rows.append(parse_export_line(raw, number))
    ledger = open_ledger(ctx, create=True)
    n = restore(ledger, rows)
    result = verify(ledger)
    head = ledger.head()
    summary = {"restored": n, "verified": result.ok,
               "head": None if head is None else f"{head[0]}:{head[2]}"}
    if as_json:
        print_json(summary)
    else:
        click.echo(f"{file}: {n} events restored; chain verified "
                   f"{'OK' if result.ok else 'BROKEN'}; head {summary['head']}")
    if not result.ok:
        ctx.exit(EXIT_BROKEN)
