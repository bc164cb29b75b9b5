"""`tol db`: create, migrate and inspect the catalog schema."""

from __future__ import annotations

import click

from etl import db, schema
from etl.commands.state import State, TolGroup, pass_state


@click.group("db", cls=TolGroup)
def db_group() -> None:
    """Create, migrate and inspect the catalog schema.

    \b
    Example:
      tol db upgrade
    """


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Migrate the catalog up to REVISION (default: head), creating it if needed.

    \b
    Example:
      tol db upgrade
      TOL_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/tol tol db upgrade
    """
    engine = state.engine(check_schema=False)
    schema.upgrade(engine, revision)
    click.echo(f"catalog {db.describe(state.config().database_url)} at {schema.current_revision(engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@pass_state
def db_downgrade(state: State, revision: str) -> None:
    """Migrate the catalog down to REVISION (`base` removes every table).

    \b
    Example:
      tol db downgrade base
    """
    engine = state.engine(check_schema=False)
    schema.downgrade(engine, revision)
    click.echo(f"catalog at {schema.current_revision(engine) or 'base'}")


@db_group.command("current")
@pass_state
def db_current(state: State) -> None:
    """Print the catalog's schema revision and this tol's head revision.

    \b
    Example:
      tol db current
    """
    engine = state.engine(check_schema=False)
    current = schema.current_revision(engine)
    head = schema.head_revision()
    status = "up to date" if current == head else "run `tol db upgrade`"
    click.echo(f"current: {current or 'base'}\nhead:    {head}\n{status}")
