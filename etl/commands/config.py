"""`tol config`: inspect the effective configuration."""

from __future__ import annotations

import click

from etl.commands.state import State, TolGroup, pass_state


@click.group("config", cls=TolGroup)
def config_group() -> None:
    """Inspect the effective configuration.

    \b
    Example:
      tol --config cluster.toml config show
    """


@config_group.command("show")
@pass_state
def config_show(state: State) -> None:
    """Print every setting, its effective value and where it came from (passwords masked).

    Precedence: flag > TOL_* environment variable > config file > default.

    \b
    Example:
      TOL_WORKERS=8 tol --config cluster.toml config show
    """
    for line in state.config().lines():
        click.echo(line)
