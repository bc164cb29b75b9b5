"""The `tol` command line: the root group, its global options and the entry point `main`.

The command groups live in `etl.commands`, one module each, and are registered here; they parse options and
call the stage modules. Every command's help ends with an example. Errors the user can act on arrive as
`TolError` and are printed as one line (``Error: …``) with exit status 1; Ctrl-C exits 130 after the stage has
rolled back what it had not committed.
"""

from __future__ import annotations

import sys
import traceback

import click

from etl.commands import COMMANDS, State, TolGroup
from etl.errors import ExitCode


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


def _usage_line(error: click.UsageError) -> str:
    """Click's usage error as one line, pointing at the command's help."""
    where = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
    return f"Error: {error.format_message()}{where}"


def main(args: list[str] | None = None) -> None:
    """Console-script entry point: run `tol` and exit with its `ExitCode`."""
    try:
        outcome = cli.main(args=args, prog_name="tol", standalone_mode=False)
    except click.UsageError as error:
        click.echo(_usage_line(error), err=True)
        sys.exit(ExitCode.USAGE)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception:  # a bug: keep the traceback, and say what it is
        traceback.print_exc()
        click.echo("tol: internal error (a bug in tol, not in your input): please report it to the "
                   "treeoflife-etl maintainers with the traceback above", err=True)
        sys.exit(ExitCode.BUG)
    sys.exit(outcome if isinstance(outcome, int) else ExitCode.OK)
