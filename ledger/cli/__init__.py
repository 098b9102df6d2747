"""The ``ledger`` command line: compliance officers' and auditors' entry point.

Commands are loaded lazily (``LAZY_COMMANDS``), so a query imports only what it
needs: no Kafka client, no chart library. Every command builds commands or queries,
prints the result (a table, or ``--json``), and turns ``LedgerError`` into a one-line
message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

#: command name -> "module:attribute"; each module owns one command or group
LAZY_COMMANDS: dict[str, str] = {
    "audit": "ledger.cli.audit:audit",
    "consume": "ledger.cli.consume:consume",
    "demo": "ledger.cli.demo:demo",
    "history": "ledger.cli.history:history",
    "import": "ledger.cli.imports:import_",
    "keygen": "ledger.cli.produce:keygen",
    "produce": "ledger.cli.produce:produce",
    "products": "ledger.cli.products:products",
    "projections": "ledger.cli.projections:projections",
    "quota": "ledger.cli.quota:quota",
    "replay": "ledger.cli.replay:replay",
    "report": "ledger.cli.report:report",
    "rules": "ledger.cli.rules:rules",
    "ship": "ledger.cli.ship:ship",
    "veu": "ledger.cli.veu:veu",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from ledger.errors import LedgerError

        try:
            return super().invoke(ctx)
        except LedgerError as e:
            from ledger.cli.output import print_error

            print_error(e)
            sys.exit(getattr(e, "exit_code", 1))
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as e:
            # a file that cannot be read or written (missing folder, permissions, full
            # disk): say which, without a traceback
            if os.environ.get("LEDGER_DEBUG"):
                raise
            click.secho(f"error: {e.filename or ''}: {e.strerror or e}".replace(": : ", ": "),
                        fg="red", err=True)
            sys.exit(1)
        except Exception as e:
            # a bug, not bad input: still one line for the user, the traceback on demand
            if os.environ.get("LEDGER_DEBUG"):
                raise
            click.secho(f"internal error: {type(e).__name__}: {e} "
                        "(run with LEDGER_DEBUG=1 for the traceback)", fg="red", err=True)
            sys.exit(70)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.option("--db", envvar="LEDGER_DB", default="ledger.db", show_default=True,
              help="SQLite file path, or postgresql://user@host:port/dbname "
                   "(also LEDGER_DB).")
@click.version_option(package_name="quota-ledger")
@click.pass_context
def main(ctx: click.Context, db: str) -> None:
    """quota-ledger: an event-sourced ledger of US export-control quotas for AI chips.

    \b
    Start here:
      ledger demo                      sample ledger and the tier-2 quota table
      ledger rules load --bundled      load the bundled rule revisions
      ledger import events.jsonl       append events from JSON Lines
      ledger quota --country MX --as-of 2025-06-30
    """
    ctx.obj = {"db": db}
    if os.environ.get("LEDGER_DEBUG"):
        ctx.obj["debug"] = True
