"""Reference data: each reference file is loaded whole into its table (`tol taxa load`), replacing the
previous load; what was loaded and what could not be read are recorded too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import Base


class ReferenceResource(Base):
    """What was loaded from which reference file, when."""

    __tablename__ = "ref_resources"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    n_rows: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefReject(Base):
    """A row of a reference file that could not be read: where, why, and the raw line (cut short)."""

    __tablename__ = "ref_rejects"
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    line_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class RefEolTaxon(Base):
    """EOL Dynamic Hierarchy taxon.tab rows (the columns the naming rules read), in file order."""

    __tablename__ = "ref_eol_taxa"
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    taxon_id: Mapped[str] = mapped_column(Text)
    parent_taxon_id: Mapped[str] = mapped_column(Text, server_default="")
    rank: Mapped[str] = mapped_column(Text, server_default="")
    canonical_name: Mapped[str] = mapped_column(Text, server_default="")
    page_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index(None, "taxon_id"), Index(None, "page_id"))


class RefEolScraped(Base):
    """scraped_page_ids.csv: raw names for EOL pages with images but no usable DH entry."""

    __tablename__ = "ref_eol_scraped"
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    page_id: Mapped[int] = mapped_column(BigInteger)
    scientific_name: Mapped[str] = mapped_column(Text)


class RefEolVernacular(Base):
    """EOL vernacularnames.csv rows."""

    __tablename__ = "ref_eol_vernaculars"
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    page_id: Mapped[int | None] = mapped_column(BigInteger)
    canonical_form: Mapped[str] = mapped_column(Text)
    vernacular: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    preferred: Mapped[int] = mapped_column(Integer)


class HigherRanks:
    """Kingdom to family as a reference file gives them (raw text)."""

    kingdom: Mapped[str] = mapped_column(Text)
    phylum: Mapped[str] = mapped_column(Text)
    class_: Mapped[str] = mapped_column("class", Text)
    order: Mapped[str] = mapped_column(Text)
    family: Mapped[str] = mapped_column(Text)


class RefItisChain(HigherRanks, Base):
    """ITIS species_level_taxonomy_chains.csv rows: seven ranks (Species is the binomial) and vernaculars."""

    __tablename__ = "ref_itis_chains"
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    genus: Mapped[str] = mapped_column(Text)
    species: Mapped[str] = mapped_column(Text)
    vernacular: Mapped[str] = mapped_column(Text)
    vernacular_lang: Mapped[str] = mapped_column(Text)


class RefInatTaxon(HigherRanks, Base):
    """iNaturalist DwC-A taxa.csv rows."""

    __tablename__ = "ref_inat_taxa"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    genus: Mapped[str] = mapped_column(Text)
    specific_epithet: Mapped[str] = mapped_column(Text)
    scientific_name: Mapped[str] = mapped_column(Text)
    taxon_rank: Mapped[str] = mapped_column(Text)


class RefInatVernacular(Base):
    """iNaturalist DwC-A VernacularNames-english.csv rows."""

    __tablename__ = "ref_inat_vernaculars"
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    taxon_id: Mapped[int] = mapped_column(BigInteger)
    vernacular: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "taxon_id"),)


class RefResolved(HigherRanks, Base):
    """Global Names resolver output: one name and the five higher ranks of its best result."""

    __tablename__ = "ref_resolved"
    row_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text)
