"""Ingest details: a per-image suspect note and the BIOSCAN metadata table.

Why: the ingest checks each image's first and last bytes; a JPEG without its end marker may still decode in
part, so it is kept with a note rather than rejected. BIOSCAN images are named by a separate metadata file;
holding it in the catalog lets ingest report images without metadata (and the reverse) in SQL, and lets the
naming stage join on it instead of loading 1.1M records into memory.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("images", sa.Column("suspect", sa.Text(), nullable=True))
    op.create_table(
        "bioscan_metadata",
        sa.Column("image_file", sa.Text(), primary_key=True),
        *[sa.Column(name, sa.Text(), server_default="", nullable=False)
          for name in ("order", "family", "genus", "species", "chunk_number")],
    )


def downgrade() -> None:
    op.drop_table("bioscan_metadata")
    op.drop_column("images", "suspect")
