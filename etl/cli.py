"""The `tol` command line: the root group, its global options and the entry point `main`.

The command groups live in `etl.commands`, one module each, and are registered here; they parse options and
call the stage modules. Every command's help ends with an example. Errors the user can act on arrive as
`TolError` and are printed as one line (``Error: …``) with exit status 1; Ctrl-C exits 130 after the stage has
rolled back what it had not committed.
"""

from __future__ import annotations

import sys

import click

from etl.commands import COMMANDS, State, TolGroup


@click.group(cls=TolGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", "config_file", metavar="FILE", envvar="TOL_CONFIG",
              help="TOML config file (also TOL_CONFIG).")
@click.option("--database-url", metavar="URL", help="Catalog database URL (also TOL_DATABASE_URL).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.version_option(package_name="treeoflife-etl")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, database_url: str | None, quiet: bool) -> None:
    """Build a TreeOfLife WebDataset from iNat21, EOL and BIOSCAN-1M through one catalog database.

    Settings come from flags, then TOL_* environment variables, then the config file, then defaults.

    \b
    Example:
      tol --database-url sqlite:///catalog.sqlite db upgrade
      tol demo demo-run
    """
    ctx.obj = State(config_file=config_file, flags={"database_url": database_url}, quiet=quiet)


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="tol")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
