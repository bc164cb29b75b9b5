"""The catalog tables: the one definition of the schema that migrations must reproduce.

A test compares these models with a database built by ``alembic upgrade head`` on SQLite and PostgreSQL; any
difference fails it, so a change here needs a migration and a migration needs a change here.
"""

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
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Byte-wise ("C") collation on PostgreSQL for ids and file names: they are compared, sorted and indexed millions
# of times, locale-aware comparison costs several times more, and byte order is what SQLite uses too.
IMAGE_ID = String(36).with_variant(String(36, collation="C"), "postgresql")
KEY_TEXT = Text().with_variant(Text(collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


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
    shard_id: Mapped[int] = mapped_column(ForeignKey("shards.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Not a foreign key: a plan inserts millions of members in one statement selected from `images` itself,
    # and PostgreSQL's per-row check of this key cost 40 % of plan creation (bench/scale).
    image_id: Mapped[str] = mapped_column(IMAGE_ID)

    __table_args__ = (Index(None, "image_id"),)


class ImageError(Base):
    """An image that could not be used at some stage (e.g. undecodable while writing a shard)."""

    __tablename__ = "image_errors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(IMAGE_ID, ForeignKey("images.id"))
    shard_id: Mapped[int | None] = mapped_column(ForeignKey("shards.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "image_id"), Index(None, "shard_id"))


# ------------------------------------------------------------------------------------------- reference data
# Each reference file is loaded whole into its table (`tol taxa load`), replacing the previous load.


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


# ------------------------------------------------------------------------------------------- resolved names
# One row per distinct naming key of each source; images join to these in SQL.


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


# ------------------------------------------------------------------------------------------- published release
# `tol import-release`: a published TreeOfLife-10M's identity map and split (etl/release/).


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
# ------------------------------------------------------------------------------------------- provenance
# Who owns each image and under which license (`tol licenses load`, etl/provenance.py), and what a plan allowed.


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
