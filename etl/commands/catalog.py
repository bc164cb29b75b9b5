"""`tol catalog`: export what was written."""

from __future__ import annotations

from pathlib import Path

import click

from etl.commands.state import State, TolGroup, pass_state


@click.group("catalog", cls=TolGroup)
def catalog_group() -> None:
    """Export what was written.

    \b
    Example:
      tol catalog export main-train --format parquet --out catalog-train.parquet
    """


@catalog_group.command("export")
@click.argument("plan")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@pass_state
def catalog_export(state: State, plan: str, fmt: str, out: str) -> None:
    """One row per written sample of PLAN: the catalog.csv columns plus shard and position.

    \b
    Example:
      tol catalog export main-val --format csv --out catalog-val.csv
    """
    from etl import export

    count = export.export(state.engine(), plan, fmt, Path(out))
    click.echo(f"wrote {count:,} rows to {out}")
