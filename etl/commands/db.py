"""`tol db`: create, migrate and inspect the catalog schema."""

from __future__ import annotations

import time

import click
from sqlalchemy.engine import Connection

from etl import db, schema
from etl.commands.state import State, TolGroup, pass_state
from etl.errors import TolError, WorkLeftError
from etl.write.queue import ShardQueue


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

    A downgrade that would drop rows or the values of a column (e.g. `shards.md5` below 0005) says which and
    how many, and needs --yes. It is refused (exit 3) while workers hold claims with live leases: wait for
    them to finish, or stop them and let their leases run out.

    \b
    Example:
      tol db downgrade base --yes
    """
    schema.check_revision(revision)
    engine = state.engine(check_schema=False)
    where = db.describe(state.config().database_url)

    def no_live_claims(connection: Connection) -> None:
        claims = ShardQueue(connection).live_claims(hold=True)
        if claims.claimed:
            raise WorkLeftError(
                f"refusing to downgrade the catalog {where}: {claims.claimed:,} shard(s) claimed by running workers "
                f"(e.g. {claims.worker}) with leases live for {max(0.0, (claims.until or 0) - time.time()):.0f} s "
                "more; let them finish or stop them, then retry")

    with engine.connect() as connection:
        no_live_claims(connection)
    lost = schema.downgrade_losses(engine, revision)
    if lost and not yes:
        listed = ", ".join(f"{name} ({count:,} {'values' if '.' in name else 'rows'})"
                           for name, count in sorted(lost.items()))
        raise TolError(f"downgrading to {revision} would delete {listed}; add --yes to do it")
    schema.downgrade(engine, revision, guard=no_live_claims)
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
