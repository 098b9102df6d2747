"""What every CLI command shares: opening the ledger, date and country options."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click

from ledger.countries import is_country_code


def open_ledger(ctx: click.Context, *, create: bool = False) -> Any:
    """The Ledger application on the database chosen with --db / LEDGER_DB.

    Only a command that writes passes ``create=True``: a read-only command on a
    missing SQLite file is an error naming the path, never a new empty ledger."""
    from ledger.application import Ledger

    ledger = Ledger(ctx.obj["db"], create=create)
    # closed when the command ends, not when it is collected: a process that runs
    # many commands (tests, an embedding program) must not pile up database
    # connections (PostgreSQL refuses clients beyond max_connections)
    ctx.call_on_close(ledger.close)
    return ledger


def require_rules(ledger: Any) -> None:
    """Refuse a position query on a ledger without any rule revision: its answer
    would be "no cap" for every country, which is not true, only unknown.
    Raises NotFound with the remedy."""
    if not ledger.has_rules():
        from ledger.errors import NotFound

        raise NotFound(f"the ledger {ledger.shown_url!r} has no rule revision, so it cannot "
                       "answer a quota question; load them with 'ledger rules load --bundled'")


class DateType(click.ParamType):  # type: ignore[type-arg]
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


class CountryType(click.ParamType):  # type: ignore[type-arg]
    name = "CC"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        code = str(value).upper()
        if not is_country_code(code):
            self.fail(f"{value!r} is not an ISO 3166-1 alpha-2 country code", param, ctx)
        return code


DATE = DateType()
COUNTRY = CountryType()


_LOOKUP_OPTIONS = (
    click.option("--known-at", help="Only events recorded up to this position or ISO time."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON for machines."),
    click.option("--wide", is_flag=True, help="Every column, however narrow the terminal."),
)


def lookup_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the lookup tables' ``--known-at``, ``--json`` and ``--wide`` to a command."""
    for option in reversed(_LOOKUP_OPTIONS):
        f = option(f)
    return f
