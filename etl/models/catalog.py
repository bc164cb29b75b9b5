"""Tables the ingest stage writes: the sources, ingest runs and their rejects, images, BIOSCAN metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import IMAGE_ID, KEY_TEXT, Base


class Source(Base):
    """The three image collections; images refer to them by name."""

    __tablename__ = "sources"
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    title: Mapped[str] = mapped_column(Text)


class IngestRun(Base):
    """One `tol ingest` of one source: where it read, when, and what it found."""

    __tablename__ = "ingest_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(ForeignKey("sources.name"))
    root: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    n_listed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_added: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_changed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_unchanged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_missing: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_rejected: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (
        CheckConstraint("status IN ('running', 'finished', 'failed', 'interrupted')", name="status"),
    )


class Image(Base):
    """One image file of one source, keyed by its stable treeoflife_id (UUIDv5 of its source identity)."""

    __tablename__ = "images"
    id: Mapped[str] = mapped_column(IMAGE_ID, primary_key=True)
    # Checked by a constraint rather than a foreign key: per-row FK triggers cost PostgreSQL a third of
    # the ingest time at 10M rows, and the three sources are fixed.
    source: Mapped[str] = mapped_column(String(16))
    # iNat21/BIOSCAN: file path under the source root; EOL: the archive's file name.
    path: Mapped[str] = mapped_column(Text)
    # EOL only: the member inside the archive and where its bytes start in the uncompressed tar stream.
    member: Mapped[str | None] = mapped_column(Text)
    member_offset: Mapped[int | None] = mapped_column(BigInteger)
    byte_size: Mapped[int] = mapped_column(BigInteger)
    eol_content_id: Mapped[int | None] = mapped_column(BigInteger)
    eol_page_id: Mapped[int | None] = mapped_column(BigInteger)
    inat21_filename: Mapped[str | None] = mapped_column(KEY_TEXT)
    inat21_cls_name: Mapped[str | None] = mapped_column(Text)
    inat21_cls_num: Mapped[int | None] = mapped_column(Integer)
    bioscan_part: Mapped[int | None] = mapped_column(Integer)
    bioscan_filename: Mapped[str | None] = mapped_column(KEY_TEXT)
    # 31 bits of a hash of the id: the only input, with a split's seed, of the split an image falls in.
    split_hash: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8), server_default="present")
    # Bookkeeping only (which ingest run added / last changed the row), so not foreign keys.
    first_run_id: Mapped[int | None] = mapped_column(Integer)
    last_run_id: Mapped[int | None] = mapped_column(Integer)
    # Not a foreign key: `taxa resolve` rewrites taxa and these ids together in one transaction, and a per-row
    # FK check (plus an index to make taxa deletes fast) would dominate resolving 10M images.
    taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    unnamed_reason: Mapped[str | None] = mapped_column(Text)
    # Something odd seen at ingest that does not stop the image being used (e.g. no JPEG end marker).
    suspect: Mapped[str | None] = mapped_column(Text)
    # The file's modification time at ingest (EOL: its archive's), in ns; NULL for rows ingested before 0013.
    source_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    # The file's sha256 at ingest when `tol ingest --checksum` was given (EOL members: the member's bytes).
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    # One natural key per source, as partial unique indexes: each row enters only its own source's index,
    # which halves the index work of loading 10M images.
    __table_args__ = (
        Index("uq_images_eol_identity", "eol_content_id", "eol_page_id", unique=True,
              sqlite_where=text("source = 'eol'"), postgresql_where=text("source = 'eol'")),
        Index("uq_images_inat21_identity", "inat21_cls_num", "inat21_filename", unique=True,
              sqlite_where=text("source = 'inat21'"), postgresql_where=text("source = 'inat21'")),
        Index("uq_images_bioscan_identity", "bioscan_part", "bioscan_filename", unique=True,
              sqlite_where=text("source = 'bioscan'"), postgresql_where=text("source = 'bioscan'")),
        CheckConstraint("source IN ('eol', 'inat21', 'bioscan')", name="source"),
        CheckConstraint("status IN ('present', 'missing')", name="status"),
        CheckConstraint("split_hash >= 0 AND split_hash < 2147483648", name="split_hash_31_bits"),
    )


class BioscanMetadata(Base):
    """The fields of the BIOSCAN-1M metadata the pipeline uses, one row per image file (raw text)."""

    __tablename__ = "bioscan_metadata"
    image_file: Mapped[str] = mapped_column(Text, primary_key=True)
    order: Mapped[str] = mapped_column(Text, server_default="")
    family: Mapped[str] = mapped_column(Text, server_default="")
    genus: Mapped[str] = mapped_column(Text, server_default="")
    species: Mapped[str] = mapped_column(Text, server_default="")
    chunk_number: Mapped[str] = mapped_column(Text, server_default="")


class IngestReject(Base):
    """A file or archive member an ingest could not catalogue, with the reason."""

    __tablename__ = "ingest_rejects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "run_id"),)
