"""The service's tables: API keys, verification cases, their uploads, scans, history and results.

Every table of the service is declared here on the one ``Base``, so importing this module
registers the whole schema (Alembic's ``env.py`` does exactly that). The schema itself is
owned by the migrations in ``ocr_service/migrations``: change a model, then add a migration
(``tests/ocr_service/test_db.py`` fails while the two disagree).

Personal data: document numbers are stored only encrypted (``*_enc``, see ``crypto.Cipher``)
next to a keyed blind index (``*_index``) for equality lookups; names, sexes, ethnicities, birth
dates and scan results are encrypted by their column type (``encrypted_types``); images live
encrypted in the blob store and are referenced by ``StoredImage.blob_id``, which purge sets to NULL.
Enumerations are stored as their string values in VARCHAR columns (``db.str_enum``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ocr_service.db import Base, str_enum, utcnow
from ocr_service.encrypted_types import EncryptedDate, EncryptedJSON, EncryptedText
from pipelines.reasons import Decision


def new_id() -> str:
    """A random UUID as a 36-character string: the primary key of cases, attempts and images."""
    return str(uuid.uuid4())


class UuidPrimaryKey:
    """A string UUID ``id`` assigned when the object is built, not at flush.

    The service can then use the id at once: in the associated data of a ciphertext, in a
    blob's context, in a log line, in another row's foreign key, before anything is written.
    """

    id: Mapped[str] = mapped_column(String(36), primary_key=True, sort_order=-1)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("id", new_id())
        super().__init__(**kwargs)


class VerificationStatus(StrEnum):
    AWAITING_IMAGES = "awaiting_images"
    PROCESSING = "processing"
    VERIFIED = "verified"
    RETAKE = "retake"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Method(StrEnum):
    AUTO = "auto"  # scan the resident ID card, decided by the pipeline
    MANUAL = "manual"  # upload, decided by a reviewer


class DocumentType(StrEnum):
    """The documents of the manual (003, 实名认证). Only the resident ID card is scanned automatically."""

    RESIDENT_ID = "resident_id"  # 居民身份证
    HMT_RESIDENCE_PERMIT = "hmt_residence_permit"  # 港澳台居民居住证 (81/82/83 numbers)
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"  # 外国人永久居留身份证 (9 numbers)
    HK_MACAU_PERMIT = "hk_macau_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    FOREIGN_PASSPORT = "foreign_passport"  # 护照
    MILITARY = "military"  # 军官证 / 士兵证
    OTHER = "other"


class AttemptStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the task gave up (infrastructure); a pipeline "reject" is DONE


class ImageSide(StrEnum):
    """The side of the card the applicant was asked to photograph."""

    FRONT = "front"
    BACK = "back"


# JSON that stores Python None as SQL NULL (not the JSON literal null).
_JSON = JSON(none_as_null=True)


class ApiKey(UuidPrimaryKey, Base):
    """A client credential. Only the SHA-256 of the secret is stored (see ``auth.create_api_key``)."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    # the first characters of the secret, shown in `keys list` so an operator can tell keys apart
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # comma-separated auth.Scope values
    scopes: Mapped[str] = mapped_column(String(200))
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # None: never expires (OCR_API_KEY_DAYS=0 or `keys create --expires-in-days 0`).
    expires_at: Mapped[datetime | None]
    # Rotation issues a new secret on the same row, so the key's id -- named by verifications,
    # declarations, work units and audit entries -- never changes. The secret it replaced keeps
    # working until previous_valid_until (the grace period for clients to switch), then stops.
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    previous_valid_until: Mapped[datetime | None]
    rotated_at: Mapped[datetime | None]

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(scope for scope in self.scopes.split(",") if scope)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scope_set

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Verification(UuidPrimaryKey, Base):
    """One real-name verification case of one subject (an applicant) of one client."""

    __tablename__ = "verifications"
    __table_args__ = (
        Index("ix_verifications_client_subject", "client_key_id", "subject_id"),
        Index("ix_verifications_status_created", "status", "created_at"),
    )

    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    subject_id: Mapped[str] = mapped_column(String(128))
    document_type: Mapped[DocumentType] = mapped_column(str_enum(DocumentType))
    method: Mapped[Method] = mapped_column(str_enum(Method))
    status: Mapped[VerificationStatus] = mapped_column(str_enum(VerificationStatus))
    claim_name: Mapped[str] = mapped_column(EncryptedText("verifications.claim_name"))
    claim_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    claim_number_index: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    decided_at: Mapped[datetime | None]
    # reason codes (pipelines.reasons.Reason values, too_many_attempts, ...) behind the status
    decision_reasons: Mapped[list[str]] = mapped_column(_JSON, default=list)
    review_reason: Mapped[str | None] = mapped_column(String(64))

    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="verification", order_by="Attempt.created_at", passive_deletes=True
    )
    images: Mapped[list[StoredImage]] = relationship(
        back_populates="verification", order_by="StoredImage.created_at", passive_deletes=True
    )
    events: Mapped[list[StatusEvent]] = relationship(
        back_populates="verification", order_by="StatusEvent.id", passive_deletes=True
    )


class StoredImage(UuidPrimaryKey, Base):
    """An uploaded photo. The bytes are in the blob store; after purge only this tombstone remains."""

    __tablename__ = "stored_images"

    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"), index=True)
    # NULL once purged (purged_at says when)
    blob_id: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    purged_at: Mapped[datetime | None]

    verification: Mapped[Verification] = relationship(back_populates="images")


class Attempt(UuidPrimaryKey, Base):
    """One scan of one uploaded image: queued, run by a worker, and its decision."""

    __tablename__ = "attempts"

    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("stored_images.id", ondelete="CASCADE"), index=True)
    side: Mapped[ImageSide] = mapped_column(str_enum(ImageSide, length=16))
    status: Mapped[AttemptStatus] = mapped_column(str_enum(AttemptStatus, length=16), index=True)
    decision: Mapped[Decision | None] = mapped_column(str_enum(Decision, length=16))
    reasons: Mapped[list[str]] = mapped_column(_JSON, default=list)
    # fields (number masked), quality, corners, timings: what report.scan_result_json produces
    result: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("attempts.result"))
    read_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    pipeline_version: Mapped[str | None] = mapped_column(String(32))
    models_digest: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # how many times a worker started this scan (redeliveries and retries included)
    task_attempts: Mapped[int] = mapped_column(Integer, default=0)

    verification: Mapped[Verification] = relationship(back_populates="attempts")
    image: Mapped[StoredImage] = relationship()


class VerifiedIdentity(UuidPrimaryKey, Base):
    """The identity a subject proved: what the declaration module pre-fills (name, sex, ethnicity, number)."""

    __tablename__ = "verified_identities"
    __table_args__ = (UniqueConstraint("client_key_id", "subject_id"),)

    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    subject_id: Mapped[str] = mapped_column(String(128))
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id"), index=True)
    name: Mapped[str] = mapped_column(EncryptedText("verified_identities.name"))
    sex: Mapped[str | None] = mapped_column(EncryptedText("verified_identities.sex"))
    ethnicity: Mapped[str | None] = mapped_column(EncryptedText("verified_identities.ethnicity"))
    birth_date: Mapped[date | None] = mapped_column(EncryptedDate("verified_identities.birth_date"))
    document_type: Mapped[DocumentType] = mapped_column(str_enum(DocumentType))
    number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    number_index: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[Method] = mapped_column(str_enum(Method))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(Text)

    verification: Mapped[Verification] = relationship()


class StatusEvent(Base):
    """Append-only history of a case's status changes (who, when, why)."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"), index=True)
    # NULL for the event that created the case
    from_status: Mapped[VerificationStatus | None] = mapped_column(str_enum(VerificationStatus))
    to_status: Mapped[VerificationStatus] = mapped_column(str_enum(VerificationStatus))
    reason: Mapped[str | None] = mapped_column(String(200))
    # "key:<api key id>", "worker", "reviewer:<name>", "system"
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    verification: Mapped[Verification] = relationship(back_populates="events")


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` a client already used, and what the first request created."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("client_key_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    # sha256 of the request (route, verification, side, image digest): the same key with a
    # different payload is `duplicate_request` (409), the same payload replays the first answer
    request_hash: Mapped[str] = mapped_column(String(64))
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The review tables hang off the same Base; importing them here registers the whole schema
# wherever the service's models are imported (Alembic's env.py, the schema test).
import ocr_service.review.models  # noqa: E402, F401
