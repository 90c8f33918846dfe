"""申报须知 acknowledgement and units asking to be registered (issue 12 item 9).

``declarations`` gains when the applicant acknowledged the instructions and which version of the
text (confirm and submit refuse a declaration without it; existing rows start unacknowledged, so a
draft asks once more). ``work_unit_requests`` holds a unit's request to be registered; the contact's
name, phone and note are stored encrypted by their column types (binary here).

Revision ID: 0014_unit_requests_ack
Revises: 0013_exam_projects
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014_unit_requests_ack"
down_revision: str | None = "0013_exam_projects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declarations") as batch:
        batch.add_column(sa.Column("instructions_acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("instructions_version", sa.String(length=64), nullable=True))
    op.create_table(
        "work_unit_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("contact_name", sa.LargeBinary(), nullable=False),
        sa.Column("contact_phone", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("work_unit_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_work_unit_requests_client_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["work_unit_id"], ["work_units.id"], name=op.f("fk_work_unit_requests_work_unit_id_work_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_unit_requests")),
    )
    op.create_index(op.f("ix_work_unit_requests_name"), "work_unit_requests", ["name"], unique=False)
    op.create_index(
        "ix_work_unit_requests_status_created", "work_unit_requests", ["status", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_work_unit_requests_status_created", table_name="work_unit_requests")
    op.drop_index(op.f("ix_work_unit_requests_name"), table_name="work_unit_requests")
    op.drop_table("work_unit_requests")
    with op.batch_alter_table("declarations") as batch:
        batch.drop_column("instructions_version")
        batch.drop_column("instructions_acknowledged_at")
