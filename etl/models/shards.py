"""Tables of the plan and write stages: shard plans, their shards (the work queue) and members, image errors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import IMAGE_ID, Base


class ShardPlan(Base):
    """Every option of one shard-writing job; its shards and their members are decided when it is made."""

    __tablename__ = "shard_plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    split_definition_id: Mapped[int] = mapped_column(ForeignKey("split_definitions.id"))
    split: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    resize: Mapped[str] = mapped_column(String(16))
    quality: Mapped[int] = mapped_column(Integer)
    samples_per_shard: Mapped[int | None] = mapped_column(Integer)
    shard_bytes: Mapped[int | None] = mapped_column(BigInteger)
    txt_field: Mapped[str] = mapped_column(String(32))
    caption_case: Mapped[str] = mapped_column(String(16), server_default="original")
    # The libraries that make its JPEGs (etl.images.CODEC_STACK); a plan is written with one stack only.
    codec: Mapped[str] = mapped_column(String(200), server_default="pillow (before revision 0014)")
    out_dir: Mapped[str] = mapped_column(Text)
    shuffle_seed: Mapped[int] = mapped_column(BigInteger)
    n_shards: Mapped[int] = mapped_column(Integer, server_default="0")
    n_samples: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_excluded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_unnamed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("split IN ('train', 'val', 'train_small')", name="split"),
                      CheckConstraint("caption_case IN ('original', 'lower')", name="caption_case"))


class Shard(Base):
    """One tar of a plan: a work-queue row claimed by workers, then its manifest once written."""

    __tablename__ = "shards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("shard_plans.id", ondelete="CASCADE"))
    shard_index: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    n_planned: Mapped[int] = mapped_column(Integer)
    claim_token: Mapped[str | None] = mapped_column(String(36))
    worker: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[float | None] = mapped_column(Float)
    lease_until: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    n_samples: Mapped[int | None] = mapped_column(Integer)
    n_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32))
    codec: Mapped[str | None] = mapped_column(String(200))  # the codec stack that wrote it
    duration_s: Mapped[float | None] = mapped_column(Float)
    done_at: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("plan_id", "shard_index"),
        CheckConstraint("state IN ('pending', 'claimed', 'done', 'failed')", name="state"),
        Index(None, "plan_id", "state"),
    )


class ShardMember(Base):
    """The images of a shard, in the order they are written."""

    __tablename__ = "shard_members"
    # Not a foreign key either (migration 0017): PostgreSQL's per-row check was half of a plan's insert. The
    # shard queue is the only writer, and inserts a plan's members joined to the shards it inserted in the same
    # transaction; trigger `shards_delete_members` deletes them with their shard.
    shard_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Not a foreign key: a plan inserts millions of members in one statement selected from `images` itself,
    # and PostgreSQL's per-row check of this key cost 40 % of plan creation (bench/scale).
    image_id: Mapped[str] = mapped_column(IMAGE_ID)

    # SQLite stores the rows in key order (migration 0019): reading a shard's members in slot order is then one
    # scan, not an index walk with a table lookup per member. No index on `image_id` (migration 0020): a plan
    # appends its members in key order, and nothing looks a member up by its image.
    __table_args__ = ({"sqlite_with_rowid": False},)


class ImageError(Base):
    """An image that could not be used at some stage (e.g. undecodable while writing a shard)."""

    __tablename__ = "image_errors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(IMAGE_ID, ForeignKey("images.id"))
    shard_id: Mapped[int | None] = mapped_column(ForeignKey("shards.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    # The failed image's slot in its shard (shard_members.position), for a stage with a shard: what places
    # the shard's written samples in its tar (plan_members). NULL for an error of no shard, and only then.
    planned_position: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index(None, "image_id"), Index(None, "shard_id"),
                      CheckConstraint("shard_id IS NULL OR planned_position IS NOT NULL", name="slot"))
