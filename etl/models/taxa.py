"""Tables the taxonomy stage writes: distinct taxa and the taxon resolved for each naming key of a source.

One row per distinct naming key of each source; images join to these in SQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etl.models.base import Base


class Taxon(Base):
    """A distinct seven-rank taxon (lower case, species = epithet) with its display names and class indices."""

    __tablename__ = "taxa"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kingdom: Mapped[str] = mapped_column(Text, server_default="")
    phylum: Mapped[str] = mapped_column(Text, server_default="")
    class_: Mapped[str] = mapped_column("class", Text, server_default="")
    order: Mapped[str] = mapped_column(Text, server_default="")
    family: Mapped[str] = mapped_column(Text, server_default="")
    genus: Mapped[str] = mapped_column(Text, server_default="")
    species: Mapped[str] = mapped_column(Text, server_default="")
    scientific_name: Mapped[str] = mapped_column(Text, server_default="")
    taxonomic_name: Mapped[str] = mapped_column(Text, server_default="")
    tagged_name: Mapped[str] = mapped_column(Text, server_default="")
    common_name: Mapped[str] = mapped_column(Text, server_default="")
    class_index_kingdom: Mapped[int | None] = mapped_column(Integer)
    class_index_phylum: Mapped[int | None] = mapped_column(Integer)
    class_index_class: Mapped[int | None] = mapped_column(Integer)
    class_index_order: Mapped[int | None] = mapped_column(Integer)
    class_index_family: Mapped[int | None] = mapped_column(Integer)
    class_index_genus: Mapped[int | None] = mapped_column(Integer)
    class_index_species: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("kingdom", "phylum", "class", "order", "family", "genus", "species"),
        Index(None, "genus", "species"),
    )




class ResolvedName:
    """What resolving one naming key gave: its taxon (or why none) and what the upgrade changed."""

    taxon_id: Mapped[int | None] = mapped_column(ForeignKey("taxa.id"))
    unnamed_reason: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[str | None] = mapped_column(Text)


class EolPageName(ResolvedName, Base):
    """The taxon resolved for an EOL page."""

    __tablename__ = "names_eol_pages"
    page_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Inat21ClassName(ResolvedName, Base):
    """The taxon resolved for an iNat21 class folder."""

    __tablename__ = "names_inat21_classes"
    cls_num: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class BioscanLabelName(ResolvedName, Base):
    """The taxon resolved for a distinct BIOSCAN (order, family, genus, species) label."""

    __tablename__ = "names_bioscan_labels"
    order: Mapped[str] = mapped_column(Text, primary_key=True)
    family: Mapped[str] = mapped_column(Text, primary_key=True)
    genus: Mapped[str] = mapped_column(Text, primary_key=True)
    species: Mapped[str] = mapped_column(Text, primary_key=True)
