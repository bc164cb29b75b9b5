"""Who owns each image and under which license (`tol licenses load`, etl/provenance.py), and what a plan
allowed."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import IMAGE_ID, Base


class ImageProvenance(Base):
    """One image's license and origin as its collection's provenance file gives them (raw text; `license_key` is
    the normalised license, NULL when the text names no license tol recognises)."""

    __tablename__ = "image_provenance"
    image_id: Mapped[str] = mapped_column(IMAGE_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    license_key: Mapped[str | None] = mapped_column(String(32))
    license_name: Mapped[str] = mapped_column(Text, server_default="")
    license_link: Mapped[str] = mapped_column(Text, server_default="")
    rights_holder: Mapped[str] = mapped_column(Text, server_default="")
    source_url: Mapped[str] = mapped_column(Text, server_default="")
    copy_url: Mapped[str] = mapped_column(Text, server_default="")
    title: Mapped[str] = mapped_column(Text, server_default="")
    md5: Mapped[str] = mapped_column(Text, server_default="")

    __table_args__ = (Index(None, "source"),)


class SourceProvenance(Base):
    """A collection as a whole: its citation and, when one license covers every image (BIOSCAN-1M), that license."""

    __tablename__ = "source_provenance"
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    title: Mapped[str] = mapped_column(Text, server_default="")
    citation: Mapped[str] = mapped_column(Text, server_default="")
    license_key: Mapped[str | None] = mapped_column(String(32))
    license_name: Mapped[str | None] = mapped_column(Text)
    license_link: Mapped[str | None] = mapped_column(Text)
    rights_holder: Mapped[str | None] = mapped_column(Text)
    # The per-image provenance file last loaded: where, its checksum (sha256 of the files' sha256s for a
    # folder), its records and rejected rows.
    file: Mapped[str | None] = mapped_column(Text)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    n_records: Mapped[int] = mapped_column(BigInteger, server_default="0")
    n_rejected: Mapped[int] = mapped_column(BigInteger, server_default="0")


class PlanLicenseFilter(Base):
    """A plan made with `--licenses`: the license keys it allowed and how many images it left out for theirs."""

    __tablename__ = "plan_license_filters"
    plan_id: Mapped[int] = mapped_column(ForeignKey("shard_plans.id", ondelete="CASCADE"), primary_key=True)
    licenses: Mapped[str] = mapped_column(Text)
    n_left_out: Mapped[int] = mapped_column(BigInteger, server_default="0")
