"""``ledger import``: append events from a JSON Lines file, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ledger.cli.common import open_ledger
from ledger.cli.exitcodes import PARTIAL_IMPORT as EXIT_SKIPPED
from ledger.cli.output import print_json

if TYPE_CHECKING:
    from ledger.application import ImportLine, ImportResult, Ledger


def read_chunks(path: Path, size: int | None = None) -> Iterator[list[ImportLine]]:
    """Read and validate the file line by line, ``size`` lines at a time: each
    non-blank line becomes (line number, its command, or its ValidationError naming
    field and value). Only one chunk is in memory. A file without any non-blank line
    is refused before anything is yielded."""
    from ledger.application import IMPORT_CHUNK
    from ledger.commands import parse_command_line
    from ledger.errors import LedgerError, ValidationError

    size = size or IMPORT_CHUNK
    chunk: list[ImportLine] = []
    seen = False
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                item: Any = parse_command_line(raw)
            except LedgerError as e:
                field = getattr(e, "field", None)
                item = ValidationError(str(e), field=field, value=getattr(e, "value", None))
            chunk.append((number, item))
            if len(chunk) >= size:
                seen = True
                yield chunk
                chunk = []
    if not chunk and not seen:
        raise ValidationError(f"{path}: no events in the file", field="FILE", value=str(path))
    if chunk:
        yield chunk


def import_file(ledger: Ledger, path: Path, *, actor: str | None = None,
                skip_bad: bool = False, chunk_size: int | None = None) -> ImportResult:
    """``ledger import`` as a library call: the file streamed into one transaction."""
    return ledger.import_stream(read_chunks(path, chunk_size), actor=actor, skip_bad=skip_bad)


#: an import appending this many events builds the position index by default
INDEX_AFTER_IMPORT = 10_000


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True,
              help="Append the good lines and list the bad ones (exit code 3), instead of "
                   "appending nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--index/--no-index", default=None,
              help="Then fold the read models and build the position index for every "
                   "country under every rule revision, so the first query after the "
                   "import answers at once. Default: only when the import appended "
                   f"{INDEX_AFTER_IMPORT:,} events or more (a small import leaves the "
                   "small builds to the first queries).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def import_(ctx: click.Context, file: Path, skip_bad: bool, as_json: bool,
            index: bool | None, quiet: bool) -> None:
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
    from ledger.application import ImportRejected

    ledger = open_ledger(ctx, create=True)
    try:
        result = import_file(ledger, file, skip_bad=skip_bad)
    except ImportRejected as e:
        e.details = [f"line {number}: {error}"  # type: ignore[attr-defined]
                     for number, error in e.result.errors]
        if as_json:
            print_json(_summary(e.result, appended=0))
        raise
    built = None
    if index or (index is None and result.appended >= INDEX_AFTER_IMPORT):
        from ledger.cli.projections import build_index
        from projections.readmodel import ReadModel

        built = build_index(ReadModel(ledger), quiet=quiet or as_json)
    if as_json:
        summary = _summary(result, appended=result.appended)
        if built is not None:
            summary["position_index"] = built
        print_json(summary)
    elif result.commands and result.duplicates == result.commands:
        # every line was recorded before (this file imported earlier, or by another
        # process at the same moment): nothing to do, and that is success
        click.echo(f"{file}: already applied: all {result.duplicates} commands were "
                   "recorded before; nothing appended")
    else:
        first_last = (f" at positions {result.first_position}..{result.last_position}"
                      if result.first_position is not None else "")
        click.echo(f"{file}: {result.appended} events appended{first_last}, "
                   f"{result.duplicates} already recorded (no-op), "
                   f"{len(result.errors)} refused")
        for number, error in result.errors:
            click.secho(f"  line {number}: {error}", fg="yellow", err=True)
    if built is not None and not as_json:
        from ledger.cli.projections import index_line

        click.echo(index_line(built))
    if result.errors:
        ctx.exit(EXIT_SKIPPED)


def _summary(result: ImportResult, *, appended: int) -> dict[str, Any]:
    positions = ([result.first_position, result.last_position]
                 if appended and result.first_position is not None else None)
    return {
        "appended": appended,
        "positions": positions,
        "duplicates": result.duplicates,
        "already_applied": bool(result.commands) and result.duplicates == result.commands,
        "refused": [{"line": number, "reason": getattr(error, "code", "invalid"),
                     "field": getattr(error, "field", None), "message": str(error)}
                    for number, error in result.errors],
    }
