"""The codec stack: `shard_plans.codec` and `shards.codec`; plan_samples v3.

Why: the write stage decodes and resizes JPEGs with libjpeg-turbo (simplejpeg) and OpenCV, falling back to
Pillow (issue 18), and JPEG bytes depend on those libraries' versions. A plan records the stack it was made
with (`etl.images.CODEC_STACK`) and each shard's manifest the stack that wrote it, so a plan is never finished
with different bytes: a worker refuses to resume a plan made with another stack. Plans recorded before this
revision were written by Pillow alone; they get a stack name no current writer has, and are refused too.
plan_samples v3 has v2's rows and columns, and counts the failed samples before each sample from
`image_errors` (SQLite made v2's count quadratic in the shard size: exporting 1M rows took 584 µs a row).
The downgrade reinstalls plan_samples v2 and drops both columns.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "pillow (before revision 0014)"


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy on SQLite), so no view naming these tables has to be dropped and rebuilt.
    op.add_column("shard_plans", sa.Column("codec", sa.String(200), nullable=False, server_default=BEFORE))
    op.add_column("shards", sa.Column("codec", sa.String(200)))
    create_view(op, "plan_samples", 3)


def downgrade() -> None:
    create_view(op, "plan_samples", 2)
    op.drop_column("shards", "codec")
    op.drop_column("shard_plans", "codec")
