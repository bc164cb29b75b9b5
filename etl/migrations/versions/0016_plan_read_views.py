"""Views a plan reads in one pass: image_splits v3 and image_exclusions v2.

Why: making a plan read each split image twice (the split view, then `images` again by id, for the split hash
and the taxon) and looked up every image's taxon to match the excluded species; at 10M images on SQLite these
per-image lookups were most of a plan's time (issue 18). image_splits v3 has v2's rows and adds `split_hash`
and `taxon_id`; image_exclusions v2 has v1's rows and finds the excluded species' taxa before it scans images.
The downgrade reinstalls image_splits v2 and image_exclusions v1.

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from etl.schema import create_view

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_view(op, "image_splits", 3)
    create_view(op, "image_exclusions", 2)


def downgrade() -> None:
    create_view(op, "image_exclusions", 1)
    create_view(op, "image_splits", 2)
