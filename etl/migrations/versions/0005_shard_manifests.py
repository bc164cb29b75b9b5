"""Shard manifests carry an MD5 too, and a view lists every planned sample with its names.

Why: the wids shard index (`shardindex.json`) names each shard's md5sum; keeping it in the manifest lets the
index be written from the catalog without re-reading any tar. The `plan_samples` view replaces the old
make_catalog, which decoded every image to read two text fields.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("shards", sa.Column("md5", sa.String(32), nullable=True))
    create_view(op, "plan_samples", 1)


def downgrade() -> None:
    drop_view(op, "plan_samples")
    op.drop_column("shards", "md5")
