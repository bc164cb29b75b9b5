"""A published release's identity map and split: `release_ids`, `release_split_members`, `release_imports`,
`release_rejects`, `split_definitions.kind`, and `image_splits` v2.

Why: users of the published TreeOfLife-10M could not rebuild it, because its ids are random uuid4s recorded
only in its `mapping.sqlite` / `catalog.csv` (issue 16). `tol import-release` loads those into `release_ids`
(source identity → published treeoflife_id; images that have one take it as their id) and into a split
definition of kind `release` whose images are listed in `release_split_members`. `image_splits` v2 gives
both kinds of definition. The downgrade reinstalls v1 and drops the rest (release definitions with it).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IMAGE_ID = sa.String(36).with_variant(sa.String(36, collation="C"), "postgresql")
KEY_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
IDENTITIES = {"eol": ("eol_content_id", "eol_page_id"), "inat21": ("inat21_cls_num", "inat21_filename"),
              "bioscan": ("bioscan_part", "bioscan_filename")}


def upgrade() -> None:
    drop_view(op, "image_splits")  # SQLite's batch mode copies split_definitions: no view may name it meanwhile
    with op.batch_alter_table("split_definitions") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="hash"))
        batch.create_check_constraint(op.f("ck_split_definitions_kind"), sa.text("kind IN ('hash', 'release')"))
    op.create_table(
        "release_ids",
        sa.Column("treeoflife_id", IMAGE_ID, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("eol_content_id", sa.BigInteger(), nullable=True),
        sa.Column("eol_page_id", sa.BigInteger(), nullable=True),
        sa.Column("inat21_filename", KEY_TEXT, nullable=True),
        sa.Column("inat21_cls_name", sa.Text(), nullable=True),
        sa.Column("inat21_cls_num", sa.Integer(), nullable=True),
        sa.Column("bioscan_part", sa.Integer(), nullable=True),
        sa.Column("bioscan_filename", KEY_TEXT, nullable=True),
        sa.Column("split_hash", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("source IN ('eol', 'inat21', 'bioscan')", name=op.f("ck_release_ids_source")),
        sa.PrimaryKeyConstraint("treeoflife_id", name=op.f("pk_release_ids")),
    )
    for source, columns in IDENTITIES.items():
        where = sa.text(f"source = '{source}'")
        op.create_index(f"uq_release_ids_{source}_identity", "release_ids", list(columns), unique=True,
                        sqlite_where=where, postgresql_where=where)
    op.create_table(
        "release_split_members",
        sa.Column("split_definition_id", sa.Integer(), nullable=False),
        sa.Column("treeoflife_id", IMAGE_ID, nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("in_train_small", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("split IN ('train', 'val')", name=op.f("ck_release_split_members_split")),
        sa.ForeignKeyConstraint(["split_definition_id"], ["split_definitions.id"], ondelete="CASCADE",
                                name=op.f("fk_release_split_members_split_definition_id_split_definitions")),
        sa.PrimaryKeyConstraint("split_definition_id", "treeoflife_id", name=op.f("pk_release_split_members")),
    )
    op.create_index(op.f("ix_release_split_members_treeoflife_id"), "release_split_members", ["treeoflife_id"])
    op.create_table(
        "release_imports",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("mapping_path", sa.Text(), nullable=True),
        sa.Column("mapping_sha256", sa.String(64), nullable=True),
        sa.Column("catalog_path", sa.Text(), nullable=True),
        sa.Column("catalog_sha256", sa.String(64), nullable=True),
        sa.Column("n_ids", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("n_rejected", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("n_disagreements", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_release_imports")),
    )
    op.create_table(
        "release_rejects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_name", sa.String(64), nullable=False),
        sa.Column("input", sa.String(16), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["import_name"], ["release_imports.name"], ondelete="CASCADE",
                                name=op.f("fk_release_rejects_import_name_release_imports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_rejects")),
    )
    op.create_index(op.f("ix_release_rejects_import_name"), "release_rejects", ["import_name"])
    create_view(op, "image_splits", 2)


def downgrade() -> None:
    drop_view(op, "image_splits")
    op.drop_index(op.f("ix_release_rejects_import_name"), table_name="release_rejects")
    op.drop_table("release_rejects")
    op.drop_table("release_imports")
    op.drop_index(op.f("ix_release_split_members_treeoflife_id"), table_name="release_split_members")
    op.drop_table("release_split_members")
    for source in IDENTITIES:
        op.drop_index(f"uq_release_ids_{source}_identity", table_name="release_ids")
    op.drop_table("release_ids")
    # Release definitions have no hash rule: they go with their members.
    op.execute(sa.text("DELETE FROM split_definitions WHERE kind = 'release'"))
    with op.batch_alter_table("split_definitions") as batch:
        batch.drop_constraint(op.f("ck_split_definitions_kind"), type_="check")
        batch.drop_column("kind")
    create_view(op, "image_splits", 1)
