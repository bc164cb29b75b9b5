"""A published release's identity map and split (`tol import-release`, etl/release/)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import IMAGE_ID, KEY_TEXT, Base


class ReleaseId(Base):
    """One published treeoflife_id and the source identity it names (the release's `mapping.sqlite`)."""

    __tablename__ = "release_ids"
    treeoflife_id: Mapped[str] = mapped_column(IMAGE_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    eol_content_id: Mapped[int | None] = mapped_column(BigInteger)
    eol_page_id: Mapped[int | None] = mapped_column(BigInteger)
    inat21_filename: Mapped[str | None] = mapped_column(KEY_TEXT)
    inat21_cls_name: Mapped[str | None] = mapped_column(Text)
    inat21_cls_num: Mapped[int | None] = mapped_column(Integer)
    bioscan_part: Mapped[int | None] = mapped_column(Integer)
    bioscan_filename: Mapped[str | None] = mapped_column(KEY_TEXT)
    # The split hash of the published id (etl.ids.split_hash), given to an image that takes this id.
    split_hash: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("uq_release_ids_eol_identity", "eol_content_id", "eol_page_id", unique=True,
              sqlite_where=text("source = 'eol'"), postgresql_where=text("source = 'eol'")),
        Index("uq_release_ids_inat21_identity", "inat21_cls_num", "inat21_filename", unique=True,
              sqlite_where=text("source = 'inat21'"), postgresql_where=text("source = 'inat21'")),
        Index("uq_release_ids_bioscan_identity", "bioscan_part", "bioscan_filename", unique=True,
              sqlite_where=text("source = 'bioscan'"), postgresql_where=text("source = 'bioscan'")),
        CheckConstraint("source IN ('eol', 'inat21', 'bioscan')", name="source"),
    )


class ReleaseSplitMember(Base):
    """The split of one published treeoflife_id under a `release` split definition."""

    __tablename__ = "release_split_members"
    split_definition_id: Mapped[int] = mapped_column(
        ForeignKey("split_definitions.id", ondelete="CASCADE"), primary_key=True)
    treeoflife_id: Mapped[str] = mapped_column(IMAGE_ID, primary_key=True)
    split: Mapped[str] = mapped_column(String(16))
    in_train_small: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (CheckConstraint("split IN ('train', 'val')", name="split"), Index(None, "treeoflife_id"))


class ReleaseImport(Base):
    """One imported release: its files (by content) and what the import counted."""

    __tablename__ = "release_imports"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    mapping_path: Mapped[str | None] = mapped_column(Text)
    mapping_sha256: Mapped[str | None] = mapped_column(String(64))
    catalog_path: Mapped[str | None] = mapped_column(Text)
    catalog_sha256: Mapped[str | None] = mapped_column(String(64))
    n_ids: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_rejected: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_disagreements: Mapped[int] = mapped_column(BigInteger, server_default="0")
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReleaseReject(Base):
    """A row of a release's mapping.sqlite or catalog.csv that was not imported, or where the two disagree."""

    __tablename__ = "release_rejects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_name: Mapped[str] = mapped_column(ForeignKey("release_imports.name", ondelete="CASCADE"))
    input: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "import_name"),)
