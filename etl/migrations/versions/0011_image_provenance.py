"""Provenance: who owns each image and under which license, and the licenses a plan allowed.

Why: a training set is published with each image's license and rights holder. `image_provenance` holds what a
collection's own file says of each image (EOL media manifests, iNat21 `train.json`), `source_provenance` a
collection's citation and any dataset-level license (BIOSCAN-1M), the view `image_licenses` combines them for
every image, and `plan_license_filters` records a plan's `--licenses` and how many images it left out.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IMAGE_ID = sa.String(36).with_variant(sa.String(36, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "image_provenance",
        sa.Column("image_id", IMAGE_ID, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("license_key", sa.String(32), nullable=True),
        sa.Column("license_name", sa.Text(), nullable=False, server_default=""),
        sa.Column("license_link", sa.Text(), nullable=False, server_default=""),
        sa.Column("rights_holder", sa.Text(), nullable=False, server_default=""),
        sa.Column("source_url", sa.Text(), nullable=False, server_default=""),
        sa.Column("copy_url", sa.Text(), nullable=False, server_default=""),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("md5", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("image_id", name="pk_image_provenance"),
    )
    op.create_index("ix_image_provenance_source", "image_provenance", ["source"])
    op.create_table(
        "source_provenance",
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("citation", sa.Text(), nullable=False, server_default=""),
        sa.Column("license_key", sa.String(32), nullable=True),
        sa.Column("license_name", sa.Text(), nullable=True),
        sa.Column("license_link", sa.Text(), nullable=True),
        sa.Column("rights_holder", sa.Text(), nullable=True),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("n_records", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("n_rejected", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("source", name="pk_source_provenance"),
    )
    op.create_table(
        "plan_license_filters",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("licenses", sa.Text(), nullable=False),
        sa.Column("n_left_out", sa.BigInteger(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["plan_id"], ["shard_plans.id"], ondelete="CASCADE",
                                name="fk_plan_license_filters_plan_id_shard_plans"),
        sa.PrimaryKeyConstraint("plan_id", name="pk_plan_license_filters"),
    )
    create_view(op, "image_licenses", 1)


def downgrade() -> None:
    drop_view(op, "image_licenses")
    op.drop_table("plan_license_filters")
    op.drop_table("source_provenance")
    op.drop_index("ix_image_provenance_source", table_name="image_provenance")
    op.drop_table("image_provenance")
