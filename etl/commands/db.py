"""`tol db`: create, migrate and inspect the catalog schema."""

from __future__ import annotations

import click

from etl import db, schema
from etl.commands.state import State, TolGroup, pass_state
from etl.errors import TolError


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
    schema.check_revision(revision)
    engine = state.engine(check_schema=False, create=True)
    current = schema.current_revision(engine)
    if current is not None and not schema.is_known(current):
        schema.require_head(engine)  # a catalog made by a newer tol: say so rather than fail inside Alembic
    schema.upgrade(engine, revision)
    click.echo(f"catalog {db.describe(state.config().database_url)} at {schema.current_revision(engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm a downgrade that drops data.")
@pass_state
def db_downgrade(state: State, revision: str, yes: bool) -> None:
    """Migrate the catalog down to REVISION (`base` removes every table).

    A downgrade that would drop rows says which tables lose how many, and needs --yes.

    \b
    Example:
      tol db downgrade base --yes
    """
    schema.check_revision(revision)
    engine = state.engine(check_schema=False)
    lost = schema.downgrade_losses(engine, revision)
    if lost and not yes:
        listed = ", ".join(f"{table} ({rows:,} rows)" for table, rows in sorted(lost.items()))
        raise TolError(f"downgrading to {revision} would delete {listed}; add --yes to do it")
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
    if current == head:
        status = "up to date"
    elif current is not None and not schema.is_known(current):
        status = "made by a newer tol: upgrade tol, do not use this catalog with this one"
    else:
        status = "run `tol db upgrade`"
    click.echo(f"current: {current or 'base'}\nhead:    {head}\n{status}")
