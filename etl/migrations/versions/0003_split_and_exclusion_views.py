"""Split and exclusion views.

Why: the old make_splits drew val from a Python set, so the same seed gave a different validation set on
every run. Splits are now defined in SQL as a pure function of a seed and each image's stable hash, so any
user can SELECT them and they never move. Exclusions (rare-species lists) are data, and a view says per
image whether and why it is left out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_view(op, "image_splits", 1)
    create_view(op, "image_exclusions", 1)


def downgrade() -> None:
    drop_view(op, "image_exclusions")
    drop_view(op, "image_splits")
