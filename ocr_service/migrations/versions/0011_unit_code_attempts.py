"""Work-unit confirmation codes: attempts per unit and per client key (issue 11).

Replaces the per-attempt log ``work_unit_bind_attempts`` (counted per subject only) with one
counter row per subject, work unit and client key (``unit_code_attempts``), which also carries
the lockout and its back-off level. The old rows are rate-limit state, not history: dropped.

Revision ID: 0011_unit_code_attempts
Revises: 0010_api_key_expiry
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_unit_code_attempts"
down_revision: str | None = "0010_api_key_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_code_attempts",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_unit_code_attempts")),
    )
    op.create_index(
        op.f("ix_unit_code_attempts_last_failure_at"), "unit_code_attempts", ["last_failure_at"], unique=False
    )
    op.drop_index("ix_work_unit_bind_attempts_subject_at", table_name="work_unit_bind_attempts")
    op.drop_table("work_unit_bind_attempts")


def downgrade() -> None:
    op.create_table(
        "work_unit_bind_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_work_unit_bind_attempts_client_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_unit_bind_attempts")),
    )
    op.create_index(
        "ix_work_unit_bind_attempts_subject_at",
        "work_unit_bind_attempts",
        ["client_key_id", "subject_id", "at"],
        unique=False,
    )
    op.drop_index(op.f("ix_unit_code_attempts_last_failure_at"), table_name="unit_code_attempts")
    op.drop_table("unit_code_attempts")
