"""Catalog schema v1: images of the three sources, ingest runs, taxa, splits, exclusions and shard plans.

Why: the old scripts kept their state in a SQLite file of four tables, JSON lookups and the shard files
themselves, so nothing knew which shards were finished or why an image was missing. One schema holds every
stage's state, so each stage can be re-run, resumed and queried.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
# Byte-wise collation on PostgreSQL for ids and file names (fast, and the order SQLite uses).
IMAGE_ID = sa.String(36).with_variant(sa.String(36, collation="C"), "postgresql")
KEY_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    sources = op.create_table(
        "sources",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
    )
    op.bulk_insert(sources, [
        {"name": "eol", "title": "Encyclopedia of Life media cargo archives"},
        {"name": "inat21", "title": "iNaturalist 2021 competition, train split"},
        {"name": "bioscan", "title": "BIOSCAN-1M insect images, cropped_256"},
    ])
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(16), sa.ForeignKey("sources.name"), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("started_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        *[sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
          for name in ("n_listed", "n_added", "n_changed", "n_unchanged", "n_missing", "n_rejected")],
        sa.CheckConstraint("status IN ('running', 'finished', 'failed', 'interrupted')", name="status"),
    )
    op.create_table(
        "taxa",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *[sa.Column(rank, sa.Text(), server_default="", nullable=False)
          for rank in ("kingdom", "phylum", "class", "order", "family", "genus", "species")],
        *[sa.Column(name, sa.Text(), server_default="", nullable=False)
          for name in ("scientific_name", "taxonomic_name", "tagged_name", "common_name")],
        *[sa.Column(f"class_index_{rank}", sa.Integer(), nullable=True)
          for rank in ("kingdom", "phylum", "class", "order", "family", "genus", "species")],
        sa.UniqueConstraint("kingdom", "phylum", "class", "order", "family", "genus", "species"),
    )
    op.create_index(None, "taxa", ["genus", "species"])
    op.create_table(
        "images",
        sa.Column("id", IMAGE_ID, primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("member", sa.Text(), nullable=True),
        sa.Column("member_offset", sa.BigInteger(), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=False),
        sa.Column("eol_content_id", sa.BigInteger(), nullable=True),
        sa.Column("eol_page_id", sa.BigInteger(), nullable=True),
        sa.Column("inat21_filename", KEY_TEXT, nullable=True),
        sa.Column("inat21_cls_name", sa.Text(), nullable=True),
        sa.Column("inat21_cls_num", sa.Integer(), nullable=True),
        sa.Column("bioscan_part", sa.Integer(), nullable=True),
        sa.Column("bioscan_filename", KEY_TEXT, nullable=True),
        sa.Column("split_hash", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(8), server_default="present", nullable=False),
        sa.Column("first_run_id", sa.Integer(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("taxon_id", sa.BigInteger(), nullable=True),
        sa.Column("unnamed_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("source IN ('eol', 'inat21', 'bioscan')", name="source"),
        sa.CheckConstraint("status IN ('present', 'missing')", name="status"),
        sa.CheckConstraint("split_hash >= 0 AND split_hash < 2147483648", name="split_hash_31_bits"),
    )
    for source, columns in (("eol", ["eol_content_id", "eol_page_id"]),
                            ("inat21", ["inat21_cls_num", "inat21_filename"]),
                            ("bioscan", ["bioscan_part", "bioscan_filename"])):
        where = sa.text(f"source = '{source}'")
        op.create_index(f"uq_images_{source}_identity", "images", columns, unique=True, sqlite_where=where,
                        postgresql_where=where)
    op.create_table(
        "ingest_rejects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("ingest_runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index(None, "ingest_rejects", ["run_id"])
    op.create_table(
        "vernacular_names",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scientific_name", sa.Text(), nullable=False),
        sa.Column("common_name", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
    )
    op.create_index(None, "vernacular_names", ["scientific_name", "priority"])
    op.create_table(
        "split_definitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("val_percent", sa.Float(), nullable=False),
        sa.Column("train_small_percent", sa.Float(), nullable=False),
        sa.Column("multiplier", sa.BigInteger(), nullable=False),
        sa.Column("increment", sa.BigInteger(), nullable=False),
        sa.Column("val_threshold", sa.BigInteger(), nullable=False),
        sa.Column("train_small_threshold", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "exclusions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("list_name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("genus", sa.Text(), nullable=True),
        sa.Column("species", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('image', 'species')", name="kind"),
    )
    op.create_index(None, "exclusions", ["file_name"])
    op.create_index(None, "exclusions", ["genus", "species"])
    op.create_table(
        "shard_plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("split_definition_id", sa.Integer(), sa.ForeignKey("split_definitions.id"),
                  nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("resize", sa.String(16), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("samples_per_shard", sa.Integer(), nullable=True),
        sa.Column("shard_bytes", sa.BigInteger(), nullable=True),
        sa.Column("txt_field", sa.String(32), nullable=False),
        sa.Column("out_dir", sa.Text(), nullable=False),
        sa.Column("shuffle_seed", sa.BigInteger(), nullable=False),
        sa.Column("n_shards", sa.Integer(), server_default="0", nullable=False),
        *[sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
          for name in ("n_samples", "n_excluded", "n_unnamed")],
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("split IN ('train', 'val', 'train_small')", name="split"),
    )
    op.create_table(
        "shards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("shard_plans.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("n_planned", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=True),
        sa.Column("n_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("plan_id", "shard_index"),
        sa.CheckConstraint("state IN ('pending', 'claimed', 'done', 'failed')", name="state"),
    )
    op.create_index(None, "shards", ["plan_id", "state"])
    op.create_table(
        "shard_members",
        sa.Column("shard_id", sa.Integer(), sa.ForeignKey("shards.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("image_id", IMAGE_ID, nullable=False),
    )
    op.create_index(None, "shard_members", ["image_id"])
    op.create_table(
        "image_errors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", IMAGE_ID, sa.ForeignKey("images.id"), nullable=False),
        sa.Column("shard_id", sa.Integer(), sa.ForeignKey("shards.id", ondelete="CASCADE"), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index(None, "image_errors", ["image_id"])
    op.create_index(None, "image_errors", ["shard_id"])
    create_view(op, "catalog_images", 1)


def downgrade() -> None:
    drop_view(op, "catalog_images")
    for table in ("image_errors", "shard_members", "shards", "shard_plans", "exclusions",
                  "split_definitions", "vernacular_names", "ingest_rejects", "images", "taxa",
                  "ingest_runs", "sources"):
        op.drop_table(table)
