"""`tol catalog`: export what was written; compare it with a published catalog."""

from __future__ import annotations

from pathlib import Path

import click

from etl.commands.state import State, TolGroup, pass_state
from etl.errors import TolError

FORMATS = ("csv", "parquet")


def export_format(given: str | None, out: Path) -> str:
    """The format to write: as given, else from the extension of `out`; a format contradicting a known
    extension is refused (a `.parquet` file holding CSV reads as garbage)."""
    extension = out.suffix.lower().lstrip(".")
    if given is None:
        return extension if extension in FORMATS else "csv"
    if extension in FORMATS and extension != given:
        raise TolError(f"--format {given} does not match --out {out} (a .{extension} file): "
                       f"use --format {extension} or another file name")
    return given


@click.group("catalog", cls=TolGroup)
def catalog_group() -> None:
    """Export what was written, or compare it with a published catalog.csv.

    \b
    Example:
      tol catalog export main-train --format parquet --out catalog-train.parquet
      tol catalog export main-train --out catalog-train.csv && tol catalog compare main-train catalog-train.csv
    """


@catalog_group.command("export")
@click.argument("plan")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="csv or parquet (default: from the --out extension, else csv).")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--what", type=click.Choice(["catalog", "licenses"]), default="catalog", show_default=True,
              help="catalog: the catalog.csv columns plus shard and position; licenses: the release's licenses.csv "
                   "columns (license, owner, URLs; `not provided` where a collection gave none).")
@pass_state
def catalog_export(state: State, plan: str, fmt: str, out: str, what: str) -> None:
    """One row per written sample of PLAN: the catalog.csv columns plus shard and position (or its licenses).

    \b
    Example:
      tol catalog export main-val --format csv --out catalog-val.csv
      tol catalog export main-train --what licenses --out licenses.csv
    """
    from etl import export

    fmt = export_format(fmt, Path(out))
    count = export.export(state.engine(), plan, fmt, Path(out), progress=not state.quiet, what=what)
    click.echo(f"wrote {count:,} rows to {out}")


@catalog_group.command("compare")
@click.argument("plan")
@click.argument("published", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True,
              help="Exit 3 when anything differs beyond the deliberate differences of docs/differences.md.")
@pass_state
def catalog_compare(state: State, plan: str, published: str, strict: bool) -> None:
    """Compare the written samples of PLAN with a published catalog.csv: per column and per source, how many
    rows agree, and examples of each kind of difference (ids and splits must agree; name columns may differ as
    docs/differences.md documents).

    \b
    Example:
      tol catalog compare release-train TreeOfLife-10M/metadata/catalog.csv --strict
    """
    from etl import compare
    from etl.errors import WorkLeftError

    result = compare.compare(state.engine(), plan, Path(published))
    for line in result.lines():
        click.echo(line)
    if strict and result.undocumented():
        raise WorkLeftError(f"plan {plan} differs from {published} in {result.undocumented():,} rows or values "
                            "beyond the documented differences (see above)")
