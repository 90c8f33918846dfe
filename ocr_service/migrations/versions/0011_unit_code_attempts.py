"""Work-unit confirmation codes: attempts per unit and per client key (issue 11). Placeholder in the chain; filled in by the change that needs it.

Revision ID: 0011_unit_code_attempts
Revises: 0010_api_key_expiry
"""

from __future__ import annotations

revision: str = "0011_unit_code_attempts"
down_revision: str | None = "0010_api_key_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
