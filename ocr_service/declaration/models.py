"""The declaration module's tables: work units, bindings, declarations, their history and attachments.

Personal data: the applicant's ID number is copied from the verified identity and stored only
encrypted (``number_enc``); the form the applicant fills in (teachers' ID numbers included) is
stored encrypted as one JSON document (``form_enc``). Attachments live encrypted in the blob
store. Applicant names, sexes, ethnicities and attachment file names are encrypted by their
column types (``encrypted_types``). The schema is owned by the migrations; keep the two identical.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ocr_service.db import Base, str_enum, utcnow
from ocr_service.encrypted_types import EncryptedText
from ocr_service.verification.models import DocumentType, UuidPrimaryKey


class DeclarationKind(StrEnum):
    TCM_EXPERTISE = "tcm_expertise"  # 中医医术确有专长人员医师资格考核
    PHYSICIAN_PROBATION = "physician_probation"  # 医师资格考试试用期申报


class DeclarationStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    RETURNED = "returned"
    MODIFICATION_ALLOWED = "modification_allowed"
    WITHDRAWN = "withdrawn"


class ApplicantCategory(StrEnum):
    """Applicants the manual (003, 其他身份人员) lets declare without the platform's real-name check."""

    MILITARY = "military"  # 部队考生
    HK_MACAU_TAIWAN = "hk_macau_taiwan"  # 港澳台考生


class IdentityReview(StrEnum):
    """The unit's (or an admin's) check of an identity the platform did not verify."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


class ExamProject(UuidPrimaryKey, Base):
    """One exam (考核) of one kind and year, and the window in which declarations are submitted.

    Applicants choose a project (000: 选择项目); each subject has at most one declaration per project.
    """

    __tablename__ = "exam_projects"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[DeclarationKind] = mapped_column(str_enum(DeclarationKind))
    year: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))  # printed on the notice
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]  # exclusive
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UnitRequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class WorkUnit(UuidPrimaryKey, Base):
    """A unit (hospital, clinic) that confirms probation declarations. The code is stored hashed."""

    __tablename__ = "work_units"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    # "pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>" (see service.hash_confirmation_code)
    confirmation_code_hash: Mapped[str] = mapped_column(String(200))
    # the API key the unit's administrator reviews with (issued when the unit is registered)
    reviewer_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkUnitRequest(UuidPrimaryKey, Base):
    """A unit not yet registered asking to be; an admin approves (the unit is created) or rejects it.

    The contact's name and phone number are personal data: stored encrypted by their column types.
    """

    __tablename__ = "work_unit_requests"
    __table_args__ = (Index("ix_work_unit_requests_status_created", "status", "created_at"),)

    name: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[UnitRequestStatus] = mapped_column(str_enum(UnitRequestStatus))
    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    subject_id: Mapped[str] = mapped_column(String(128))
    contact_name: Mapped[str] = mapped_column(EncryptedText("work_unit_requests.contact_name"))
    contact_phone: Mapped[str] = mapped_column(EncryptedText("work_unit_requests.contact_phone"))
    note: Mapped[str | None] = mapped_column(EncryptedText("work_unit_requests.note"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_at: Mapped[datetime | None]
    # "admin:<api key id>"
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    review_reason: Mapped[str | None] = mapped_column(Text)
    # the unit the approval created
    work_unit_id: Mapped[str | None] = mapped_column(ForeignKey("work_units.id"))


class UnitBinding(UuidPrimaryKey, Base):
    """The work unit a subject is bound to (at most one; unbinding deletes the row)."""

    __tablename__ = "work_unit_bindings"
    __table_args__ = (UniqueConstraint("client_key_id", "subject_id"),)

    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    subject_id: Mapped[str] = mapped_column(String(128))
    work_unit_id: Mapped[str] = mapped_column(ForeignKey("work_units.id"), index=True)
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)

    work_unit: Mapped[WorkUnit] = relationship()


class UnitCodeCounter(Base):
    """Wrong confirmation codes of one counter (a subject, a work unit or a client key) and its lockout.

    One row per counter, updated under a row lock, so API processes sharing the database share the
    count. ``key`` is the unit's id, the client key's id, or ``<client key id>:<subject id>``.
    """

    __tablename__ = "unit_code_attempts"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "subject" | "unit" | "client"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # within the window that started at:
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # so far; each one doubles the next
    locked_until: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None] = mapped_column(index=True)


class Declaration(UuidPrimaryKey, Base):
    """One application of one subject to one project.

    Applicant fields are copies of the verified identity, or (military and HK/Macau/Taiwan
    applicants only) typed by the applicant and checked by the unit (``identity_review``).
    """

    __tablename__ = "declarations"
    __table_args__ = (
        Index("ix_declarations_client_subject", "client_key_id", "subject_id"),
        Index("ix_declarations_status_updated", "status", "updated_at"),
        # one declaration per subject and project (a unique index: SQLite adds it in place)
        Index("uq_declarations_subject_project", "client_key_id", "subject_id", "project_id", unique=True),
    )

    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[DeclarationKind] = mapped_column(str_enum(DeclarationKind))
    status: Mapped[DeclarationStatus] = mapped_column(str_enum(DeclarationStatus))
    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    subject_id: Mapped[str] = mapped_column(String(128))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("exam_projects.id"), index=True)
    # NULL for military and HK/Macau/Taiwan applicants who declared without a verified identity:
    # their applicant fields were typed, and identity_review is pending until the unit confirms them
    identity_id: Mapped[str | None] = mapped_column(ForeignKey("verified_identities.id"), index=True)
    verification_id: Mapped[str | None] = mapped_column(ForeignKey("verifications.id"))
    applicant_category: Mapped[ApplicantCategory | None] = mapped_column(str_enum(ApplicantCategory))
    identity_review: Mapped[IdentityReview | None] = mapped_column(str_enum(IdentityReview))
    identity_reviewed_by: Mapped[str | None] = mapped_column(String(200))
    identity_reviewed_at: Mapped[datetime | None]
    applicant_name: Mapped[str] = mapped_column(EncryptedText("declarations.applicant_name"))
    applicant_sex: Mapped[str | None] = mapped_column(EncryptedText("declarations.applicant_sex"))
    applicant_ethnicity: Mapped[str | None] = mapped_column(EncryptedText("declarations.applicant_ethnicity"))
    document_type: Mapped[DocumentType] = mapped_column(str_enum(DocumentType))
    number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    form_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # probation: the unit the applicant was bound to when confirming (its name is checked)
    work_unit_id: Mapped[str | None] = mapped_column(ForeignKey("work_units.id"), index=True)
    confirmed_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    # printed on the notice; a clerk checks it at GET /v1/declarations/verify/{code}
    verify_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    # 申报须知: acknowledged (when, which version of the text) before confirm/submit are allowed
    instructions_acknowledged_at: Mapped[datetime | None]
    instructions_version: Mapped[str | None] = mapped_column(String(64))
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    work_unit: Mapped[WorkUnit | None] = relationship()
    project: Mapped[ExamProject | None] = relationship()
    events: Mapped[list[DeclarationEvent]] = relationship(
        back_populates="declaration", order_by="DeclarationEvent.id", passive_deletes=True
    )
    attachments: Mapped[list[DeclarationAttachment]] = relationship(
        back_populates="declaration", order_by="DeclarationAttachment.created_at", passive_deletes=True
    )


class DeclarationEvent(Base):
    """Append-only history of a declaration's transitions (who, when, from, to, why)."""

    __tablename__ = "declaration_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id", ondelete="CASCADE"), index=True)
    # NULL for the event that created the declaration
    from_status: Mapped[DeclarationStatus | None] = mapped_column(str_enum(DeclarationStatus))
    to_status: Mapped[DeclarationStatus] = mapped_column(str_enum(DeclarationStatus))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    # "key:<api key id>", "unit:<work unit id>", "admin:<api key id>"
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    declaration: Mapped[Declaration] = relationship(back_populates="events")


class DeclarationAttachment(UuidPrimaryKey, Base):
    """An uploaded file (PDF, JPEG, PNG); the form refers to it by id."""

    __tablename__ = "declaration_attachments"

    declaration_id: Mapped[str] = mapped_column(ForeignKey("declarations.id", ondelete="CASCADE"), index=True)
    blob_id: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # the applicant's own file name may name them ("张三_证书.pdf")
    filename: Mapped[str] = mapped_column(EncryptedText("declaration_attachments.filename"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    declaration: Mapped[Declaration] = relationship(back_populates="attachments")
