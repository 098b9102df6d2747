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
    "check": "ledger.cli.check:check",
    "consume": "ledger.cli.consume:consume",
    "demo": "ledger.cli.demo:demo",
    "history": "ledger.cli.history:history",
    "import": "ledger.cli.imports:import_",
    "keygen": "ledger.cli.produce:keygen",
    "licenses": "ledger.cli.licenses:licenses",
    "produce": "ledger.cli.produce:produce",
    "products": "ledger.cli.products:products",
    "projections": "ledger.cli.projections:projections",
    "quota": "ledger.cli.quota:quota",
    "replay": "ledger.cli.replay:replay",
    "report": "ledger.cli.report:report",
    "rules": "ledger.cli.rules:rules",
    "ship": "ledger.cli.ship:ship",
    "shipment": "ledger.cli.shipment:shipment",
    "veu": "ledger.cli.veu:veu",
}


#: options that belong to ``ledger`` itself, before the command
GLOBAL_OPTIONS = ("--db",)


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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # --json anywhere on the line: errors are then a JSON object on stderr too
        ctx.meta["json_errors"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from ledger.cli import exitcodes

        json_errors = bool(ctx.meta.get("json_errors"))
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, inside the handler below
            return result
        except BrokenPipeError:
            _quiet_after_broken_pipe()
        except click.NoSuchOption as e:
            if e.option_name in GLOBAL_OPTIONS:
                e = click.NoSuchOption(
                    e.option_name, ctx=e.ctx,
                    message=f"{e.option_name} is a global option: give it before the "
                            f"command, e.g. 'ledger {e.option_name} PATH "
                            f"{ctx.invoked_subcommand or 'COMMAND'} ...' (or set LEDGER_DB)")
            _usage_failure(e, json_errors)
        except click.ClickException as e:
            _usage_failure(e, json_errors)
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            from ledger.errors import LedgerError

            if isinstance(e, LedgerError):
                _fail(e, getattr(e, "exit_code", exitcodes.REFUSED), json_errors)
            if os.environ.get("LEDGER_DEBUG"):
                raise
            if isinstance(e, OSError):
                # a file that cannot be read or written (missing folder, permissions,
                # full disk): say which, without a traceback
                _fail(e, exitcodes.REFUSED, json_errors,
                      f"{e.filename or ''}: {e.strerror or e}".replace(": : ", ": ")
                      .lstrip(": "))
            # a bug, not bad input: still one line for the user, the traceback on demand
            _fail(e, exitcodes.INTERNAL, json_errors,
                  f"internal error: {type(e).__name__}: {e} "
                  "(run with LEDGER_DEBUG=1 for the traceback)", code="internal")


def _quiet_after_broken_pipe() -> None:
    """The reader of our stdout went away (``ledger ... | head``): what it wanted was
    printed, so stop quietly with 0, and point stdout at /dev/null so the interpreter's
    final flush does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(0)


def _usage_failure(e: click.ClickException, json_errors: bool) -> None:
    if not json_errors:
        raise e
    from ledger.cli.output import print_error_json

    print_error_json("usage" if isinstance(e, click.UsageError) else "invalid",
                     e.format_message(), exit_code=e.exit_code,
                     field=getattr(getattr(e, "param", None), "name", None))
    sys.exit(e.exit_code)


def _fail(e: Exception, exit_code: int, json_errors: bool, message: str | None = None, *,
          code: str | None = None) -> None:
    """Print the error (one line plus details, or one JSON object) and exit."""
    from ledger.cli.output import print_error, print_error_json

    if json_errors:
        print_error_json(code or str(getattr(e, "code", "error")), message or str(e),
                         exit_code=exit_code, field=getattr(e, "field", None),
                         value=getattr(e, "value", None),
                         details=list(getattr(e, "details", None) or []))
    elif message is not None:
        click.secho(("" if message.startswith("internal error") else "error: ") + message,
                    fg="red", err=True)
    else:
        print_error(e)
    sys.exit(exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.option("--db", envvar="LEDGER_DB", default="ledger.db", show_default=True,
              help="SQLite file path, or postgresql://user@host:port/dbname[?schema=NAME] "
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
    if os.environ.get("LEDGER_DB") == "" and \
            ctx.get_parameter_source("db") is click.core.ParameterSource.DEFAULT:
        db = ""  # an empty LEDGER_DB is refused like --db "", not read as ./ledger.db
    ctx.obj = {"db": db}
    if os.environ.get("LEDGER_DEBUG"):
        ctx.obj["debug"] = True
