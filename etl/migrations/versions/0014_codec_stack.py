"""The codec stack: `shard_plans.codec` and `shards.codec`.

Why: the write stage decodes and resizes JPEGs with libjpeg-turbo (simplejpeg) and OpenCV, falling back to
Pillow (issue 18), and JPEG bytes depend on those libraries' versions. A plan records the stack it was made
with (`etl.images.CODEC_STACK`) and each shard's manifest the stack that wrote it, so a plan is never finished
with different bytes: a worker refuses to resume a plan made with another stack. Plans recorded before this
revision were written by Pillow alone; they get a stack name no current writer has, and are refused too.
The downgrade drops both columns.

Revision ID: 0014
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "pillow (before revision 0014)"


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy on SQLite), so no view naming these tables has to be dropped and rebuilt.
    op.add_column("shard_plans", sa.Column("codec", sa.String(200), nullable=False, server_default=BEFORE))
    op.add_column("shards", sa.Column("codec", sa.String(200)))


def downgrade() -> None:
    op.drop_column("shards", "codec")
    op.drop_column("shard_plans", "codec")
