"""Index the Dynamic Hierarchy by page.

Why: `taxa resolve` used to hold every DH row in Python (the real file has about 2.5M), which put its peak
memory near 1 GB. It now reads only the rows on the paths from the catalogued pages to the root, a few
thousand pages at a time, and each such read looks rows up by page.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ref_eol_taxa_page_id", "ref_eol_taxa", ["page_id"])


def downgrade() -> None:
    op.drop_index("ix_ref_eol_taxa_page_id", table_name="ref_eol_taxa")
