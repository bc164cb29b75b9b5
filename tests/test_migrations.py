"""Every migration goes up, down and up again on both databases, and head matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from etl import resources, schema
from etl.models import Base

REVISIONS = [r.revision for r in reversed(list(ScriptDirectory.from_config(schema.alembic_config())
                                                .walk_revisions()))]
BACKENDS = pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)


def _tables_and_views(engine) -> set[str]:
    inspector = inspect(engine)
    return set(inspector.get_table_names()) | set(inspector.get_view_names())


@BACKENDS
def test_each_migration_up_down_up(empty_url, engine_of):
    engine = engine_of(empty_url)
    previous = "base"
    for revision in REVISIONS:
        schema.upgrade(engine, revision)
        after_up = _tables_and_views(engine)
        schema.downgrade(engine, previous)
        schema.upgrade(engine, revision)
        assert _tables_and_views(engine) == after_up, f"{revision} did not come back the same"
        assert schema.current_revision(engine) == revision
        previous = revision


@BACKENDS
def test_downgrade_base_leaves_nothing(empty_url, engine_of):
    engine = engine_of(empty_url)
    schema.upgrade(engine)
    assert "images" in _tables_and_views(engine)
    schema.downgrade(engine, "base")
    assert _tables_and_views(engine) == set()


@BACKENDS
def test_models_match_head(empty_url, engine_of):
    engine = engine_of(empty_url)
    schema.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_view_versions_are_files():
    sql = resources.view_sql("catalog_images", 1, "sqlite")
    assert sql.lstrip().startswith("--") and "CREATE VIEW catalog_images" in sql


@BACKENDS
def test_members_clustered_keeps_the_rows(empty_url, engine_of):
    """0019 rebuilds `shard_members` on SQLite without a rowid (stored in key order) and back, rows unchanged;
    PostgreSQL keeps its table."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    engine = engine_of(empty_url)
    schema.upgrade(engine, "0018")
    rows = [(shard, slot, f"{shard:08d}-0000-5000-8000-{slot:012d}") for shard in (3, 1, 2) for slot in (2, 0, 1)]
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO shard_members (shard_id, position, image_id) VALUES (:s, :p, :i)"),
                           [{"s": s, "p": p, "i": i} for s, p, i in rows])

    def stored() -> list[tuple[int, int, str]]:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(
                "SELECT shard_id, position, image_id FROM shard_members ORDER BY shard_id, position"))]

    def has_rowid() -> bool:
        with engine.connect() as connection:
            try:
                connection.execute(text("SELECT rowid FROM shard_members")).all()
            except OperationalError:
                return False
            return True

    sqlite = engine.dialect.name == "sqlite"
    assert not sqlite or has_rowid()
    schema.upgrade(engine, "0019")
    assert stored() == sorted(rows)
    if sqlite:
        assert not has_rowid()
        with engine.connect() as connection:  # in key order when read without an ORDER BY
            assert [tuple(r) for r in connection.execute(text("SELECT * FROM shard_members"))] == sorted(rows)
    schema.downgrade(engine, "0018")
    assert stored() == sorted(rows)
    assert not sqlite or has_rowid()
