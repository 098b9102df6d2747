"""``ledger import``: append events from a JSON Lines file, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ledger.cli.common import open_ledger
from ledger.cli.output import print_json

from ledger.cli.exitcodes import PARTIAL_IMPORT as EXIT_SKIPPED


def read_commands(path: Path) -> tuple[list[Any], list[int]]:
    """Parse every non-blank line; a bad line becomes its ValidationError, prefixed with
    its line number. Returns (commands or errors, line numbers)."""
    from ledger.commands import parse_command_line
    from ledger.errors import LedgerError, ValidationError

    items: list[Any] = []
    line_numbers: list[int] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                items.append(parse_command_line(raw))
            except LedgerError as e:
                field = getattr(e, "field", None)
                err = ValidationError(str(e), field=field, value=getattr(e, "value", None))
                items.append(err)
            line_numbers.append(number)
    if not items:
        raise ValidationError(f"{path}: no events in the file", field="FILE", value=str(path))
    return items, line_numbers


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True,
              help="Append the good lines and list the bad ones (exit code 3), instead of "
                   "appending nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def import_(ctx: click.Context, file: Path, skip_bad: bool, as_json: bool) -> None:
    """Append events from a JSON Lines FILE (one object per line with a "type").

    Types: shipment.recorded, shipment.corrected, shipment.voided,
    allocation.granted, allocation.adjusted, allocation.revoked, veu.granted,
    veu.amended, veu.revoked, rule.published. See the README for every field.

    The file is one transaction: if any line is bad, nothing is appended and every
    bad line is listed with its line number, field and value (exit code 1).
    Re-importing the same file is a no-op: a line whose "command_id" (or, without
    one, whose content) was already applied to its shipment, allocation or VEU is a
    duplicate, even after later changes. To return deliberately to an earlier value,
    give the line a new "command_id" (or another reason).
    """
    from ledger.application import BatchRejected

    items, numbers = read_commands(file)
    ledger = open_ledger(ctx, create=True)
    try:
        result = ledger.submit(items, skip_bad=skip_bad)
    except BatchRejected as e:
        e.details = [f"line {numbers[o.index]}: {o.error}"  # type: ignore[attr-defined]
                     for o in e.errors_only()]
        if as_json:
            print_json(_summary(e.outcomes, numbers, appended=0))
        raise
    summary = _summary(result.outcomes, numbers, appended=result.appended,
                       positions=result.positions)
    if as_json:
        print_json(summary)
    elif summary["already_applied"]:
        # every line was recorded before (this file imported earlier, or by another
        # process at the same moment): nothing to do, and that is success
        click.echo(f"{file}: already applied: all {result.duplicates} commands were "
                   "recorded before; nothing appended")
    else:
        first_last = (f" at positions {result.positions[0]}..{result.positions[-1]}"
                      if result.positions else "")
        click.echo(f"{file}: {result.appended} events appended{first_last}, "
                   f"{result.duplicates} already recorded (no-op), "
                   f"{len(result.errors)} refused")
        for o in result.errors:
            click.secho(f"  line {numbers[o.index]}: {o.error}", fg="yellow", err=True)
    if result.errors:
        ctx.exit(EXIT_SKIPPED)


def _summary(outcomes: list[Any], numbers: list[int], *, appended: int,
             positions: list[int] | None = None) -> dict[str, Any]:
    return {
        "appended": appended,
        "positions": [positions[0], positions[-1]] if positions else None,
        "duplicates": sum(1 for o in outcomes if o.duplicate),
        "already_applied": bool(outcomes) and all(o.duplicate for o in outcomes),
        "refused": [{"line": numbers[o.index], "reason": getattr(o.error, "code", "invalid"),
                     "field": getattr(o.error, "field", None), "message": str(o.error)}
                    for o in outcomes if not o.ok],
    }
