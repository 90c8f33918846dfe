"""Initial schema: API keys, verifications, attempts, stored images, identities, history, idempotency.

Enumerations are plain VARCHARs (see ocr_service.db.str_enum); datetimes are timestamptz on
PostgreSQL and UTC text on SQLite.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:59:29.422324
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("callback_url", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("claim_name", sa.String(length=200), nullable=False),
        sa.Column("claim_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("claim_number_index", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reasons", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("review_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_verifications_client_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    op.create_index(op.f("ix_verifications_claim_number_index"), "verifications", ["claim_number_index"], unique=False)
    op.create_index("ix_verifications_client_subject", "verifications", ["client_key_id", "subject_id"], unique=False)
    op.create_index("ix_verifications_status_created", "verifications", ["status", "created_at"], unique=False)

    op.create_table(
        "status_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_status_events_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_events")),
    )
    op.create_index(op.f("ix_status_events_verification_id"), "status_events", ["verification_id"], unique=False)

    op.create_table(
        "stored_images",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("blob_id", sa.String(length=32), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_stored_images_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stored_images")),
    )
    op.create_index(op.f("ix_stored_images_created_at"), "stored_images", ["created_at"], unique=False)
    op.create_index(op.f("ix_stored_images_verification_id"), "stored_images", ["verification_id"], unique=False)

    op.create_table(
        "verified_identities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=True),
        sa.Column("ethnicity", sa.String(length=32), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("number_index", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flag_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_verified_identities_client_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"], ["verifications.id"], name=op.f("fk_verified_identities_verification_id_verifications")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verified_identities")),
        sa.UniqueConstraint(
            "client_key_id", "subject_id", name=op.f("uq_verified_identities_client_key_id_subject_id")
        ),
    )
    op.create_index(op.f("ix_verified_identities_number_index"), "verified_identities", ["number_index"], unique=False)
    op.create_index(
        op.f("ix_verified_identities_verification_id"), "verified_identities", ["verification_id"], unique=False
    )

    op.create_table(
        "attempts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reasons", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("read_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("pipeline_version", sa.String(length=32), nullable=True),
        sa.Column("models_digest", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("task_attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["stored_images.id"], name=op.f("fk_attempts_image_id_stored_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_attempts_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    op.create_index(op.f("ix_attempts_image_id"), "attempts", ["image_id"], unique=False)
    op.create_index(op.f("ix_attempts_status"), "attempts", ["status"], unique=False)
    op.create_index(op.f("ix_attempts_verification_id"), "attempts", ["verification_id"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_key_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("attempt_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_idempotency_records_attempt_id_attempts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["client_key_id"], ["api_keys.id"], name=op.f("fk_idempotency_records_client_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_idempotency_records_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("client_key_id", "key", name=op.f("uq_idempotency_records_client_key_id_key")),
    )
    op.create_index(
        op.f("ix_idempotency_records_verification_id"), "idempotency_records", ["verification_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_records_verification_id"), table_name="idempotency_records")

    op.drop_table("idempotency_records")
    op.drop_index(op.f("ix_attempts_verification_id"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_status"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_image_id"), table_name="attempts")

    op.drop_table("attempts")
    op.drop_index(op.f("ix_verified_identities_verification_id"), table_name="verified_identities")
    op.drop_index(op.f("ix_verified_identities_number_index"), table_name="verified_identities")

    op.drop_table("verified_identities")
    op.drop_index(op.f("ix_stored_images_verification_id"), table_name="stored_images")
    op.drop_index(op.f("ix_stored_images_created_at"), table_name="stored_images")

    op.drop_table("stored_images")
    op.drop_index(op.f("ix_status_events_verification_id"), table_name="status_events")

    op.drop_table("status_events")
    op.drop_index("ix_verifications_status_created", table_name="verifications")
    op.drop_index("ix_verifications_client_subject", table_name="verifications")
    op.drop_index(op.f("ix_verifications_claim_number_index"), table_name="verifications")

    op.drop_table("verifications")
    op.drop_table("api_keys")
