"""Files shipped inside the package: migrations, SQL, reference data — the one place that knows where they live.

They are package data (``etl/migrations``, ``etl/sql``, ``etl/data``), read through `importlib.resources`, so
an installed wheel finds them as well as a checkout does. The top-level ``migrations`` and ``sql`` of the
repository are symlinks to the same folders.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import NamedTuple

from etl import named_sql
from etl.errors import TolError

PACKAGE = "etl"


class CheckQuery(NamedTuple):
    """One taxa quality check: its file's stem, the title on its first comment line, and its SQL."""

    name: str
    title: str
    sql: str


def _package_root() -> Traversable:
    return files(PACKAGE)


def migrations_dir() -> Path:
    """The Alembic script folder, as a real directory (Alembic loads its files by path)."""
    folder = _package_root() / "migrations"
    if not isinstance(folder, Path) or not folder.is_dir():
        raise TolError(f"the migrations of tol are not a folder on disk ({folder}): install tol unzipped")
    return folder


def view_sql(name: str, version: int, dialect: str) -> str:
    """The CREATE VIEW text of version `version` of view `name`, ``v<N>.<dialect>.sql`` before ``v<N>.sql``."""
    folder = _package_root() / "sql" / "views" / name
    specific = folder / f"v{version}.{dialect}.sql"
    chosen = specific if specific.is_file() else folder / f"v{version}.sql"
    return chosen.read_text(encoding="utf-8")


def latest_view_version(name: str) -> int:
    """The newest version of view `name` shipped (the N of its highest ``v<N>*.sql``): the one at head."""
    folder = _package_root() / "sql" / "views" / name
    versions = [int(entry.name[1:].split(".")[0]) for entry in folder.iterdir()
                if entry.name.startswith("v") and entry.name.endswith(".sql")]
    if not versions:
        raise TolError(f"no SQL for view {name} in {folder}: the installation of tol is incomplete")
    return max(versions)


def check_queries() -> list[CheckQuery]:
    """Every ``sql/checks/*.sql`` query in file-name order; each file's first comment line is its title."""
    folder = _package_root() / "sql" / "checks"
    queries = []
    for entry in sorted((e for e in folder.iterdir() if e.name.endswith(".sql")), key=lambda e: e.name):
        sql = entry.read_text(encoding="utf-8")
        title = sql.splitlines()[0].lstrip("- ").strip()
        queries.append(CheckQuery(entry.name.removesuffix(".sql"), title, sql))
    if not queries:
        raise TolError(f"no taxa check queries found in {folder}: the installation of tol is incomplete")
    return queries


def named_queries(relative: str) -> dict[str, str]:
    """The `-- name:` queries of the shipped SQL file at `relative` under the package (e.g. "write/queue.sql")."""
    return named_sql.parse((_package_root() / relative).read_text(encoding="utf-8"))


def data_file(name: str) -> Traversable:
    """The shipped data file `name` of ``etl/data`` (read it with ``.read_text(encoding="utf-8")``)."""
    return _package_root() / "data" / name
