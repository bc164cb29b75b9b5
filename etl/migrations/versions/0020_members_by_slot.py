"""A plan's members are inserted in their key order, without an index on `shard_members.image_id`.

Why: a plan of 10M images missed its time (issue 18: under 2 minutes on PostgreSQL, 4 on SQLite). Half of the
train plan's member insert (79 s of 139 s on PostgreSQL) went to the index on `shard_members.image_id`: a sort of
9.5M ids to insert in their order, then millions of index entries spread among every other plan's. Its one
reader was `plan_members`, which placed a shard's failed images by looking them up by id. Each image error now
records the failed image's slot in its shard (`image_errors.planned_position`, filled for the errors already
recorded from `shard_members`), plan_members v2 counts failed slots from it, and the index goes. A plan then
inserts its members in (shard, slot) order, the order of the table's key: appended at the end, with no sort.

The downgrade rebuilds the index, reinstalls plan_members v1 (and plan_samples v4 over it) and drops the column
(SQLite batch mode rebuilds `image_errors` by copy).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAN_SAMPLES_VERSION = 4  # composed of plan_members, so it is dropped and reinstalled with it
INDEX = "ix_shard_members_image_id"
# An error of a shard names its slot. A writer of older code, still running through the upgrade, would record
# errors without one, and plan_members would then place the shard's later samples wrongly without a word: its
# commit fails instead, and the shard is written again by this code.
SLOT_CHECK = "ck_image_errors_slot"
SLOT_RULE = "shard_id IS NULL OR planned_position IS NOT NULL"


def upgrade() -> None:
    # The views name `image_errors`; SQLite batch mode (for the check) copies the table, so they go first.
    drop_view(op, "plan_samples")
    drop_view(op, "plan_members")
    op.add_column("image_errors", sa.Column("planned_position", sa.Integer(), nullable=True))
    op.execute("""
        UPDATE image_errors SET planned_position = (
            SELECT MIN(m.position) FROM shard_members AS m
            WHERE m.shard_id = image_errors.shard_id AND m.image_id = image_errors.image_id)
        WHERE shard_id IS NOT NULL""")
    with op.batch_alter_table("image_errors") as batch:
        batch.create_check_constraint(op.f(SLOT_CHECK), sa.text(SLOT_RULE))
    create_view(op, "plan_members", 2)
    create_view(op, "plan_samples", PLAN_SAMPLES_VERSION)
    op.drop_index(INDEX, table_name="shard_members")


def downgrade() -> None:
    op.create_index(INDEX, "shard_members", ["image_id"])
    drop_view(op, "plan_samples")
    drop_view(op, "plan_members")
    with op.batch_alter_table("image_errors") as batch:
        batch.drop_constraint(op.f(SLOT_CHECK), type_="check")
        batch.drop_column("planned_position")
    create_view(op, "plan_members", 1)
    create_view(op, "plan_samples", PLAN_SAMPLES_VERSION)
