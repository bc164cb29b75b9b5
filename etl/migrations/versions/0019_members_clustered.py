"""On SQLite, `shard_members` is a WITHOUT ROWID table: its rows are stored in the order of its key (shard, slot).

Why: a plan's members are read shard by shard in slot order (the export, `plan_members`, the writer). In a rowid
table that order is the primary key's separate index, and each entry costs a second b-tree lookup in the table
for the image id: reading the 949k members of a 1M-image plan through `plan_members` took 1.9 s of CPU, against
0.6 s once the table is clustered by its key (issue 18: the export of 9.5M samples in under a minute). The index
on `image_id` then holds the key (shard, slot) in place of a rowid.
PostgreSQL has no such table kind (its heap keeps insertion order, which is the key's order for a plan), so the
migration changes nothing there.

SQLite batch mode rebuilds the table by copy; the views that name it (`plan_members`, and `plan_samples` over
it) and the trigger of 0017 that deletes a shard's members are dropped meanwhile and reinstalled as they
were. The downgrade rebuilds a rowid table.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAN_MEMBERS_VERSION = 1  # the versions 0018 installed
PLAN_SAMPLES_VERSION = 4
TRIGGER = "shards_delete_members"  # as 0017 created it on SQLite


def _rebuild(with_rowid: bool) -> None:
    """Copy `shard_members` into a table of the same columns and indexes, with or without a rowid (SQLite)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    drop_view(op, "plan_samples")
    drop_view(op, "plan_members")
    op.execute(f"DROP TRIGGER {TRIGGER}")
    with op.batch_alter_table("shard_members", recreate="always",
                              table_kwargs={"sqlite_with_rowid": with_rowid}):
        pass
    op.execute(f"""
        CREATE TRIGGER {TRIGGER} AFTER DELETE ON shards FOR EACH ROW
        BEGIN DELETE FROM shard_members WHERE shard_id = OLD.id; END""")
    create_view(op, "plan_members", PLAN_MEMBERS_VERSION)
    create_view(op, "plan_samples", PLAN_SAMPLES_VERSION)


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
