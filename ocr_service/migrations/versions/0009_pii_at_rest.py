"""Personal data at rest: names, addresses, birth dates and scan results encrypted (issue 11). Placeholder in the chain; filled in by the change that needs it.

Revision ID: 0009_pii_at_rest
Revises: 0008_unit_reviewer_scope
"""

from __future__ import annotations

revision: str = "0009_pii_at_rest"
down_revision: str | None = "0008_unit_reviewer_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
