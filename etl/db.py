"""Opening the catalog database, and knowing whether its schema is current.

SQLite is opened the way a multi-process work queue needs it: WAL journal (readers never block the writer),
a busy timeout instead of instant "database is locked" errors, foreign keys enforced, and every write
transaction started with ``BEGIN IMMEDIATE`` so two processes cannot both read-then-upgrade their lock and
deadlock. PostgreSQL goes through psycopg 3 with pre-ping, so a connection killed by the server is replaced.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from etl.errors import TolError

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_CACHE_KB = 64 * 1024


def parse_url(url: str) -> URL:
    """Parse and check a database URL; only SQLite and PostgreSQL (psycopg 3) are accepted."""
    try:
        parsed = make_url(url)
        _ = parsed.port  # a port that is not a number only fails here
    except (ArgumentError, ValueError):
        raise TolError(f"malformed database URL {url!r}: expected sqlite:///FILE or "
                       "postgresql+psycopg://USER@HOST:PORT/DB") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg",):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise TolError(f"unsupported database {backend!r} in URL {parsed.render_as_string(hide_password=True)}: "
                   "use sqlite:///FILE or postgresql+psycopg://…")


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None for an in-memory database)."""
    if url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def require_existing(url: str) -> None:
    """Refuse a SQLite catalog file that does not exist (opening it would create an empty one), naming it."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    path = sqlite_file(parsed)
    if path is not None and not path.exists():
        raise TolError(f"no catalog at {path.resolve()}: create it with "
                       f"`tol --database-url sqlite:///{path.resolve()} db upgrade`, or fix the database URL")


def _check_sqlite_location(url: URL) -> None:
    path = sqlite_file(url)
    if path is None:
        return
    directory = path.resolve().parent
    if not directory.is_dir():
        raise TolError(f"directory for the SQLite catalog does not exist: {directory}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise TolError(f"SQLite catalog is not readable and writable: {path}")
    if not os.access(directory, os.W_OK):
        # SQLite writes its WAL and lock files beside the database, so the folder must be writable too.
        raise TolError(f"directory for the SQLite catalog is read-only: {directory}")


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # The default 2 MB page caches make bulk merges into large indexes disk-bound.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
        # The ingest staging table and its index live in the temporary database, whose cache is separate.
        cursor.execute(f"PRAGMA temp.cache_size = -{SQLITE_CACHE_KB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """An engine for the catalog at `url`, configured for SQLite or PostgreSQL.

    `readonly=True` gives SQLite engines deferred transactions, so long reports do not hold the write lock.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_location(parsed)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine, immediate=not readonly)
        return engine
    try:
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10, "application_name": "tol"},
        )
    except NoSuchModuleError as exc:
        raise TolError(f"no driver for {parsed.drivername}: {exc}") from None


def describe(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except TolError:
        return url


def check_reachable(engine: Engine) -> None:
    """Connect once; an unreachable or refusing server becomes a one-line error."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TolError(f"cannot open the catalog {engine.url.render_as_string(hide_password=True)}: "
                       f"{reason}") from None
