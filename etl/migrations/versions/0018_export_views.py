"""The views `taxon_names` and `plan_members`; plan_samples v4 composed of them.

Why: exporting a plan of 9.5M samples took 218–249 s, about 4–10 times the one minute wanted (issue 18). The
export read `plan_samples`, which computes the display case of seven ranks and the common name once per sample
(9.5M times) though they belong to the taxon (~427k), and looks every sample's taxon up. `taxon_names` defines
those names once per taxon (the one definition the views and the export share, tied to etl/naming.py by
tests/test_rules_tied.py); `plan_members` is the places of the samples (plan, shard, slot, position in the tar,
written) without the images and names, so the export reads the places with the images and joins the names per
taxon itself. plan_samples v4 has v3's rows and columns, composed of the two. `plan_members` counts the failed
samples before a sample only in the shards that have errors.
A later migration that rebuilds `shard_plans`, `shards` or `shard_members` in SQLite batch mode drops
`plan_samples` and `plan_members` first (and `taxa`: `taxon_names` too). The downgrade reinstalls plan_samples
v3 and drops both views.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from etl.schema import create_view, drop_view

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_view(op, "taxon_names", 1)
    create_view(op, "plan_members", 1)
    create_view(op, "plan_samples", 4)


def downgrade() -> None:
    create_view(op, "plan_samples", 3)
    drop_view(op, "plan_members")
    drop_view(op, "taxon_names")
