"""Alembic environment: the catalog URL comes from TOL_DATABASE_URL, or from the caller's connection.

`tol db upgrade` and the tests hand over an open connection in ``config.attributes["connection"]``; a bare
``alembic upgrade head`` from the repo root opens one from the environment (default: ./catalog.sqlite).
"""

from __future__ import annotations

import os

from alembic import context

from etl.db import make_engine
from etl.models import Base

DEFAULT_URL = "sqlite:///catalog.sqlite"


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if context.get_context().get_current_revision() is None:
        # At base the catalog holds nothing of ours; leave no bookkeeping table behind either.
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(os.environ.get("TOL_DATABASE_URL") or DEFAULT_URL)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run migrations against a catalog")
run_migrations_online()
