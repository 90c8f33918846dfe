"""Batch re-verification: jobs and their per-case items.

Revision ID: 0004_reverify
Revises: 0001
Create Date: 2026-11-23 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_reverify"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("criteria", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("changed_decision", sa.Integer(), nullable=False),
        sa.Column("changed_fields", sa.Integer(), nullable=False),
        sa.Column("now_failing", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"], unique=False)
    op.create_table(
        "job_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("attempt_id", sa.String(length=36), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("number_masked", sa.String(length=32), nullable=True),
        sa.Column("old_decision", sa.String(length=16), nullable=True),
        sa.Column("new_decision", sa.String(length=16), nullable=True),
        sa.Column("old_reasons", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("new_reasons", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("changed", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("old_pipeline_version", sa.String(length=32), nullable=True),
        sa.Column("new_pipeline_version", sa.String(length=32), nullable=True),
        sa.Column("old_models_digest", sa.String(length=64), nullable=True),
        sa.Column("new_models_digest", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_job_items_attempt_id_attempts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_items_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_items")),
        sa.UniqueConstraint("job_id", "attempt_id", name=op.f("uq_job_items_job_id_attempt_id")),
    )
    op.create_index(op.f("ix_job_items_attempt_id"), "job_items", ["attempt_id"], unique=False)
    op.create_index("ix_job_items_job_chunk", "job_items", ["job_id", "chunk_no"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_job_items_job_chunk", table_name="job_items")
    op.drop_index(op.f("ix_job_items_attempt_id"), table_name="job_items")
    op.drop_table("job_items")
    op.drop_index("ix_jobs_created_at", table_name="jobs")
    op.drop_table("jobs")
