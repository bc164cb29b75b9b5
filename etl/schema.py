"""Schema versions: running migrations, and refusing to work on a catalog that is not at head.

Views live in ``etl/sql/views/<name>/v<N>.sql`` (optionally ``v<N>.<dialect>.sql`` where SQLite and PostgreSQL
need different text). A migration installs a given version of a view with `create_view`; a later migration
that changes the view adds ``v<N+1>.sql`` and its downgrade re-installs ``v<N>`` — no earlier migration or
view file is ever edited.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from etl import resources
from etl.errors import TolError


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config for this project's migrations, optionally bound to an open connection.

    It needs no alembic.ini (an installed wheel has none): the script folder is the package's own.
    """
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration of this code base."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise TolError(f"no migrations found in {resources.migrations_dir()}: the installation of tol is incomplete")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the catalog is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the catalog up to `revision`."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the catalog down to `revision` (`base` removes every table)."""
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def require_head(engine: Engine) -> None:
    """Refuse to go on unless the catalog is exactly at this code's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    script = ScriptDirectory.from_config(alembic_config())
    if current is None:
        raise TolError("the catalog has no schema yet: run `tol db upgrade`")
    try:
        script.get_revision(current)
    except Exception:
        raise TolError(f"the catalog is at revision {current}, unknown to this version of tol "
                       "(made by a newer tol?): upgrade tol, do not use this catalog with it") from None
    raise TolError(f"the catalog is at revision {current}, behind {head}: run `tol db upgrade`")


def create_view(op, name: str, version: int) -> None:
    """Install version `version` of view `name` (replacing any other version) inside a migration."""
    bind = op.get_bind()
    bind.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    sql = resources.view_sql(name, version, bind.dialect.name)
    if bind.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")  # psycopg would read a bare % as a placeholder
    bind.exec_driver_sql(sql)


def drop_view(op, name: str) -> None:
    """Remove view `name` inside a migration."""
    op.get_bind().exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
