"""``ledger report``: one self-contained HTML report of every tier-2 country's quota."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from ledger.cli.common import DATE, open_ledger, require_rules


@click.command()
@click.option("--as-of", type=DATE, required=True, help="Effective date of the report.")
@click.option("--rule", "rule_id", help="Apply this rule revision and compare it with the "
                                         "one in force on --as-of.")
@click.option("--known-at", help="Only events recorded up to this position or ISO time.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.pass_context
def report(ctx: click.Context, as_of: dt.date, rule_id: str | None, known_at: str | None,
           out: Path, quiet: bool) -> None:
    """Write an HTML report: per tier-2 country with activity, a chart of committed TPP
    against the cap (first breach and rule changes marked), license depletion, LPP
    consignees near their limit, VEU usage, and the comparison with the revision in
    force when --rule names another one.

    \b
    Progress goes to stderr while it is built: a bar on a terminal, one line per
    phase otherwise (--quiet for none). The file fetches nothing (charts are inline
    SVG). Needs the 'report' extra:
      pip install 'quota-ledger[report]'

    \b
    Example:
      ledger report --as-of 2025-12-31 --rule ai-diffusion-2025 --out report.html
    """
    from ledger.errors import ConfigurationError

    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise ConfigurationError(
            "ledger report draws its charts with matplotlib, which is not installed: "
            "pip install 'quota-ledger[report]'") from e
    from ledger.audit import chain_hash_at
    from ledger.cli.output import progress
    from ledger.countries import country_name
    from projections.report import build_report, render_html, report_countries
    from projections.views import load_state, select_rule

    ledger = open_ledger(ctx)
    require_rules(ledger)
    position = ledger.resolve_known_at(known_at)
    state = load_state(ledger, position)
    rule = select_rule(state, as_of, rule_id) if rule_id else None
    at = state.position if position is None else min(position, state.position)
    head_hash = chain_hash_at(ledger, at) if at else None
    countries_todo = report_countries(state, as_of, rule)
    total = 2 * len(countries_todo)
    bar, task = progress(total, "report", quiet=quiet)
    if not quiet and bar.disable:
        click.echo(f"report: computing {len(countries_todo)} tier-2 countries, then drawing "
                   "their charts…", err=True)

    def step(phase: str) -> Any:
        def advance(country: str) -> None:
            bar.update(task, advance=1, description=f"{phase} {country_name(country)} "
                                                    f"({country})")
        return advance

    with bar:
        data = build_report(state, as_of, rule, known_at=position, head_hash=head_hash,
                            progress=step("computing"))
        html = render_html(data, progress=step("charting"))
    out.write_text(html, encoding="utf-8")
    countries = ", ".join(s.country for s in data.sections) or "none"
    click.echo(f"{out}: report as of {as_of} for {len(data.sections)} tier-2 countries "
               f"({countries}); computed at recorded position {data.computed_at_position}")
