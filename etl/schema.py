"""Schema versions: running migrations, and refusing to work on a catalog that is not at head.

Views live in ``etl/sql/views/<name>/v<N>.sql`` (optionally ``v<N>.<dialect>.sql`` where SQLite and PostgreSQL
need different text). A migration installs a given version of a view with `create_view`; a later migration
that changes the view adds ``v<N+1>.sql`` and its downgrade re-installs ``v<N>`` — no earlier migration or
view file is ever edited.

Migrations keep the data they do not mean to drop. On SQLite they run with foreign keys off (batch mode
rebuilds a table by copy, drop and rename, and dropping `shard_plans` with foreign keys on deleted every shard
through ON DELETE CASCADE), and `PRAGMA foreign_key_check` must pass before they commit. What a downgrade
would still lose (rows of dropped tables, values of dropped columns such as `shards.md5`) is listed by
`downgrade_losses` before `tol db downgrade` does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
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


def known_revisions() -> list[str]:
    """Every revision of this code base, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def check_revision(revision: str) -> None:
    """Refuse a revision that is neither `head`, `base` nor one of this code base's migrations."""
    if revision in ("head", "base") or revision in known_revisions():
        return
    raise TolError(f"unknown revision {revision!r} (known: base, {', '.join(known_revisions())}, head)")


def _describe(engine: Engine) -> str:
    """The catalog's URL as a command could be given it again: a SQLite file by its absolute path."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"sqlite:///{Path(url.database).resolve()}"
    return url.render_as_string(hide_password=True)


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection to migrate with. On SQLite, foreign keys are off while it is open (switched before any
    transaction begins, as SQLite ignores the switch inside one): batch mode's table rebuild must not cascade
    deletes into the tables that refer to the rebuilt one. Back on when it closes."""
    connection = engine.connect()
    sqlite = engine.dialect.name == "sqlite"

    def foreign_keys(state: str) -> None:
        driver = connection.connection.driver_connection
        if driver is not None:
            driver.execute(f"PRAGMA foreign_keys = {state}")

    try:
        if sqlite:
            foreign_keys("OFF")
        yield connection
    finally:
        if sqlite and not connection.invalidated:
            if connection.in_transaction():
                connection.rollback()
            foreign_keys("ON")
        connection.close()


def _check_foreign_keys(connection: Connection, revision: str) -> None:
    """On SQLite (where migrations run with foreign keys off), refuse a migration that left dangling references."""
    if connection.dialect.name != "sqlite":
        return
    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if dangling:
        table, _rowid, parent, _fk = dangling[0]
        raise TolError(f"migrating to {revision} would leave {len(dangling)} rows of {table} referring to missing "
                       f"{parent} rows; nothing was changed")


def _migrate(engine: Engine, step, revision: str, guard: Callable[[Connection], None] | None = None) -> None:
    check_revision(revision)
    try:
        with migration_connection(engine) as connection, connection.begin():
            if guard is not None:
                guard(connection)
            step(alembic_config(connection), revision)
            _check_foreign_keys(connection, revision)
    except CommandError as exc:
        raise TolError(f"cannot migrate the catalog {_describe(engine)} to {revision}: {exc}") from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the catalog up to `revision`."""
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str, guard: Callable[[Connection], None] | None = None) -> None:
    """Migrate the catalog down to `revision` (`base` removes every table). `guard(connection)` runs first in the
    same transaction and may refuse (raise) — e.g. while workers hold claims (etl/commands/db.py)."""
    _migrate(engine, command.downgrade, revision, guard)


def _contents(connection: Connection) -> dict[str, int]:
    """Rows per table (`table`) and non-empty values per column (`table.column`), alembic_version left out."""
    inspector = inspect(connection)
    counts: dict[str, int] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        columns = [column["name"] for column in inspector.get_columns(table)]
        sums = ", ".join([f'COUNT("{c}")' for c in columns])
        total, *values = connection.execute(text(f'SELECT COUNT(*), {sums} FROM "{table}"')).one()
        counts[table] = int(total)
        counts.update({f"{table}.{column}": int(n) for column, n in zip(columns, values, strict=True)})
    return counts


def downgrade_losses(engine: Engine, revision: str) -> dict[str, int]:
    """What a downgrade to `revision` would lose: `table` → rows gone (all of them for a dropped table), and
    `table.column` → values gone with a dropped column of a table that stays (e.g. `shards.md5` below 0005:
    a later upgrade brings the column back empty, and every done shard's md5 is gone).

    Found by running the downgrade in a transaction and rolling it back (both databases have transactional
    DDL), so it is exactly what the migrations would do, not a guess.
    """
    check_revision(revision)
    with migration_connection(engine) as connection:
        transaction = connection.begin()
        before = _contents(connection)
        try:
            command.downgrade(alembic_config(connection), revision)
        except CommandError as exc:
            raise TolError(f"cannot migrate the catalog {_describe(engine)} to {revision}: {exc}") from None
        after = _contents(connection)
        transaction.rollback()
    lost: dict[str, int] = {}
    for name, count in before.items():
        table, _, column = name.partition(".")
        if column and table not in after:
            continue  # the table's rows are counted once, as the table
        gone = count - after.get(name, 0)
        if gone > 0:
            lost[name] = gone
    return lost


def ensure_head(engine: Engine) -> str | None:
    """Create or upgrade the catalog to head (for `tol run` and `tol demo`); what was done, naming the
    catalog, or None when it was at head already. A catalog from a newer tol is refused."""
    current, head, where = current_revision(engine), head_revision(), _describe(engine)
    if current == head:
        return None
    if current is not None and not is_known(current):
        require_head(engine)
    upgrade(engine)
    return f"catalog {where}: " + (f"created at {head}" if current is None else f"upgraded from {current} to {head}")


def require_head(engine: Engine) -> None:
    """Refuse to go on unless the catalog is exactly at this code's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = _describe(engine)
    if current is None:
        raise TolError(f"the catalog {where} has no schema yet: run `tol --database-url {where} db upgrade`")
    if not is_known(current):
        raise TolError(f"the catalog {where} is at revision {current}, unknown to this version of tol "
                       "(made by a newer tol?): upgrade tol, do not use this catalog with it")
    raise TolError(f"the catalog {where} is at revision {current}, behind {head}: "
                   f"run `tol --database-url {where} db upgrade`")


def is_known(revision: str) -> bool:
    """Whether `revision` is one of this code base's migrations."""
    return revision in known_revisions()


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
