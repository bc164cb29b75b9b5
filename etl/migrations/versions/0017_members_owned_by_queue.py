"""shard_members.shard_id is no longer a foreign key: the shard queue alone writes shards and their members.

Why: PostgreSQL checks a foreign key with a trigger per inserted row (a `SELECT … FOR KEY SHARE` of the shard),
and a plan inserts its members in one statement, about a million rows per million images: the check was about
half of a plan's insert (bench/scale, issue 18), and a deferred constraint still checks every row, at commit.
Integrity holds by ownership instead: `etl.write.queue.ShardQueue` is the only writer of `shards` and
`shard_members`, and `add_members` inserts a plan's members by joining the plan's own `shards` rows in the same
transaction that inserted them, so a member cannot name a shard that does not exist. Nothing deletes shards
(a plan never changes); the ON DELETE CASCADE the key carried is kept by a trigger on `shards`, which costs
nothing when members are inserted.

On SQLite batch mode rebuilds `shard_members` by copy (the view that names it is dropped meanwhile). The
downgrade restores the foreign key; it fails, as it should, if a member names a missing shard.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_shard_members_shard_id_shards"
TRIGGER = "shards_delete_members"
PLAN_SAMPLES_VERSION = 3  # the version 0014 installed: batch mode needs it dropped while it copies the table


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FOREIGN_KEY, "shard_members", type_="foreignkey")
        op.execute(f"""
            CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                DELETE FROM shard_members WHERE shard_id = OLD.id;
                RETURN OLD;
            END $$""")
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON shards FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()")
        return
    drop_view(op, "plan_samples")
    with op.batch_alter_table("shard_members") as batch:
        batch.drop_constraint(FOREIGN_KEY, type_="foreignkey")
    create_view(op, "plan_samples", PLAN_SAMPLES_VERSION)
    op.execute(f"""
        CREATE TRIGGER {TRIGGER} AFTER DELETE ON shards FOR EACH ROW
        BEGIN DELETE FROM shard_members WHERE shard_id = OLD.id; END""")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(f"DROP TRIGGER {TRIGGER}" + (" ON shards" if postgresql else ""))
    if postgresql:
        op.execute(f"DROP FUNCTION {TRIGGER}()")
        op.create_foreign_key(FOREIGN_KEY, "shard_members", "shards", ["shard_id"], ["id"], ondelete="CASCADE")
        return
    drop_view(op, "plan_samples")
    with op.batch_alter_table("shard_members") as batch:
        batch.create_foreign_key(FOREIGN_KEY, "shards", ["shard_id"], ["id"], ondelete="CASCADE")
    create_view(op, "plan_samples", PLAN_SAMPLES_VERSION)
