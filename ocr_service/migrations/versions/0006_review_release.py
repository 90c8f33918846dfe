"""Review cases remember who released them last, and when (issue 10).

``claim_next_case`` skips a case its own releaser gave back within the cool-down, so "Release"
then "Take next" moves on to another case.

Revision ID: 0006_review_release
Revises: 0005_merge_features
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_review_release"
down_revision: str | None = "0005_merge_features"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_cases") as batch:
        batch.add_column(sa.Column("released_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_column("released_at")
        batch.drop_column("released_by")
