"""What decides which images a plan may take: split definitions and exclusion lists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Float, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import Base


class SplitDefinition(Base):
    """An immutable train/val/train_small split: a seed and two fractions, turned into integer thresholds."""

    __tablename__ = "split_definitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    val_percent: Mapped[float] = mapped_column(Float)
    train_small_percent: Mapped[float] = mapped_column(Float)
    multiplier: Mapped[int] = mapped_column(BigInteger)
    increment: Mapped[int] = mapped_column(BigInteger)
    val_threshold: Mapped[int] = mapped_column(BigInteger)
    train_small_threshold: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # `hash`: drawn from the seed and each image's split hash; `release`: the images listed in
    # `release_split_members` (a published release's split, `tol import-release`).
    kind: Mapped[str] = mapped_column(String(16), server_default="hash")

    __table_args__ = (CheckConstraint("kind IN ('hash', 'release')", name="kind"),)


class Exclusion(Base):
    """One entry of an exclusion list: an image file name or a species, with the list and reason."""

    __tablename__ = "exclusions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    entry: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(Text)
    genus: Mapped[str | None] = mapped_column(Text)
    species: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("kind IN ('image', 'species')", name="kind"),
        Index(None, "file_name"),
        Index(None, "genus", "species"),
    )
