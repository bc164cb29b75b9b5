"""Shared fixtures: real SQLite files and real PostgreSQL databases, each built by `alembic upgrade head`.

PostgreSQL tests run against the server of ``TOL_TEST_PG_URL`` (default: the local trust-auth server). Each
test session migrates one template database; each test gets its own copy (``CREATE DATABASE … TEMPLATE``),
which is cheaper than migrating and lets worker processes share it. Outside CI an unreachable server skips
those tests with the reason shown; in CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from etl import db, schema
from tests.helpers import IN_CI, prepared_catalog

PG_URL = os.environ.get("TOL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


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

    Creating a database per test is cheap, but dropping one forces a checkpoint of everything the test wrote,
    which made the session's teardown a fifth of the suite's time. A catalog at head is therefore returned to a
    pool after its test and emptied with one TRUNCATE … RESTART IDENTITY (ids start from 1 again, as in a new
    database); one whose schema the test changed, or that cannot be emptied, is dropped instead.
    """

    def __init__(self, admin) -> None:
        self.admin = admin
        self.token = uuid.uuid4().hex[:8]
        self.names: list[str] = []
        self.free_catalogs: list[str] = []

    def url(self, name: str) -> str:
        return make_url(db.parse_url(PG_URL)).set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"tol_test_{self.token}_{len(self.names)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
        self.names.append(name)
        return self.url(name)

    def acquire_catalog(self, template: str) -> str:
        """A database at head with empty tables: a recycled one if any is free, else a copy of `template`."""
        if self.free_catalogs:
            return self.url(self.free_catalogs.pop())
        return self.create(template=template)

    def release_catalog(self, url: str, template: PgTemplate) -> None:
        """Empty the catalog at `url` and keep it for the next test, or drop it if its test changed the schema."""
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
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
            self.drop(name)
            return
        engine.dispose()
        self.free_catalogs.append(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        if name in self.free_catalogs:
            self.free_catalogs.remove(name)

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
def empty_pg_url(pg_databases: PgDatabases) -> str:
    """URL of a new, empty PostgreSQL database."""
    return pg_databases.create()


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


_sqlite_template: dict[str, bytes] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path: Path) -> Iterator[str]:
    """A catalog at head, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "catalog.sqlite"
        if "head" not in _sqlite_template:
            build = tmp_path / "template.sqlite"
            engine = db.make_engine(f"sqlite:///{build}")
            schema.upgrade(engine)
            engine.dispose()
            _sqlite_template["head"] = build.read_bytes()
            build.unlink()
        path.write_bytes(_sqlite_template["head"])
        yield f"sqlite:///{path}"
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
    """One generated sample collection per test session (read-only: copy it before changing it)."""
    from etl import sampledata

    out = tmp_path_factory.mktemp("sample") / "collection"
    sampledata.generate(out, images=SAMPLE_IMAGES, seed=7)
    return out


@pytest.fixture
def pg_catalog(pg_databases, pg_template, engine_of, sample_collection: Path):
    """A PostgreSQL catalog of the sample collection, ingested, named and split (for real-process tests)."""
    url = pg_databases.create(template=pg_template)
    engine = engine_of(url)
    prepared_catalog(engine, sample_collection)
    return url, engine
