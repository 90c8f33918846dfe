"""Capture links: create, open (check and audit every use), revoke. The only writer of the capture tables.

A link is an opaque random token (``secrets.token_urlsafe(32)``, 256 bits) that names one
verification; only its SHA-256 is stored. Opening a link returns the verification and the client
key it belongs to, so the page's quality checks, uploads and status go through the verification
service exactly as the client's own calls would (same ownership check, same limits, same
decisions). A link dies at ``expires_at`` (``OCR_CAPTURE_SESSION_MINUTES``), when the client
revokes it, or when the client key that made it is revoked or expires.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from ocr_service.capture.models import CaptureAction, CaptureEvent, CaptureSession
from ocr_service.config import Settings
from ocr_service.db import utcnow
from ocr_service.errors import ApiError, not_found
from ocr_service.verification import service as verification_service
from ocr_service.verification.models import ApiKey

log = structlog.get_logger(__name__)

# longer than any token_urlsafe(32) (43 characters): anything longer is refused before hashing
_MAX_TOKEN_LENGTH = 64


class LinkProblem:
    INVALID = "capture_link_invalid"
    EXPIRED = "capture_link_expired"
    REVOKED = "capture_link_revoked"


# the applicant reads these (the page and the JSON errors say the same)
LINK_MESSAGES_ZH = {
    LinkProblem.INVALID: "链接无效，请返回应用重新打开拍摄页面",
    LinkProblem.EXPIRED: "链接已过期，请返回应用重新打开拍摄页面",
    LinkProblem.REVOKED: "链接已失效，请返回应用重新打开拍摄页面",
}


def link_error(problem: str) -> ApiError:
    status = 404 if problem == LinkProblem.INVALID else 410
    english = {
        LinkProblem.INVALID: "no such capture link",
        LinkProblem.EXPIRED: "the capture link has expired",
        LinkProblem.REVOKED: "the capture link was revoked",
    }[problem]
    return ApiError(problem, status, english, LINK_MESSAGES_ZH[problem])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class CaptureAccess:
    """What an open link gives: the case and the key it is used on behalf of."""

    capture_session_id: str
    verification_id: str
    client: ApiKey


def _record(session: Session, capture_session_id: str, action: CaptureAction, outcome: str | None = None) -> None:
    session.add(CaptureEvent(capture_session_id=capture_session_id, action=action, outcome=outcome))


def create_capture_session(
    session: Session, client: ApiKey, verification_id: str, settings: Settings
) -> tuple[CaptureSession, str]:
    """A new link for the client's own verification; returns the row and the token (shown once)."""
    verification = verification_service.get_verification(session, client, verification_id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    capture_session = CaptureSession(
        verification_id=verification.id,
        client_key_id=client.id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(minutes=settings.capture_session_minutes),
    )
    session.add(capture_session)
    session.flush()
    _record(session, capture_session.id, CaptureAction.CREATED)
    session.commit()
    log.info("capture_session_created", capture_session_id=capture_session.id, verification_id=verification.id)
    return capture_session, token


def revoke_capture_session(session: Session, client: ApiKey, verification_id: str, capture_session_id: str) -> None:
    """Revoke one link of the client's verification; revoking twice is not an error."""
    verification = verification_service.get_verification(session, client, verification_id)
    capture_session = session.scalar(
        select(CaptureSession).where(
            CaptureSession.id == capture_session_id, CaptureSession.verification_id == verification.id
        )
    )
    if capture_session is None:
        raise not_found("capture session")
    if capture_session.revoked_at is None:
        capture_session.revoked_at = utcnow()
        _record(session, capture_session.id, CaptureAction.REVOKED)
    session.commit()
    log.info("capture_session_revoked", capture_session_id=capture_session.id)


def open_capture_link(session: Session, token: str, action: CaptureAction) -> CaptureAccess:
    """The link's verification and key, the use recorded; ``link_error`` when it does not open.

    A refused use of a known link is recorded too (``refused``, with why); an unknown token has
    no row to attach to and is only logged.
    """
    capture_session = None
    if 0 < len(token) <= _MAX_TOKEN_LENGTH:
        capture_session = session.scalar(select(CaptureSession).where(CaptureSession.token_hash == token_hash(token)))
    if capture_session is None:
        log.info("capture_link_refused", problem=LinkProblem.INVALID, action=action.value)
        raise link_error(LinkProblem.INVALID)
    client = session.get(ApiKey, capture_session.client_key_id)
    now = utcnow()
    problem = None
    if capture_session.revoked_at is not None or client is None or client.revoked_at is not None:
        problem = LinkProblem.REVOKED
    elif capture_session.expires_at <= now or (client.expires_at is not None and client.expires_at <= now):
        problem = LinkProblem.EXPIRED
    if problem is not None:
        _record(session, capture_session.id, CaptureAction.REFUSED, f"{action.value}:{problem}")
        session.commit()
        log.info("capture_link_refused", problem=problem, action=action.value, capture_session_id=capture_session.id)
        raise link_error(problem)
    _record(session, capture_session.id, action)
    session.commit()
    assert client is not None
    return CaptureAccess(capture_session.id, capture_session.verification_id, client)


def capture_events(session: Session, capture_session_id: str) -> list[CaptureEvent]:
    """A link's uses, oldest first (tests and investigations)."""
    return list(
        session.scalars(
            select(CaptureEvent).where(CaptureEvent.capture_session_id == capture_session_id).order_by(CaptureEvent.id)
        )
    )
