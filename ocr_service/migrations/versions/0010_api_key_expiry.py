"""API keys: expiry and rotation (issue 11).

``expires_at`` (None: never). Rotation keeps the row -- its id is what verifications,
declarations and work units point at -- and swaps the secret's hash; the replaced hash is kept in
``previous_key_hash`` until ``previous_valid_until`` (the grace period). Existing keys get no
expiry: a lifetime applies to keys issued from now on, so no deployed client is cut off by
the upgrade.

Revision ID: 0010_api_key_expiry
Revises: 0009_pii_at_rest
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_api_key_expiry"
down_revision: str | None = "0009_pii_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("previous_key_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
    # a unique index, not a constraint: SQLite adds it without copying the table (a copy would
    # have to drop api_keys, which every verification, declaration and work unit references)
    op.create_index(op.f("ix_api_keys_previous_key_hash"), "api_keys", ["previous_key_hash"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_previous_key_hash"), table_name="api_keys")
    # plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not batch mode: batch would copy and
    # drop api_keys, which the foreign keys of the other tables forbid
    for column in ("rotated_at", "previous_valid_until", "previous_key_hash", "expires_at"):
        op.drop_column("api_keys", column)
