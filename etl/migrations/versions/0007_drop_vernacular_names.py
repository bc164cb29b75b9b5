"""Drop the unused table vernacular_names.

Why: schema v1 made it for candidate common names per scientific name, but nothing ever read or wrote it:
common names are decided once per taxon while resolving (`taxa.common_name`), from the reference files loaded
into the ref_* tables (ref_eol_vernaculars, ref_inat_vernaculars). An always-empty table only misleads whoever
queries the catalog. The downgrade recreates it exactly as 0001 made it (no later revision changed it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("vernacular_names")


def downgrade() -> None:
    op.create_table(
        "vernacular_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scientific_name", sa.Text(), nullable=False),
        sa.Column("common_name", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vernacular_names"),
    )
    op.create_index("ix_vernacular_names_scientific_name_priority", "vernacular_names",
                    ["scientific_name", "priority"])
