"""Add the folder_csv collection: its name in images.source, its taxa and names tables, its exclusion rule.

Why: this is the one migration a new collection brings (docs/adding-a-source.md). It lives beside its source
module (tests/fourth_source/folder_csv.py) and reaches Alembic as a second `version_locations` entry, so only
the test that uses it ever applies it. The downgrade removes the collection: its images, runs and rejects go
first, since the restored constraint and the sources row they refer to would refuse them.

Revision ID: folder_csv_1
Revises: the project's head, whatever it is when the test runs
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from etl import resources, schema

revision: str = "folder_csv_1"
# A test collection rides on whatever head the project has, so a new project migration needs no edit here.
down_revision: str | None = schema.head_revision()
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES_BEFORE = ("eol", "inat21", "bioscan")
SOURCES_AFTER = (*SOURCES_BEFORE, "folder_csv")
RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
EXCLUSIONS_VIEW = Path(__file__).resolve().parent.parent / "sql" / "image_exclusions.sql"
# The views over `images`, each at the newest version the project ships (the version at its head).
IMAGE_VIEWS = {name: resources.latest_view_version(name)
               for name in ("catalog_images", "image_exclusions", "image_licenses", "image_names", "image_splits",
                            "plan_samples")}


def _allow_sources(names: tuple[str, ...]) -> None:
    """Make the images.source constraint allow exactly `names` (the views are put back as they were)."""
    # Batch mode rebuilds the table on SQLite, which cannot alter a constraint in place. SQLite checks every
    # view when the rebuilt table takes the old one's name, so the views over it go first; and dropping the
    # old table would break image_errors' foreign key (foreign_keys is on, and cannot be turned off inside a
    # transaction), so its rows wait in a temporary table.
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for view in IMAGE_VIEWS:
        schema.drop_view(op, view)
    if sqlite:
        bind.exec_driver_sql("CREATE TEMPORARY TABLE image_errors_kept AS SELECT * FROM image_errors")
        bind.exec_driver_sql("DELETE FROM image_errors")
    allowed = ", ".join(f"'{name}'" for name in names)
    with op.batch_alter_table("images") as batch:
        batch.drop_constraint(op.f("ck_images_source"), type_="check")
        batch.create_check_constraint(op.f("ck_images_source"), sa.text(f"source IN ({allowed})"))
    if sqlite:
        bind.exec_driver_sql("INSERT INTO image_errors SELECT * FROM image_errors_kept")
        bind.exec_driver_sql("DROP TABLE temp.image_errors_kept")
    for view, version in IMAGE_VIEWS.items():
        schema.create_view(op, view, version)


def upgrade() -> None:
    _allow_sources(SOURCES_AFTER)
    op.create_table(
        "folder_csv_taxa",
        sa.Column("file_name", sa.Text(), primary_key=True),
        *[sa.Column(rank, sa.Text(), server_default="", nullable=False) for rank in RANKS],
        sa.Column("common_name", sa.Text(), server_default="", nullable=False),
    )
    op.create_table(
        "names_folder_csv_labels",
        *[sa.Column(rank, sa.Text(), primary_key=True) for rank in RANKS],
        sa.Column("taxon_id", sa.BigInteger(), sa.ForeignKey("taxa.id"), nullable=True),
        sa.Column("unnamed_reason", sa.Text(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
    )
    op.bulk_insert(sa.table("sources", sa.column("name"), sa.column("title")),
                   [{"name": "folder_csv", "title": "A folder of images and a CSV of their taxa (test collection)"}])
    schema.drop_view(op, "image_exclusions")
    op.get_bind().exec_driver_sql(EXCLUSIONS_VIEW.read_text(encoding="utf-8"))


def downgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("DELETE FROM image_errors "
                         "WHERE image_id IN (SELECT id FROM images WHERE source = 'folder_csv')")
    for table in ("images", "ingest_rejects", "ingest_runs"):
        bind.exec_driver_sql(f"DELETE FROM {table} WHERE source = 'folder_csv'")
    bind.exec_driver_sql("DELETE FROM sources WHERE name = 'folder_csv'")
    op.drop_table("names_folder_csv_labels")
    op.drop_table("folder_csv_taxa")
    _allow_sources(SOURCES_BEFORE)
