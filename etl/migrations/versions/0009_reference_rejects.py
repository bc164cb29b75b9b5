"""Rows of reference files that could not be read: `ref_rejects`.

Why: one malformed row in a reference file used to abort `tol taxa load` for every file after it. Now a
malformed row is recorded here (resource, line or record number, reason, the raw line cut to 300
characters) and the rest of the file loads; each load of a resource replaces its rejects.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ref_rejects",
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("line_no", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("resource", "line_no", name="pk_ref_rejects"),
    )


def downgrade() -> None:
    op.drop_table("ref_rejects")
