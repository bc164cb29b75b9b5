"""Shared fixtures: real SQLite files and real PostgreSQL databases, each built by `alembic upgrade head`.

PostgreSQL tests run against the server of ``TOL_TEST_PG_URL`` (default: the local trust-auth server). Each
test session migrates one template database; each test gets its own copy (``CREATE DATABASE … TEMPLATE``),
which is cheaper than migrating and lets worker processes share it. Outside CI an unreachable server skips
those tests with the reason shown; in CI (``CI`` set) it fails them.

Work every test would repeat is done once per session and copied: the catalog at head, and the prepared
catalog of the sample collection (ingested, named, exclusions loaded, split ``main``) that most stage tests
start from — a file copy on SQLite, a template copy on PostgreSQL.

The suite runs in parallel worker processes (pytest-xdist; ``-n auto --dist loadgroup`` in pyproject.toml, ``-n 0``
runs it in one process), because it waits on PostgreSQL, the disk and the processes it starts more than it
computes. Each worker has its own session: its own PostgreSQL databases (named by a token of the worker) and its
own temporary folder. What a session builds from files alone and never changes (the sample collection and the
SQLite templates) is built once per run, by whichever worker wants it first, and shared. Tests that start real
process trees whose timing matters (MPI ranks, Slurm jobs, the chaos suite's kills and outages, headless
Chromium) run one after another on one worker (`SERIAL_GROUP`), while the other workers take the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from etl import db, schema
from tests.helpers import IN_CI, prepared_catalog

PG_URL = os.environ.get("TOL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

# ------------------------------------------------------------------------------------- parallel workers

SERIAL_GROUP = "processes"
# Tests whose process trees would compete with one another for the two cores, the one Slurm node or a server
# they take down: MPI ranks and Slurm jobs, the chaos suite (kills, outages, tmpfs mounts), headless Chromium.
SERIAL_MODULES = ("tests/test_cluster.py", "tests/chaos/")
SERIAL_TESTS = ("tests/test_report.py::test_report_renders_offline_and_the_card_agrees_with_status_and_the_export",)
SERIAL_MARKERS = ("slurm", "chaos")
# Tests sharing a session fixture that takes long to build and only they use: one worker builds it, for all.
FIXTURE_GROUPS = {"demo_300": ("tests/test_cli.py::test_demo_runs_the_whole_pipeline_and_reruns_as_a_no_op",
                               "tests/test_pinned_output.py::test_demo_shards_keep_their_pinned_bytes")}
CHAOS_ROW = "chaos_row"


def _group_of(nodeid: str) -> str | None:
    """The group whose tests one worker runs one after another, or None for a test any worker may take.

    By test id alone, because the controller that schedules the tests sees only their ids."""
    test = nodeid.split("@")[0].split("[")[0]
    if test.startswith(SERIAL_MODULES) or test in SERIAL_TESTS:
        return SERIAL_GROUP
    return next((group for group, tests in FIXTURE_GROUPS.items() if test in tests), None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With --dist loadgroup, send the tests of each group of `_group_of` to one worker, in order (and those of any
    xdist_group mark, as xdist does). Groups are chosen here, by test id, rather than by xdist_group marks: xdist
    3.8 carries a mark to the controller as an "@group" suffix it writes into the item's private id, which pytest
    9.2 no longer reads, so marked tests were silently spread over all workers."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Grouped(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group_of(nodeid) or super()._split_scope(nodeid)

    return Grouped(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test that needs a group (by its markers or fixtures) but whose id `_group_of` does not put in it: it
    would run beside the tests it must not run beside."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        wanted = SERIAL_GROUP if any(item.get_closest_marker(name) for name in SERIAL_MARKERS) else next(
            (group for group in FIXTURE_GROUPS if group in fixtures), None)
        if wanted and _group_of(item.nodeid) not in (wanted, SERIAL_GROUP):
            raise pytest.UsageError(f"{item.nodeid} belongs in the xdist group {wanted!r}: add it to "
                                    "SERIAL_MODULES, SERIAL_TESTS or FIXTURE_GROUPS in tests/conftest.py")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _chaos_results() -> list:
    from tests.chaos import conftest as chaos

    return chaos.RESULTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a worker, hand the chaos suite's result rows to the controller with the test's report (the table is
    printed where the run is watched)."""
    outcome = yield
    if call.when == "teardown" and _is_worker(item.config) and "chaos_results" in getattr(item, "fixturenames", ()):
        rows = _chaos_results()
        outcome.get_result().user_properties.extend((CHAOS_ROW, dataclasses.asdict(row)) for row in rows)
        rows.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """On the controller of a parallel run, collect the chaos rows the workers sent."""
    rows = [value for name, value in report.user_properties if name == CHAOS_ROW]
    if rows and report.when == "teardown":
        from tests.chaos.common import ChaosRow

        _chaos_results().extend(ChaosRow(**row) for row in rows)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The chaos table of a parallel run, unless tests/chaos/conftest.py, which prints it, is loaded here (as in a
    run without workers, or one given tests/chaos)."""
    if config.pluginmanager.getplugin("dsession") is None or not _chaos_results():
        return
    from tests.chaos import conftest as chaos

    if not config.pluginmanager.is_registered(chaos):
        chaos.pytest_terminal_summary(terminalreporter)


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder `name` that `build` fills, once per run: in a parallel run, in the temporary folder all workers
    share, by the first worker that wants it while the others wait on its lock; else in the session's own."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder; each worker's own is a folder in it
    folder, done = base / f"shared-{name}", base / f"shared-{name}.done"
    with open(base / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed halfway left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder



def _admin_engine():
    return create_engine(db.parse_url(PG_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_admin():
    """An autocommit engine on the test server's maintenance database."""
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: no server for these tests
        message = f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


class PgDatabases:
    """Uniquely named databases on the test server, recycled between tests and dropped at the end of the session.

    Creating a database is cheap, but dropping one forces a checkpoint of everything the server holds dirty
    (PostgreSQL 15 still does on every DROP DATABASE), which made the session's teardown a fifth of the suite's
    time. So databases are recycled instead: after its test, a catalog at head is emptied with one TRUNCATE …
    RESTART IDENTITY (ids start from 1 again, as in a new database) and pooled for the next test that wants a
    catalog; any other database (an empty one, or a catalog whose schema the test changed) has its public schema
    dropped and recreated and is pooled for the next test that wants an empty database. Only what cannot be
    reset is dropped before the end.
    """

    def __init__(self, admin) -> None:
        self.admin = admin
        self.token = uuid.uuid4().hex[:8]
        self.serial = itertools.count()
        self.names: list[str] = []
        self.free_catalogs: list[str] = []
        self.free_empty: list[str] = []

    def url(self, name: str) -> str:
        return make_url(db.parse_url(PG_URL)).set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"tol_test_{self.token}_{next(self.serial)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
            # A test database need not survive a crash of the server: commits do not wait for the WAL flush.
            connection.execute(text(f"ALTER DATABASE {name} SET synchronous_commit = off"))
        self.names.append(name)
        return self.url(name)

    def acquire_empty(self) -> str:
        """An empty database: a recycled one if any is free, else a new one."""
        if self.free_empty:
            return self.url(self.free_empty.pop())
        return self.create()

    def acquire_catalog(self, template: str) -> str:
        """A database at head with empty tables: a recycled one if any is free, else a copy of `template`."""
        if self.free_catalogs:
            return self.url(self.free_catalogs.pop())
        return self.create(template=template)

    def _disconnect(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})

    def release_catalog(self, url: str, template: PgTemplate) -> None:
        """Empty the catalog at `url` and keep it for the next test, or reset it to an empty database if its test
        changed the schema."""
        name = make_url(url).database
        assert name is not None
        self._disconnect(name)
        engine = create_engine(db.parse_url(url), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                unchanged = (_public_tables(connection) == template.tables
                             and _seeded_rows(connection, template) == template.seeds)
                if not unchanged:
                    raise LookupError("schema or seed rows changed by the test")
                listed = ", ".join(f'"{t}"' for t in sorted(template.tables - template.seeds.keys()))
                connection.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))
        except Exception:
            engine.dispose()
            self.release_empty(url)
            return
        engine.dispose()
        self.free_catalogs.append(name)

    def release_empty(self, url: str) -> None:
        """Return the database at `url` to an empty one (a fresh public schema) and keep it for the next test; drop
        it if it holds anything a fresh schema would not remove."""
        name = make_url(url).database
        assert name is not None
        self._disconnect(name)
        engine = create_engine(db.parse_url(url), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                others = connection.execute(text(
                    "SELECT count(*) FROM pg_namespace WHERE nspname <> 'public' AND nspname NOT LIKE 'pg\\_%' "
                    "AND nspname <> 'information_schema'")).scalar_one()
                extensions = connection.execute(text(
                    "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'")).scalar_one()
                if others or extensions:
                    raise LookupError("the test made a schema or extension of its own")
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        except Exception:
            engine.dispose()
            self.drop(name)
            return
        engine.dispose()
        self.free_empty.append(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        self.names.remove(name)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in reversed(self.names):
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _public_tables(connection) -> frozenset[str]:
    return frozenset(connection.execute(text(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE'")).scalars())


def _seeded_rows(connection, template: PgTemplate | None = None) -> dict[str, list[tuple]]:
    """The rows of every table the migrations fill (alembic_version, sources), sorted."""
    names = template.seeds.keys() if template is not None else _public_tables(connection)
    seeded = {}
    for name in sorted(names):
        rows = sorted(tuple(row) for row in connection.execute(text(f'SELECT * FROM "{name}"')))
        if rows or template is not None:
            seeded[name] = rows
    return seeded


@pytest.fixture(scope="session")
def pg_databases(pg_admin) -> Iterator[PgDatabases]:
    databases = PgDatabases(pg_admin)
    yield databases
    databases.drop_all()


class PgTemplate(NamedTuple):
    """The database every per-test catalog is copied from, and what a clean copy holds."""

    name: str
    tables: frozenset[str]
    seeds: dict[str, list[tuple]]


@pytest.fixture(scope="session")
def pg_catalog_template(pg_databases: PgDatabases) -> PgTemplate:
    """A database migrated to head, used as the template of every per-test catalog."""
    url = pg_databases.create()
    engine = db.make_engine(url)
    schema.upgrade(engine)
    with engine.connect() as connection:
        template = PgTemplate(make_url(url).database, _public_tables(connection), _seeded_rows(connection))
    engine.dispose()
    return template


@pytest.fixture(scope="session")
def pg_template(pg_catalog_template: PgTemplate) -> str:
    """Name of a database migrated to head (for tests that copy it themselves)."""
    return pg_catalog_template.name


@pytest.fixture
def empty_pg_url(pg_databases: PgDatabases) -> Iterator[str]:
    """URL of an empty PostgreSQL database (new, or recycled with a fresh public schema)."""
    url = pg_databases.acquire_empty()
    yield url
    pg_databases.release_empty(url)


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """URL of a new, empty SQLite file."""
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


@pytest.fixture
def empty_url(request, tmp_path: Path) -> str:
    """An empty catalog on the database named by the test's `backend` parameter."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return request.getfixturevalue("empty_pg_url")


@pytest.fixture(scope="session")
def sqlite_catalog_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to head, copied for every per-test catalog (one per run)."""

    def build(folder: Path) -> None:
        engine = db.make_engine(f"sqlite:///{folder / 'head.sqlite'}")
        schema.upgrade(engine)
        _seal_sqlite(engine, folder / "head.sqlite")

    return _built_once(tmp_path_factory, "sqlite-head", build) / "head.sqlite"


def _seal_sqlite(engine, path: Path) -> None:
    """Close a SQLite catalog and move everything of it into its main file, so that copying that file copies the
    catalog."""
    engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _sqlite_copy(template: Path, tmp_path: Path) -> str:
    """URL of a copy of the SQLite file `template` in the test's own folder."""
    path = tmp_path / "catalog.sqlite"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path: Path) -> Iterator[str]:
    """A catalog at head, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield _sqlite_copy(request.getfixturevalue("sqlite_catalog_template"), tmp_path)
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    template: PgTemplate = request.getfixturevalue("pg_catalog_template")
    url = databases.acquire_catalog(template.name)
    yield url
    databases.release_catalog(url, template)


@pytest.fixture
def engine_of():
    """Open engines by URL and dispose of them after the test."""
    engines = []

    def open_engine(url: str, **kwargs):
        engine = db.make_engine(url, **kwargs)
        engines.append(engine)
        return engine

    yield open_engine
    for engine in engines:
        engine.dispose()


SAMPLE_IMAGES = int(os.environ.get("TOL_TEST_SAMPLE_IMAGES", "800"))


@pytest.fixture(scope="session")
def sample_collection(tmp_path_factory) -> Path:
    """One generated sample collection per run (read-only: copy it before changing it)."""
    from etl import sampledata

    return _built_once(tmp_path_factory, "sample",
                       lambda folder: sampledata.generate(folder / "collection", images=SAMPLE_IMAGES, seed=7)) / \
        "collection"


@pytest.fixture(scope="session")
def sqlite_prepared_template(sqlite_catalog_template: Path, sample_collection: Path, tmp_path_factory) -> Path:
    """A SQLite catalog of the sample collection, prepared once per run (see prepared_catalog), copied per test."""

    def build(folder: Path) -> None:
        path = folder / "prepared.sqlite"
        shutil.copyfile(sqlite_catalog_template, path)
        engine = db.make_engine(f"sqlite:///{path}")
        prepared_catalog(engine, sample_collection)
        _seal_sqlite(engine, path)

    return _built_once(tmp_path_factory, "sqlite-prepared", build) / "prepared.sqlite"


@pytest.fixture(scope="session")
def pg_prepared_template(pg_databases: PgDatabases, pg_catalog_template: PgTemplate, sample_collection: Path) -> str:
    """Name of a PostgreSQL catalog of the sample collection, prepared once (see prepared_catalog), the template
    of every per-test prepared catalog."""
    url = pg_databases.create(template=pg_catalog_template.name)
    engine = db.make_engine(url)
    prepared_catalog(engine, sample_collection)
    engine.dispose()
    name = make_url(url).database
    assert name is not None
    pg_databases._disconnect(name)
    return name


def _pg_prepared(request) -> Iterator[str]:
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    url = databases.create(template=request.getfixturevalue("pg_prepared_template"))
    yield url
    databases.release_catalog(url, request.getfixturevalue("pg_catalog_template"))


@pytest.fixture
def prepared_sqlite_url(sqlite_prepared_template: Path, tmp_path: Path) -> str:
    """URL of a SQLite catalog of the sample collection, ingested, named, with the rare-species exclusions loaded
    and the split `main` created (a copy of one prepared per session)."""
    return _sqlite_copy(sqlite_prepared_template, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def prepared_url(request, tmp_path: Path) -> Iterator[str]:
    """A prepared catalog of the sample collection (see prepared_sqlite_url), once on SQLite and once on
    PostgreSQL."""
    if request.param == "sqlite":
        yield _sqlite_copy(request.getfixturevalue("sqlite_prepared_template"), tmp_path)
        return
    yield from _pg_prepared(request)


@pytest.fixture
def pg_catalog(request, engine_of):
    """A PostgreSQL prepared catalog of the sample collection (for real-process tests): its URL and an engine."""
    urls = _pg_prepared(request)
    url = next(urls)
    yield url, engine_of(url)
    next(urls, None)


@pytest.fixture(scope="session")
def demo_300(tmp_path_factory) -> Path:
    """The folder of one `tol -q demo --images 300` per session (catalog, shards, catalog CSVs), run with no TOL_*
    setting. Tests read it; the only thing one may do to it is rerun the demo, which must change nothing."""
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("demo")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TOL_")}
    done = subprocess.run([str(Path(sys.executable).parent / "tol"), "-q", "demo", str(base / "demo"), "--images",
                           "300"], env=environment, capture_output=True, text=True, cwd=base)
    assert done.returncode == 0, done.stderr
    return base / "demo"
