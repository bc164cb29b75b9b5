"""Reference data and resolved names: the taxonomy stage's inputs and outputs as tables.

Why: the old make_metadata read every reference file into Python dicts and wrote three JSON lookups. Loading
the references into tables and resolving names once per distinct key (EOL page, iNat21 class, BIOSCAN label)
lets images be named by a join, lets users query why an image has the taxon it has, and costs little more for
10M images than for their distinct taxa.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANK_COLUMNS = ("kingdom", "phylum", "class", "order", "family")


def _row_no() -> sa.Column:
    return sa.Column("row_no", sa.BigInteger(), primary_key=True, autoincrement=False)


def _text(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=False, **kwargs)


def _resolution_columns() -> list[sa.Column]:
    return [sa.Column("taxon_id", sa.BigInteger(), sa.ForeignKey("taxa.id"), nullable=True),
            sa.Column("unnamed_reason", sa.Text(), nullable=True),
            sa.Column("changes", sa.Text(), nullable=True)]


def upgrade() -> None:
    op.create_table(
        "ref_resources",
        sa.Column("name", sa.String(32), primary_key=True),
        _text("path"),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "ref_eol_taxa", _row_no(), _text("taxon_id"), _text("parent_taxon_id", server_default=""),
        _text("rank", server_default=""), _text("canonical_name", server_default=""),
        sa.Column("page_id", sa.BigInteger(), nullable=True),
    )
    op.create_index(None, "ref_eol_taxa", ["taxon_id"])
    op.create_table("ref_eol_scraped", _row_no(), sa.Column("page_id", sa.BigInteger(), nullable=False),
                    _text("scientific_name"))
    op.create_table(
        "ref_eol_vernaculars", _row_no(), sa.Column("page_id", sa.BigInteger(), nullable=True),
        _text("canonical_form"), _text("vernacular"), _text("language"),
        sa.Column("preferred", sa.Integer(), nullable=False),
    )
    op.create_table("ref_itis_chains", _row_no(), *[_text(c) for c in (*RANK_COLUMNS, "genus", "species")],
                    _text("vernacular"), _text("vernacular_lang"))
    op.create_table(
        "ref_inat_taxa", sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *[_text(c) for c in (*RANK_COLUMNS, "genus", "specific_epithet", "scientific_name", "taxon_rank")],
    )
    op.create_table("ref_inat_vernaculars", _row_no(), sa.Column("taxon_id", sa.BigInteger(), nullable=False),
                    _text("vernacular"))
    op.create_index(None, "ref_inat_vernaculars", ["taxon_id"])
    op.create_table("ref_resolved", _row_no(), _text("name"), *[_text(c) for c in RANK_COLUMNS])
    op.create_table("names_eol_pages", sa.Column("page_id", sa.BigInteger(), primary_key=True, autoincrement=False),
                    *_resolution_columns())
    op.create_table("names_inat21_classes",
                    sa.Column("cls_num", sa.Integer(), primary_key=True, autoincrement=False),
                    *_resolution_columns())
    op.create_table("names_bioscan_labels", *[sa.Column(c, sa.Text(), primary_key=True)
                                              for c in ("order", "family", "genus", "species")],
                    *_resolution_columns())
    create_view(op, "image_names", 1)


def downgrade() -> None:
    drop_view(op, "image_names")
    for table in ("names_bioscan_labels", "names_inat21_classes", "names_eol_pages", "ref_resolved",
                  "ref_inat_vernaculars", "ref_inat_taxa", "ref_itis_chains", "ref_eol_vernaculars",
                  "ref_eol_scraped", "ref_eol_taxa", "ref_resources"):
        op.drop_table(table)
