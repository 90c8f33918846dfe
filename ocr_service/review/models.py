"""The review tables: reviewer accounts, review cases (the queue) and the hash-chained audit log.

A ``ReviewCase`` is opened for every verification that enters ``in_review`` (and for identities
flagged by batch re-verification); it carries its origin and reasons, who holds it and until
when (the lease). ``AuditEntry`` rows are only ever inserted: each stores
``sha256(prev_hash + canonical JSON of the entry)``, so an edited or removed row breaks the chain
(``service.verify_audit_chain``).

Imported at the end of ``verification/models.py`` so that importing the service's models
registers these tables too (the schema test compares all of ``Base.metadata`` to the migrations).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ocr_service.db import Base, str_enum, utcnow
from ocr_service.encrypted_types import EncryptedJSON, EncryptedText

_JSON = JSON(none_as_null=True)


def _new_id() -> str:
    return str(uuid.uuid4())


class ReviewerRole(StrEnum):
    REVIEWER = "reviewer"
    ADMIN = "admin"  # a reviewer who also manages accounts and reads the audit log


class CaseOrigin(StrEnum):
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    SCAN_REVIEW = "scan_review"
    MANUAL_METHOD = "manual_method"
    NON_ID_DOCUMENT = "non_id_document"
    REVERIFICATION_FAILED = "reverification_failed"


class CaseFlag(StrEnum):
    """What the review queue itself finds in a case (the scan's reasons are ``pipelines.reasons``)."""

    # the photos show a card of a person other than the claimed one (review.identity)
    MULTIPLE_IDENTITIES = "multiple_identities"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    # approved by one reviewer, waiting for a second one (four-eyes); not handed out by claim_next_case
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    DECIDED = "decided"
    RELEASED = "released"  # given back without a decision: claimable again, like open


class Reviewer(Base):
    __tablename__ = "reviewers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[ReviewerRole] = mapped_column(str_enum(ReviewerRole, length=16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # bumped by sign-out and deactivation: every session cookie carrying an older value is dead
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    @property
    def actor(self) -> str:
        return f"reviewer:{self.username}"


class ReviewCase(Base):
    __tablename__ = "review_cases"
    __table_args__ = (Index("ix_review_cases_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    # no foreign key to verifications: the audit trail of a case outlives a purged verification
    verification_id: Mapped[str] = mapped_column(String(36), index=True)
    origin: Mapped[CaseOrigin] = mapped_column(str_enum(CaseOrigin))
    reasons: Mapped[list[str]] = mapped_column(_JSON, default=list)
    status: Mapped[CaseStatus] = mapped_column(str_enum(CaseStatus))
    # the actor holding the case: "reviewer:<username>" or "key:<api key id>"
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    # who gave the case back last and when: claim_next_case does not hand it straight back to them
    released_by: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None]
    # an admin's assignment to a named reviewer ("reviewer:<username>"): until assigned_until only
    # that reviewer may claim the case, and their "take next" hands it out before older cases
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    assigned_by: Mapped[str | None] = mapped_column(String(200))
    assigned_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # approve | reject | retake | withdrawn (the applicant withdrew while it waited)
    decision: Mapped[str | None] = mapped_column(String(32))
    decision_reason: Mapped[str | None] = mapped_column(String(64))
    decision_comment: Mapped[str | None] = mapped_column(EncryptedText("review_cases.decision_comment"))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    # four-eyes: the first approval (fields and corrections) waiting for a second reviewer
    pending_approval: Mapped[dict[str, Any] | None] = mapped_column(_JSON)
    first_approver: Mapped[str | None] = mapped_column(String(200))
    confirmed_by: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    """One reviewer action. Insert-only: nothing in the code updates or deletes these rows."""

    __tablename__ = "review_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    # view_images | claim | release | lease_expired_reclaim | approve | confirm | reject | retake | correction | ...
    action: Mapped[str] = mapped_column(String(32), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36), index=True)
    verification_id: Mapped[str | None] = mapped_column(String(36))
    # encrypted: a correction names the old and new value (the hash chain covers the plaintext)
    details: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("review_audit_log.details"), default=dict)
    # unique: two appenders that read the same head cannot both link to it (no forked chain)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64))
