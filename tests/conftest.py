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

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from etl import db, schema

PG_URL = os.environ.get("TOL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = bool(os.environ.get("CI"))


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
    """Creates uniquely named databases on the test server and drops them at the end of the session."""

    def __init__(self, admin) -> None:
        self.admin = admin
        self.token = uuid.uuid4().hex[:8]
        self.names: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"tol_test_{self.token}_{len(self.names)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
        self.names.append(name)
        return make_url(db.parse_url(PG_URL)).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in reversed(self.names):
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def pg_databases(pg_admin) -> Iterator[PgDatabases]:
    databases = PgDatabases(pg_admin)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_template(pg_databases: PgDatabases) -> str:
    """Name of a database migrated to head, used as the template of every per-test catalog."""
    url = pg_databases.create()
    engine = db.make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return make_url(url).database


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
def catalog_url(request, tmp_path: Path) -> str:
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
        return f"sqlite:///{path}"
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    return databases.create(template=request.getfixturevalue("pg_template"))


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
