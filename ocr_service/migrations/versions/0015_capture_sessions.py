"""Capture links for the hosted capture page and their audit trail (issue 14).

``capture_sessions`` holds one row per link (the SHA-256 of its token, never the token, with its
expiry and revocation); ``capture_events`` one append-only row per use of a link.

Revision ID: 0015_capture_sessions
Revises: 0014_unit_requests_ack
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_capture_sessions"
down_revision: str | None = "0014_unit_requests_ack"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_capture_sessions_client_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_capture_sessions_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_capture_sessions_token_hash")),
    )
    op.create_index(op.f("ix_capture_sessions_verification_id"), "capture_sessions", ["verification_id"], unique=False)
    op.create_table(
        "capture_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("capture_session_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["capture_session_id"],
            ["capture_sessions.id"],
            name=op.f("fk_capture_events_capture_session_id_capture_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_events")),
    )
    op.create_index(
        op.f("ix_capture_events_capture_session_id"), "capture_events", ["capture_session_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_capture_events_capture_session_id"), table_name="capture_events")
    op.drop_table("capture_events")
    op.drop_index(op.f("ix_capture_sessions_verification_id"), table_name="capture_sessions")
    op.drop_table("capture_sessions")
