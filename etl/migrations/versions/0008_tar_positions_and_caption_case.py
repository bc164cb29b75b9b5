"""plan_samples v2: `position` is the sample's index in its tar; shard_plans.caption_case.

Why: v1's `position` was the planned slot, so after an image of a shard failed every later row of that shard
was off by one against wids' shard index and the DALI `.idx` (issue 15). v2 counts the written samples before
each one, and keeps the slot as `planned_position`. `caption_case` records whether a plan writes its caption
members under the original release's names (`taxonTag_com.txt`) or in lower case, for readers that lower-case
extensions. The downgrade reinstalls v1 and drops the column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    drop_view(op, "plan_samples")  # SQLite's batch mode copies shard_plans: no view may name it meanwhile
    with op.batch_alter_table("shard_plans") as batch:
        batch.add_column(sa.Column("caption_case", sa.String(16), nullable=False, server_default="original"))
        batch.create_check_constraint(op.f("ck_shard_plans_caption_case"),
                                      sa.text("caption_case IN ('original', 'lower')"))
    create_view(op, "plan_samples", 2)


def downgrade() -> None:
    drop_view(op, "plan_samples")
    with op.batch_alter_table("shard_plans") as batch:
        batch.drop_constraint(op.f("ck_shard_plans_caption_case"), type_="check")
        batch.drop_column("caption_case")
    create_view(op, "plan_samples", 1)
