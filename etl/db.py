"""Opening the catalog database, and knowing whether its schema is current.

SQLite is opened the way a multi-process work queue needs it: WAL journal (readers never block the writer),
a busy timeout instead of instant "database is locked" errors, foreign keys enforced, and every write
transaction started with ``BEGIN IMMEDIATE`` so two processes cannot both read-then-upgrade their lock and
deadlock. PostgreSQL goes through psycopg 3 with pre-ping, so a connection killed by the server is replaced.

A database that goes away for a while is a fault of the environment, not of the work in hand: `wait_out` runs an
operation again with jittered exponential backoff while the error is one of those (`is_transient`: the server
refusing or restarting, too many clients, the connection killed, SQLite locked beyond its busy timeout, or the
catalog at another schema revision than this code's), up to the engine's budget (the setting `db_wait_seconds`),
then raises `DatabaseUnavailable` (exit 4) with one line naming the database, its password hidden.

Worker engines on PostgreSQL hold a connection only around their bursts of operations (`short_lived=True`:
`IdleClosingPool` closes a connection idle for `IDLE_CLOSE_SECONDS`, from one thread per process), so a job of
many ranks holds only the connections of the ranks between two shards, and a claim right after a commit reuses
its connection (docs/database.md, "Many ranks").
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util import queue as pool_queue

from etl.errors import EnvironmentFault, TolError

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_CACHE_KB = 64 * 1024
DEFAULT_WAIT_SECONDS = 300.0  # the setting `db_wait_seconds`: how long an unavailable catalog is waited for
FIRST_DELAY_S, MAX_DELAY_S = 0.25, 5.0  # backoff between tries: doubling from the first, capped, jittered
# What the server or driver says when the database is away for a while rather than wrong: connections refused,
# killed or timed out, the server (re)starting, the database closed to connections, too many clients, SQLite
# locked beyond its busy timeout. Matched in lower case against the driver's message.
TRANSIENT_MARKERS = (
    "connection refused", "could not connect", "connection timeout", "timeout expired", "timed out",
    "server closed the connection", "terminating connection", "connection is closed", "connection reset",
    "no connection to the server", "consuming input failed", "broken pipe",
    "ssl syscall", "not currently accepting connections", "too many clients", "too many connections",
    "remaining connection slots",
    "the database system is starting up", "the database system is shutting down",
    "the database system is in recovery mode", "database is locked", "unable to open database file",
)
# At a command's first contact these say "wrong URL" more often than "server away": reported at once (exit 2).
FIRST_CONTACT_FATAL = ("connection refused", "could not translate host name", "does not exist",
                       "password authentication failed", "no password supplied")

IDLE_CLOSE_SECONDS = 0.2  # a worker's connection is closed after this long unused (IdleClosingPool)

T = TypeVar("T")
_WAIT_BUDGETS: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


class DatabaseUnavailable(EnvironmentFault):
    """The catalog stayed unreachable, refusing or at another schema revision for the whole wait budget."""


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


class _IdleCloser:
    """One daemon thread per process that closes the idle connections of every `IdleClosingPool` when they are
    due. A pool's checkin only schedules this (a heap push, a notify at most); it used to start a
    `threading.Timer`, whose `start()` waits until the new thread has run: on a busy node that was milliseconds
    inside every operation, a claim's included (bench/claims)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, weakref.ref[IdleClosingPool]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, pool: IdleClosingPool, at: float) -> None:
        """Have `pool.close_if_idle()` called at `at` (time.monotonic)."""
        with self._wake:
            heapq.heappush(self._due, (at, next(self._order), weakref.ref(pool)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="tol-idle-close")
                self._thread.start()
            elif self._due[0][0] == at:  # sooner than what the thread waits for
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, ref = heapq.heappop(self._due)
            pool = ref()
            if pool is not None:
                pool.close_if_idle()


_IDLE_CLOSER = _IdleCloser()
# A forked child has no closer thread, and the parent's lock may have been held at the fork: start afresh.
os.register_at_fork(after_in_child=lambda: globals().update(_IDLE_CLOSER=_IdleCloser()))


class IdleClosingPool(QueuePool):
    """A QueuePool that closes its connections once none was returned for `idle_seconds` (their pool entries
    stay and reconnect at their next checkout). A worker keeps its connection through a commit, the next claim
    and the read of its samples, and holds none while it writes a shard for minutes. `idle_seconds` defaults to
    `IDLE_CLOSE_SECONDS`. The closing is done by one thread per process (`_IdleCloser`), not at checkin."""

    def __init__(self, *args: Any, idle_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle_seconds = idle_seconds
        self._returned_at = time.monotonic()

    def _idle(self) -> float:
        return IDLE_CLOSE_SECONDS if self._idle_seconds is None else self._idle_seconds

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        self._returned_at = now = time.monotonic()
        _IDLE_CLOSER.schedule(self, now + self._idle())

    def close_if_idle(self) -> None:
        """Close the pooled connections if none was returned for the idle time (a later return has its own
        turn)."""
        if time.monotonic() - self._returned_at >= self._idle():
            self.close_idle()

    def close_idle(self) -> None:
        """Close the connections waiting in the pool (an entry in the queue is idle: taking it out makes it
        ours, so no connection in use is ever closed)."""
        idle: list[ConnectionPoolEntry] = []
        while True:
            try:
                idle.append(self._pool.get(False))
            except pool_queue.Empty:
                break
        for record in idle:
            record.close()
            self._pool.put(record, False)


def make_engine(url: str, *, readonly: bool = False, wait_seconds: float | None = None,
                short_lived: bool = False) -> Engine:
    """An engine for the catalog at `url`, configured for SQLite or PostgreSQL.

    `readonly=True` gives SQLite engines deferred transactions, so long reports do not hold the write lock.
    `wait_seconds` is how long `wait_out` waits for this catalog when it is unavailable (default
    `DEFAULT_WAIT_SECONDS`). `short_lived=True` (write workers) keeps a PostgreSQL connection only while it is
    used and `IDLE_CLOSE_SECONDS` after (`IdleClosingPool`), so many ranks do not exhaust `max_connections`.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_location(parsed)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine, immediate=not readonly)
    else:
        pooling: dict[str, object] = {"pool_pre_ping": True}
        if short_lived:
            # A worker's main thread and lease thread: two connections at most, none kept idle. No ping before
            # each use: a pooled connection is at most IDLE_CLOSE_SECONDS old, and one that died anyway fails its
            # statement, which `wait_out` retries on a new connection; a ping would add a round trip to
            # every claim.
            pooling = {"poolclass": IdleClosingPool, "pool_size": 2, "max_overflow": 0}
        try:
            engine = create_engine(
                parsed,
                connect_args={"connect_timeout": 10, "application_name": "tol"},
                **pooling,
            )
        except NoSuchModuleError as exc:
            raise TolError(f"no driver for {parsed.drivername}: {exc}") from None
    _WAIT_BUDGETS[engine] = DEFAULT_WAIT_SECONDS if wait_seconds is None else float(wait_seconds)
    return engine


def wait_budget(bind: Engine | Connection) -> float:
    """Seconds `wait_out` waits for the catalog of `bind` (its engine's `wait_seconds`)."""
    engine = bind.engine if isinstance(bind, Connection) else bind
    return _WAIT_BUDGETS.get(engine, DEFAULT_WAIT_SECONDS)


def first_line(exc: BaseException) -> str:
    """The first line of a driver error's message (SQLAlchemy's own wrapping left out)."""
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip()
    return message.splitlines()[0].strip() if message else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Whether a database error means "the database is away for a while" (see TRANSIENT_MARKERS)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    message = str(exc.orig if exc.orig is not None else exc).lower()
    return any(marker in message for marker in TRANSIENT_MARKERS)


def revision_problem(bind: Engine | Connection) -> str | None:
    """Why the catalog of `bind` is not usable by this code's schema (another revision), or None if it is at
    head. An error that is not transient is looked at this way: a `db downgrade` under running workers makes
    their statements fail with unknown columns, which is the environment's fault, not the shard's."""
    from etl import schema  # deferred: schema loads Alembic, which most engines never need

    engine = bind.engine if isinstance(bind, Connection) else bind
    try:
        current, head = schema.current_revision(engine), schema.head_revision()
    except DBAPIError:
        return None
    if current == head:
        return None
    return f"at schema revision {current or 'base'}, not {head}"


def wait_out(operation: Callable[..., T], *args: object, budget: float, database: str,
             check_revision: Callable[[], str | None] | None = None, **kwargs: Any) -> T:
    """Run `operation(*args, **kwargs)`; while it fails because the database is away (`is_transient`, or
    `check_revision` names a schema revision problem), wait with jittered exponential backoff and run it
    again, for up to `budget` seconds from the first failure. Then raise `DatabaseUnavailable`, one line naming
    `database` (its password hidden already). Every other error is raised as it is.

    The operation must be one transaction (or idempotent), so running it again redoes it whole or finds it done.
    """
    deadline: float | None = None
    delay = FIRST_DELAY_S
    while True:
        try:
            return operation(*args, **kwargs)
        except DBAPIError as exc:
            reason = first_line(exc) if is_transient(exc) else (check_revision() if check_revision else None)
            if reason is None:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + budget
            if now >= deadline:
                raise DatabaseUnavailable(f"catalog database {database} unavailable for {budget:g} s "
                                          f"(setting db_wait_seconds): {reason}") from None
            time.sleep(min(delay * random.uniform(0.5, 1.5), max(deadline - now, 0.0)))
            delay = min(delay * 2, MAX_DELAY_S)


def retrying(bind: Engine | Connection, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`wait_out` with the budget, name and schema check of the catalog of `bind`."""
    engine = bind.engine if isinstance(bind, Connection) else bind
    return wait_out(operation, *args, budget=wait_budget(engine),
                    database=engine.url.render_as_string(hide_password=True),
                    check_revision=lambda: revision_problem(engine), **kwargs)


def take_turns(connection: Connection, what: str) -> None:
    """Make concurrent transactions doing `what` (e.g. `taxa resolve`, `plan NAME`) run one after the other: the
    second waits here until the first commits, then sees its work. On PostgreSQL a transaction-scoped advisory
    lock; SQLite needs none, as its write transactions (BEGIN IMMEDIATE) already run one at a time."""
    if connection.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"tol:{what}".encode()).digest()[:8], "big", signed=True)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def describe(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except TolError:
        return url


def _select_one(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def check_reachable(engine: Engine) -> None:
    """Connect once. A server that is there but away for a while (closed to connections, too many clients,
    restarting, SQLite locked) is waited for up to the engine's budget (then exit 4); one that refuses or does
    not know the database or user is a one-line error at once (exit 2): most often the URL is wrong."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        _select_one(engine)
        return
    except OperationalError as exc:
        message = str(exc.orig if exc.orig is not None else exc).lower()
        if not is_transient(exc) or any(marker in message for marker in FIRST_CONTACT_FATAL):
            raise TolError(f"cannot open the catalog {where}: {first_line(exc)}") from None
    wait_out(_select_one, engine, budget=wait_budget(engine), database=where)
