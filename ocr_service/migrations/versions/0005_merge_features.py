"""Merge the review, declaration and re-verification branches into one head.

The three features were built side by side, each migrating from 0001; this empty revision
joins them so `alembic upgrade head` has a single target again.

Revision ID: 0005_merge_features
Revises: 0002_review, 0003_declaration, 0004_reverify
"""

from __future__ import annotations

revision: str = "0005_merge_features"
down_revision: tuple[str, ...] = ("0002_review", "0003_declaration", "0004_reverify")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch disjoint tables."""


def downgrade() -> None:
    """Nothing to undo."""
