"""Review cases can be assigned to a named reviewer by an admin (issue 10).

Until ``assigned_until`` only the assignee may claim the case, and their "take next" gives it
to them before older cases; afterwards it is an ordinary waiting case again.

Revision ID: 0007_review_assignment
Revises: 0006_review_release
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_review_assignment"
down_revision: str | None = "0006_review_release"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_cases") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("assigned_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("assigned_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_column("assigned_until")
        batch.drop_column("assigned_by")
        batch.drop_column("assigned_to")
