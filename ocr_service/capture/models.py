"""Capture links and their audit trail.

A ``CaptureSession`` is one link a client's back end asked for: it names one verification and
stores only the SHA-256 of its token (the token itself is shown once, in the link). Every use of a
link -- the page opened, a frame checked, a photo uploaded, the status read, a refusal because the
link expired or was revoked, the revocation -- appends a ``CaptureEvent``; rows are never updated.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ocr_service.db import Base, str_enum, utcnow
from ocr_service.verification.models import UuidPrimaryKey


class CaptureAction(StrEnum):
    CREATED = "created"
    PAGE = "page"  # the capture page was opened
    QUALITY = "quality"  # one live-check frame
    UPLOAD = "upload"  # a full-resolution photo
    STATUS = "status"  # the verification's status read
    REVOKED = "revoked"
    REFUSED = "refused"  # a use of an expired or revoked link (outcome says which)


class CaptureSession(UuidPrimaryKey, Base):
    __tablename__ = "capture_sessions"

    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"), index=True)
    client_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    # SHA-256 hex of the token: a leaked database gives no working link
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class CaptureEvent(Base):
    """One use of a capture link (append-only)."""

    __tablename__ = "capture_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    capture_session_id: Mapped[str] = mapped_column(ForeignKey("capture_sessions.id", ondelete="CASCADE"), index=True)
    action: Mapped[CaptureAction] = mapped_column(str_enum(CaptureAction))
    # e.g. "ok" / the first reason of a frame, the upload's decision, "expired" / "revoked"
    outcome: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
