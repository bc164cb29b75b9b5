"""`tol report`: a plan's report page (one offline HTML file with plots and a contact sheet) and dataset card."""

from __future__ import annotations

from pathlib import Path

import click

from etl.commands.state import State, pass_state


@click.command("report")
@click.argument("plan")
@click.option("--out", type=click.Path(dir_okay=False), help="The HTML file (default: report.html in the plan's "
              "folder).")
@click.option("--samples", "contact_count", default=24, show_default=True, type=click.IntRange(min=0),
              help="Samples on the contact sheet, drawn at random from the shards.")
@click.option("--seed", default=0, show_default=True, help="Seed of the contact sheet's draw.")
@click.option("--no-card", is_flag=True, help="Do not (re)write the dataset card README.md in the plan's folder.")
@pass_state
def report_command(state: State, plan: str, out: str | None, contact_count: int, seed: int, no_card: bool) -> None:
    """Write PLAN's report: one HTML file that opens offline (counts per source and split, unique taxa per rank,
    a treemap kingdom → family, the long tail, shard sizes, what was left out and why, the license mix, naming
    checks, a contact sheet read back from the shards), and the dataset card README.md in the plan's folder.

    Every number comes from the catalog. Run it after `tol shards write PLAN`.

    \b
    Example:
      tol report main-train
      tol report main-val --out main-val-report.html --samples 48 --seed 1
    """
    from etl import report

    result = report.build(state.engine(), plan, Path(out) if out else None, contact_count=contact_count,
                          seed=seed, write_card=not no_card, progress=not state.quiet)
    for line in result.lines():
        click.echo(line)
