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


def test_members_by_slot_keeps_the_places(prepared_url, engine_of, tmp_path):
    """0020 records each image error's slot (filled from `shard_members` for the errors already there) and drops
    the index on `shard_members.image_id`; `plan_members` gives the same rows before and after, and after the
    downgrade, which rebuilds the index."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from tests.helpers import make_plan

    engine = engine_of(prepared_url)
    schema.downgrade(engine, "0019")
    plan = make_plan(engine, tmp_path / "out", per_shard=40)
    failed = [(0, 3), (0, 11), (1, 0), (1, 39)]  # (shard index, slot)
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET state = 'done' WHERE plan_id = :p"), {"p": plan.id})
        for index, slot in failed:
            connection.execute(text("""
                INSERT INTO image_errors (image_id, shard_id, stage, reason)
                SELECT m.image_id, m.shard_id, 'write', 'cannot decode' FROM shard_members AS m
                JOIN shards AS sh ON sh.id = m.shard_id WHERE sh.plan_id = :p AND sh.shard_index = :i
                AND m.position = :s"""), {"p": plan.id, "i": index, "s": slot})

    def places() -> list[tuple]:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(
                "SELECT shard_index, planned_position, position, written, image_id FROM plan_members "
                "WHERE plan_id = :p ORDER BY shard_index, planned_position"), {"p": plan.id})]

    def indexed_columns() -> set[tuple[str, ...]]:
        return {tuple(index["column_names"]) for index in inspect(engine).get_indexes("shard_members")}

    before = places()
    # Independently: in shard 0 the slots after 3 move up one and after 11 two; slot 39 of shard 1 is not written.
    by_slot = {(index, slot): (position, written) for index, slot, position, written, _ in before}
    assert by_slot[(0, 2)] == (2, 1) and by_slot[(0, 3)] == (None, 0) and by_slot[(0, 4)] == (3, 1)
    assert by_slot[(0, 12)] == (10, 1) and by_slot[(1, 1)] == (0, 1) and by_slot[(1, 39)] == (None, 0)
    assert ("image_id",) in indexed_columns()

    schema.upgrade(engine, "0020")
    with engine.connect() as connection:
        recorded = sorted(connection.execute(text("""
            SELECT sh.shard_index, e.planned_position FROM image_errors AS e JOIN shards AS sh ON sh.id = e.shard_id
            WHERE sh.plan_id = :p"""), {"p": plan.id}).all())
    assert [tuple(row) for row in recorded] == failed
    assert ("image_id",) not in indexed_columns()
    assert places() == before
    # An error of a shard without its slot (a writer of older code) is refused, not recorded to misplace samples.
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("""
            INSERT INTO image_errors (image_id, shard_id, stage, reason)
            SELECT m.image_id, m.shard_id, 'write', 'old writer' FROM shard_members AS m
            JOIN shards AS sh ON sh.id = m.shard_id WHERE sh.plan_id = :p AND sh.shard_index = 2
            AND m.position = 0"""), {"p": plan.id})
    assert places() == before

    schema.downgrade(engine, "0019")
    assert ("image_id",) in indexed_columns()
    assert "planned_position" not in {column["name"] for column in inspect(engine).get_columns("image_errors")}
    assert places() == before
