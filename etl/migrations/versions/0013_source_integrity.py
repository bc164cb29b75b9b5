"""Source integrity: each image's file modification time at ingest, and optionally its content hash.

Why: a source file changed after ingest (2 KB of random bytes written into two JPEGs) decoded with artefacts
and was published (issue 19). Ingest now records the file's mtime (EOL: the archive's) next to its size, and
with `--checksum` its sha256; the write stage reports an image whose size or mtime differs as an image error
"changed since ingest" instead of writing it. The downgrade drops both columns; `tol db downgrade` lists the
values it would lose and needs --yes.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("images", sa.Column("source_mtime_ns", sa.BigInteger(), nullable=True))
    op.add_column("images", sa.Column("content_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("images", "content_sha256")
    op.drop_column("images", "source_mtime_ns")
