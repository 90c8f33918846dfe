"""The declaration module: work units, bindings, declarations, their history and attachments.

Revision ID: 0003_declaration
Revises: 0001
Create Date: 2026-11-23 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_declaration"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
    op.create_table(
        "work_units",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("confirmation_code_hash", sa.String(length=200), nullable=False),
        sa.Column("reviewer_key_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reviewer_key_id"], ["api_keys.id"], name=op.f("fk_work_units_reviewer_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_units")),
        sa.UniqueConstraint("name", name=op.f("uq_work_units_name")),
    )
    op.create_index(op.f("ix_work_units_reviewer_key_id"), "work_units", ["reviewer_key_id"], unique=False)
    op.create_table(
        "work_unit_bindings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("work_unit_id", sa.String(length=36), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_work_unit_bindings_client_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["work_unit_id"], ["work_units.id"], name=op.f("fk_work_unit_bindings_work_unit_id_work_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_unit_bindings")),
        sa.UniqueConstraint("client_key_id", "subject_id", name=op.f("uq_work_unit_bindings_client_key_id_subject_id")),
    )
    op.create_index(op.f("ix_work_unit_bindings_work_unit_id"), "work_unit_bindings", ["work_unit_id"], unique=False)
    op.create_table(
        "declarations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("identity_id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("applicant_name", sa.String(length=200), nullable=False),
        sa.Column("applicant_sex", sa.String(length=8), nullable=True),
        sa.Column("applicant_ethnicity", sa.String(length=32), nullable=True),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("form_enc", sa.LargeBinary(), nullable=True),
        sa.Column("work_unit_id", sa.String(length=36), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verify_code", sa.String(length=32), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flag_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_declarations_client_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["verified_identities.id"], name=op.f("fk_declarations_identity_id_verified_identities")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"], ["verifications.id"], name=op.f("fk_declarations_verification_id_verifications")
        ),
        sa.ForeignKeyConstraint(
            ["work_unit_id"], ["work_units.id"], name=op.f("fk_declarations_work_unit_id_work_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declarations")),
        sa.UniqueConstraint("number", name=op.f("uq_declarations_number")),
        sa.UniqueConstraint("verify_code", name=op.f("uq_declarations_verify_code")),
    )
    op.create_index("ix_declarations_client_subject", "declarations", ["client_key_id", "subject_id"], unique=False)
    op.create_index(op.f("ix_declarations_identity_id"), "declarations", ["identity_id"], unique=False)
    op.create_index("ix_declarations_status_updated", "declarations", ["status", "updated_at"], unique=False)
    op.create_index(op.f("ix_declarations_work_unit_id"), "declarations", ["work_unit_id"], unique=False)
    op.create_table(
        "declaration_attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("declaration_id", sa.String(length=36), nullable=False),
        sa.Column("blob_id", sa.String(length=32), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name=op.f("fk_declaration_attachments_declaration_id_declarations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declaration_attachments")),
    )
    op.create_index(
        op.f("ix_declaration_attachments_declaration_id"), "declaration_attachments", ["declaration_id"], unique=False
    )
    op.create_table(
        "declaration_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("declaration_id", sa.String(length=36), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name=op.f("fk_declaration_events_declaration_id_declarations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declaration_events")),
    )
    op.create_index(
        op.f("ix_declaration_events_declaration_id"), "declaration_events", ["declaration_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_declaration_events_declaration_id"), table_name="declaration_events")
    op.drop_table("declaration_events")
    op.drop_index(op.f("ix_declaration_attachments_declaration_id"), table_name="declaration_attachments")
    op.drop_table("declaration_attachments")
    op.drop_index(op.f("ix_declarations_work_unit_id"), table_name="declarations")
    op.drop_index("ix_declarations_status_updated", table_name="declarations")
    op.drop_index(op.f("ix_declarations_identity_id"), table_name="declarations")
    op.drop_index("ix_declarations_client_subject", table_name="declarations")
    op.drop_table("declarations")
    op.drop_index(op.f("ix_work_unit_bindings_work_unit_id"), table_name="work_unit_bindings")
    op.drop_table("work_unit_bindings")
    op.drop_index(op.f("ix_work_units_reviewer_key_id"), table_name="work_units")
    op.drop_table("work_units")
    op.drop_index("ix_work_unit_bind_attempts_subject_at", table_name="work_unit_bind_attempts")
    op.drop_table("work_unit_bind_attempts")
