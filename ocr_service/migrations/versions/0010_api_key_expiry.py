"""API keys: expiry and rotation (issue 11). Placeholder in the chain; filled in by the change that needs it.

Revision ID: 0010_api_key_expiry
Revises: 0009_pii_at_rest
"""

from __future__ import annotations

revision: str = "0010_api_key_expiry"
down_revision: str | None = "0009_pii_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
