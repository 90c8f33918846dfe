"""The review queue: the only code that writes the review tables.

Owns reviewer accounts (argon2 password hashes), review cases (opened when a verification
enters ``in_review``, claimed with a lease, decided or released), the four-eyes rule, and the
append-only audit log whose entries are chained by SHA-256. Decisions on the verification
itself (status, verified identity, webhook) are made through ``verification.service``, which
stays the only writer of the verification tables.

Claiming is atomic on both backends: PostgreSQL hands out the oldest claimable row with
``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite (no row locks, one writer) claims by a
conditional ``UPDATE ... WHERE id = ? AND <still claimable>`` and moves on when the row
count says another reviewer was faster.

Functions take a session and plain arguments; the ones called from routes commit.
Nothing here logs a name or a document number; the audit log stores numbers masked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from ocr_service.config import Settings, get_settings
from ocr_service.crypto import get_cipher
from ocr_service.db import utcnow
from ocr_service.errors import ApiError, not_found
from ocr_service.masking import mask_document_number
from ocr_service.review.identity import CardRead, Proposal, derived_from_number, propose
from ocr_service.review.models import (
    AuditEntry,
    CaseFlag,
    CaseOrigin,
    CaseStatus,
    ReviewCase,
    Reviewer,
    ReviewerRole,
)
from ocr_service.review.throttle import Lockout
from ocr_service.verification import events
from ocr_service.verification import service as verification_service
from ocr_service.verification.events import StatusChange
from ocr_service.verification.models import (
    ApiKey,
    Attempt,
    AttemptStatus,
    DocumentType,
    StatusEvent,
    StoredImage,
    Verification,
    VerificationStatus,
)
from pipelines.idnumber import validate_id_number
from pipelines.reasons import (
    MESSAGES,
    REVIEW_REJECT_REASONS,
    REVIEW_RETAKE_REASONS,
    CaseReason,
    Reason,
    ReviewReason,
)

log = structlog.get_logger(__name__)

GENESIS_HASH = "0" * 64
# Automatic checks whose failure an approval overrides: the four-eyes rule applies.
OVERRIDDEN_CHECKS = frozenset(
    {Reason.ID_NUMBER_MISMATCH, Reason.NAME_MISMATCH, Reason.INVALID_ID_NUMBER, CaseFlag.MULTIPLE_IDENTITIES}
)
MRZ_DOCUMENTS = verification_service.MRZ_DOCUMENTS
CORRECTABLE_FIELDS = ("name", "document_number", "sex", "ethnicity", "birth_date")
# the PostgreSQL advisory lock serialising appends to the audit chain
_AUDIT_LOCK_ID = 0x4F43525F41554454  # "OCR_AUDT"
_ORIGIN_OF_REVIEW_REASON = {
    CaseReason.TOO_MANY_ATTEMPTS.value: CaseOrigin.TOO_MANY_ATTEMPTS,
    CaseReason.SCAN_NEEDS_REVIEW.value: CaseOrigin.SCAN_REVIEW,
    CaseReason.SCAN_FAILED.value: CaseOrigin.SCAN_REVIEW,
    CaseReason.MANUAL_METHOD.value: CaseOrigin.MANUAL_METHOD,
    CaseReason.DOCUMENT_TYPE_MANUAL.value: CaseOrigin.NON_ID_DOCUMENT,
    CaseReason.DAILY_ATTEMPTS_EXHAUSTED.value: CaseOrigin.TOO_MANY_ATTEMPTS,
    CaseReason.RESIDENCE_PERMIT_NUMBER.value: CaseOrigin.NON_ID_DOCUMENT,
    CaseReason.FOREIGN_PERMANENT_RESIDENCE_NUMBER.value: CaseOrigin.NON_ID_DOCUMENT,
}
_CLAIMABLE = (CaseStatus.OPEN, CaseStatus.RELEASED)
_WAITING = (CaseStatus.OPEN, CaseStatus.RELEASED, CaseStatus.CLAIMED, CaseStatus.AWAITING_CONFIRMATION)

_password_hasher = PasswordHasher()
# verified against when the username is unknown, so both paths cost one argon2 verification
_DUMMY_HASH = _password_hasher.hash("not a password of anyone")


def actor_of(reviewer: Reviewer | str) -> str:
    return reviewer if isinstance(reviewer, str) else reviewer.actor


# --- reviewer accounts -----------------------------------------------------------------------------


def create_reviewer(session: Session, username: str, password: str, role: ReviewerRole | str) -> Reviewer:
    """A new account; the caller commits. Usernames are case-insensitive (stored lower case)."""
    username = username.strip().lower()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-" for c in username):
        raise ValueError("a username is 1-64 letters, digits, '.', '_' or '-'")
    if len(password) < 10:
        raise ValueError("a password has at least 10 characters")
    if session.scalar(select(Reviewer.id).where(Reviewer.username == username)) is not None:
        raise ValueError(f"the username {username!r} is taken")
    reviewer = Reviewer(
        username=username, password_hash=_password_hasher.hash(password), role=ReviewerRole(role), active=True
    )
    session.add(reviewer)
    session.flush()
    return reviewer


def authenticate_reviewer(session: Session, username: str, password: str) -> Reviewer | None:
    """The active reviewer with this username and password, or None."""
    reviewer = session.scalar(select(Reviewer).where(Reviewer.username == username.strip().lower()))
    try:
        _password_hasher.verify(reviewer.password_hash if reviewer else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if reviewer is None or not reviewer.active:
        return None
    reviewer.last_sign_in_at = utcnow()
    if _password_hasher.check_needs_rehash(reviewer.password_hash):
        reviewer.password_hash = _password_hasher.hash(password)
    session.commit()
    return reviewer


def record_signin_failure(session: Session, username: str, address: str, lockouts: Sequence[Lockout] = ()) -> None:
    """Audit one wrong password (never the password) and the lockouts it started, and commit."""
    actor = f"address:{address}"[:200]
    details = {"username": username.strip().lower()[:64]}
    append_audit(session, actor, "signin_failed", details=details)
    for lockout in lockouts:
        append_audit(
            session, actor, "signin_locked", details={**details, "scope": lockout.scope, "seconds": lockout.seconds}
        )
    session.commit()


def sign_out(session: Session, reviewer: Reviewer) -> None:
    """End every console session of this reviewer (their cookies carry an older version)."""
    reviewer.session_version += 1
    session.commit()


def list_reviewers(session: Session) -> list[Reviewer]:
    return list(session.scalars(select(Reviewer).order_by(Reviewer.username)))


def set_reviewer_active(session: Session, reviewer_id: str, active: bool, admin: Reviewer) -> Reviewer:
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None:
        raise not_found("reviewer")
    reviewer.active = active
    reviewer.session_version += 1
    append_audit(
        session,
        admin.actor,
        "activate_reviewer" if active else "deactivate_reviewer",
        details={"reviewer": reviewer.username},
    )
    session.commit()
    return reviewer


# --- opening cases -----------------------------------------------------------------------------------


def open_case(
    session: Session, verification_id: str, origin: CaseOrigin | str, reasons: list[str] | tuple[str, ...] = ()
) -> ReviewCase:
    """Put a verification in the queue (the caller commits).

    A verification has at most one undecided case: opening another merges the reasons into it.
    Batch re-verification calls this with ``origin="reverification_failed"`` for identities it
    flags; the verification may then still be ``verified``.
    """
    existing = session.scalar(
        select(ReviewCase).where(ReviewCase.verification_id == verification_id, ReviewCase.status.in_(_WAITING))
    )
    if existing is not None:
        merged = list(existing.reasons or [])
        merged += [r for r in reasons if r not in merged]
        existing.reasons = merged
        return existing
    case = ReviewCase(
        verification_id=verification_id, origin=CaseOrigin(origin), reasons=list(reasons), status=CaseStatus.OPEN
    )
    session.add(case)
    session.flush()
    log.info("review_case_opened", case_id=case.id, verification_id=verification_id, origin=case.origin.value)
    return case


def on_verification_status_change(change: StatusChange) -> None:
    """Subscribed to ``verification.events``: a case opens on ``in_review``; a withdrawal closes it."""
    session, verification, before, after = change.session, change.verification, change.before, change.after
    if after == VerificationStatus.IN_REVIEW:
        origin = _ORIGIN_OF_REVIEW_REASON.get(verification.review_reason or "", CaseOrigin.SCAN_REVIEW)
        reasons = list(verification.decision_reasons or [])
        if _proposal(session, verification).multiple:
            reasons.append(CaseFlag.MULTIPLE_IDENTITIES.value)
        open_case(session, verification.id, origin, reasons)
    elif before == VerificationStatus.IN_REVIEW and after == VerificationStatus.WITHDRAWN:
        for case in session.scalars(
            select(ReviewCase).where(ReviewCase.verification_id == verification.id, ReviewCase.status.in_(_WAITING))
        ):
            case.status = CaseStatus.DECIDED
            case.decision = "withdrawn"
            case.decided_at = utcnow()
            case.claimed_by = None
            case.lease_expires_at = None


# --- claiming --------------------------------------------------------------------------------------------


def _claimable(now: datetime):
    return or_(
        ReviewCase.status.in_(_CLAIMABLE),
        and_(ReviewCase.status == CaseStatus.CLAIMED, ReviewCase.lease_expires_at < now),
    )


def _open_to(actor: str, now: datetime):
    """Not kept for another reviewer by a live assignment."""
    return or_(ReviewCase.assigned_to.is_(None), ReviewCase.assigned_to == actor, ReviewCase.assigned_until < now)


def _assigned_to(actor: str, now: datetime):
    return and_(ReviewCase.assigned_to == actor, ReviewCase.assigned_until >= now)


def claim_next_case(
    session: Session,
    reviewer: Reviewer | str,
    *,
    settings: Settings | None = None,
    origin: str | None = None,
    document_type: str | None = None,
) -> ReviewCase | None:
    """Claim the oldest claimable case (open, released, or its lease ran out) for ``reviewer``; commits.

    Cases an admin assigned to this reviewer come first; cases assigned to someone else are
    skipped while the assignment holds. None when nothing is claimable. Never hands one case
    to two reviewers (see the module doc).
    """
    settings = settings or get_settings()
    actor = actor_of(reviewer)
    lease = timedelta(minutes=settings.review_lease_minutes)
    now = utcnow()
    # not straight back to the reviewer who just released it
    cooled = now - timedelta(minutes=settings.review_release_cooldown_minutes)
    mine = _assigned_to(actor, now)
    not_just_released = or_(
        ReviewCase.released_by.is_(None), ReviewCase.released_by != actor, ReviewCase.released_at < cooled, mine
    )
    query = (
        select(ReviewCase.id)
        .where(_claimable(now), _open_to(actor, now), not_just_released)
        .order_by(sql_case((mine, 0), else_=1), ReviewCase.created_at, ReviewCase.id)
    )
    if origin or document_type:
        query = query.join(Verification, Verification.id == ReviewCase.verification_id)
        if origin:
            query = query.where(ReviewCase.origin == origin)
        if document_type:
            query = query.where(Verification.document_type == document_type)

    if session.get_bind().dialect.name == "postgresql":
        case_id = session.scalar(query.limit(1).with_for_update(skip_locked=True, of=ReviewCase))
        if case_id is None:
            session.rollback()
            return None
        case = session.get(ReviewCase, case_id)
        assert case is not None
        return _take(session, case, actor, now, lease)

    while True:
        candidates = session.scalars(query.limit(20)).all()
        if not candidates:
            session.rollback()
            return None
        for case_id in candidates:
            taken = session.execute(
                update(ReviewCase)
                .where(ReviewCase.id == case_id, _claimable(now), _open_to(actor, now))
                .values(status=CaseStatus.CLAIMED, claimed_by=actor, lease_expires_at=now + lease)
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken:
                case = session.get(ReviewCase, case_id)
                assert case is not None
                session.refresh(case)
                _end_lapsed_assignment(case, actor)
                append_audit(session, actor, "claim", case)
                session.commit()
                return case
        session.rollback()  # every candidate went to someone else meanwhile: look again


def _take(session: Session, case: ReviewCase, actor: str, now: datetime, lease: timedelta) -> ReviewCase:
    previous = case.claimed_by if case.status == CaseStatus.CLAIMED else None
    case.status = CaseStatus.CLAIMED
    case.claimed_by = actor
    case.lease_expires_at = now + lease
    _end_lapsed_assignment(case, actor)
    append_audit(session, actor, "claim", case, details={"lease_expired_for": previous} if previous else None)
    session.commit()
    return case


def _end_lapsed_assignment(case: ReviewCase, actor: str) -> None:
    """Claimed by someone other than the assignee (the assignment ran out): it is over."""
    if case.assigned_to is not None and case.assigned_to != actor:
        _clear_assignment(case)


def _clear_assignment(case: ReviewCase) -> None:
    case.assigned_to = None
    case.assigned_by = None
    case.assigned_until = None


def assign_case(
    session: Session, case_id: str, username: str | None, admin: Reviewer | str, settings: Settings | None = None
) -> ReviewCase:
    """An admin assigns a waiting case to the reviewer ``username``, or ends its assignment (``None``); commits.

    The assignment is a reservation for ``review_assignment_hours``: only the assignee may claim
    the case meanwhile, and their "take next" gives it before older cases. Once they claim it
    the lease governs as for any case; if their lease runs out it waits for them again. Only a
    waiting case (open, released, or on a lease that ran out) can be assigned: the same
    conditional UPDATE as a claim, so an assignment never lands on a case someone just claimed.
    """
    settings = settings or get_settings()
    actor = actor_of(admin)
    now = utcnow()
    assignee = None
    if username and username.strip():
        assignee = session.scalar(select(Reviewer).where(Reviewer.username == username.strip().lower()))
        if assignee is None or not assignee.active:
            raise ApiError(
                "reviewer_not_found", 404, "no active reviewer with this username", "没有该审核员，或其账号已停用"
            )
    previous = session.scalar(select(ReviewCase.assigned_to).where(ReviewCase.id == case_id))
    until = now + timedelta(hours=settings.review_assignment_hours) if assignee else None
    moved = session.execute(
        update(ReviewCase)
        .where(ReviewCase.id == case_id, _claimable(now))
        .values(
            assigned_to=assignee.actor if assignee else None,
            assigned_by=actor if assignee else None,
            assigned_until=until,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    case = session.get(ReviewCase, case_id)
    if case is None:
        session.rollback()
        raise not_found("review case")
    session.refresh(case)
    if not moved:
        session.rollback()
        raise ApiError(
            "case_not_waiting",
            409,
            "only a waiting case can be assigned (it is held, waiting for confirmation or decided)",
            "只能指派等待领取的案件（该案件正在审核、待复核或已处理）",
            {"status": case.status.value},
        )
    if assignee is not None:
        details = {"reviewer": assignee.username, "until": until.isoformat(), "previous": previous}
        append_audit(session, actor, "assign", case, details=details)
    else:
        append_audit(session, actor, "unassign", case, details={"previous": previous})
    session.commit()
    return case


def get_case(session: Session, case_id: str) -> ReviewCase:
    case = session.get(ReviewCase, case_id)
    if case is None:
        raise not_found("review case")
    return case


def held_case(session: Session, reviewer: Reviewer | str) -> ReviewCase | None:
    """The case this reviewer holds now, if any (the queue page offers to continue it)."""
    return session.scalar(
        select(ReviewCase)
        .where(
            ReviewCase.status == CaseStatus.CLAIMED,
            ReviewCase.claimed_by == actor_of(reviewer),
            ReviewCase.lease_expires_at >= utcnow(),
        )
        .order_by(ReviewCase.created_at)
        .limit(1)
    )


def _held(session: Session, case_id: str, actor: str) -> ReviewCase:
    """The case, locked for this transaction, if ``actor`` holds it on an unexpired lease.

    Every decision starts here, so a holder whose lease ran out decides nothing even while
    another reviewer claims the case: PostgreSQL locks the row (``SELECT ... FOR UPDATE``; a
    claimer's ``SKIP LOCKED`` passes it by until this transaction ends), SQLite checks and takes
    its one write lock in a single conditional UPDATE.
    """
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        case = _row_locked(session, case_id)
        held = case is not None and _holds(case, actor, now)
    else:
        held = bool(
            session.execute(
                update(ReviewCase)
                .where(
                    ReviewCase.id == case_id,
                    ReviewCase.status == CaseStatus.CLAIMED,
                    ReviewCase.claimed_by == actor,
                    ReviewCase.lease_expires_at >= now,
                )
                .values(lease_expires_at=ReviewCase.lease_expires_at)
                .execution_options(synchronize_session=False)
            ).rowcount
        )
        case = session.get(ReviewCase, case_id)
        if case is not None:
            session.refresh(case)
    if case is None:
        session.rollback()
        raise not_found("review case")
    if not held:
        error = _not_held_error(session, case, actor)
        session.rollback()
        raise error
    return case


def _holds(case: ReviewCase, actor: str, now: datetime) -> bool:
    return (
        case.status == CaseStatus.CLAIMED
        and case.claimed_by == actor
        and case.lease_expires_at is not None
        and case.lease_expires_at >= now
    )


def _not_held_error(session: Session, case: ReviewCase, actor: str) -> ApiError:
    claimed_before = case.claimed_by == actor or session.scalar(
        select(AuditEntry.id)
        .where(AuditEntry.case_id == case.id, AuditEntry.action == "claim", AuditEntry.actor == actor)
        .limit(1)
    )
    if claimed_before:
        return ApiError(
            "lease_expired",
            409,
            "your lease on this case ran out; nothing was saved (the case went back to the queue)",
            "您对该案件的领取已超时，本次操作未保存（案件已回到队列）",
            {"status": case.status.value},
        )
    return ApiError(
        "case_not_held",
        409,
        "claim the case first (it is not held by you)",
        "请先领取该案件",
        {"status": case.status.value},
    )


def renew_lease(
    session: Session, case_id: str, reviewer: Reviewer | str, settings: Settings | None = None
) -> ReviewCase:
    """Extend the holder's lease (the open case page pings every minute); commits."""
    settings = settings or get_settings()
    case = _held(session, case_id, actor_of(reviewer))
    case.lease_expires_at = utcnow() + timedelta(minutes=settings.review_lease_minutes)
    session.commit()
    return case


def release_case(session: Session, case_id: str, reviewer: Reviewer | str) -> ReviewCase:
    """Give the case back to the queue without deciding; commits."""
    actor = actor_of(reviewer)
    case = _held(session, case_id, actor)
    case.status = CaseStatus.RELEASED
    case.claimed_by = None
    case.lease_expires_at = None
    case.released_by = actor
    case.released_at = utcnow()
    _clear_assignment(case)  # the assignee gave it back: it is everyone's again
    append_audit(session, actor, "release", case)
    session.commit()
    return case


def can_view(case: ReviewCase, reviewer: Reviewer | str) -> bool:
    """The holder sees a claimed case; a case waiting for confirmation is open to any other reviewer."""
    actor = actor_of(reviewer)
    if case.status == CaseStatus.CLAIMED:
        return case.claimed_by == actor
    if case.status == CaseStatus.AWAITING_CONFIRMATION:
        return case.first_approver != actor
    return False


def _viewable(session: Session, case_id: str, actor: str) -> ReviewCase:
    case = get_case(session, case_id)
    if not can_view(case, actor):
        raise ApiError("case_not_held", 409, "claim the case first (it is not held by you)", "请先领取该案件")
    return case


# --- what the reviewer sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageView:
    id: str
    side: str
    content_type: str
    purged: bool
    has_card: bool = False  # a scan found the card: the straightened card is served (``card_image``)


@dataclass(frozen=True)
class AttemptView:
    created_at: datetime
    side: str
    status: str
    decision: str | None
    reasons: list[tuple[str, str]]  # (code, Chinese message)
    fields: dict[str, str]
    confidence: dict[str, float]
    read_number: str | None
    id_check: dict | None
    match: dict | None


@dataclass(frozen=True)
class CaseView:
    case: ReviewCase
    verification: Verification
    claim_name: str
    claim_number: str  # in full: reviewers compare it with the document
    images: list[ImageView]
    attempts: list[AttemptView]
    events: list[StatusEvent]
    proposed: dict[str, str]  # the identity an approval writes unless the reviewer corrects it
    overridden_checks: list[str]  # failed automatic checks an approval would override (four-eyes)
    claim_checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (check, ok, detail)
    proposal: Proposal | None = None  # review.identity: who the photos show, whether a read confirms the claim
    pending: dict[str, str] | None = None  # awaiting confirmation: exactly what the approval will write
    client_names: dict[str, str] = field(default_factory=dict)  # api key id -> name, for actor labels

    @property
    def identities(self):
        return self.proposal.identities if self.proposal else []

    @property
    def multiple_identities(self) -> bool:
        return bool(self.proposal and self.proposal.multiple)

    @property
    def reasons(self) -> list[str]:
        """The case's reasons, with the identity flag even on a case opened before it existed."""
        reasons = list(self.case.reasons or [])
        if self.multiple_identities and CaseFlag.MULTIPLE_IDENTITIES.value not in reasons:
            reasons.append(CaseFlag.MULTIPLE_IDENTITIES.value)
        return reasons


def case_view(session: Session, case_id: str, reviewer: Reviewer | str) -> CaseView:
    case = _viewable(session, case_id, actor_of(reviewer))
    verification = session.get(Verification, case.verification_id)
    if verification is None:
        raise not_found("verification")
    attempts = session.scalars(
        select(Attempt).where(Attempt.verification_id == verification.id).order_by(Attempt.created_at, Attempt.id)
    ).all()
    images_by_id = {
        image.id: image
        for image in session.scalars(select(StoredImage).where(StoredImage.verification_id == verification.id))
    }
    sides = {attempt.image_id: attempt.side.value for attempt in attempts}
    with_card = {attempt.image_id for attempt in attempts if _stored_corners(attempt)}
    images = [
        ImageView(
            image.id, sides.get(image.id, "front"), image.content_type, image.blob_id is None, image.id in with_card
        )
        for image in sorted(images_by_id.values(), key=lambda i: i.created_at)
    ]
    attempt_views = []
    for attempt in attempts:
        result = attempt.result or {}
        attempt_views.append(
            AttemptView(
                created_at=attempt.created_at,
                side=attempt.side.value,
                status=attempt.status.value,
                # a scan for the reviewer (the photo went to review on upload) decided nothing: what it said
                decision=attempt.decision.value if attempt.decision else result.get("decision"),
                reasons=[(code, MESSAGES.get(code, (code, code))[0]) for code in attempt.reasons or []],
                fields=dict(result.get("fields") or {}),
                confidence=dict(result.get("confidence") or {}),
                read_number=verification_service.read_number(attempt),
                id_check=result.get("id_check"),
                match=result.get("match"),
            )
        )
    number = verification_service.claim_number(verification)
    events = session.scalars(
        select(StatusEvent).where(StatusEvent.verification_id == verification.id).order_by(StatusEvent.id)
    ).all()
    proposal = _proposal(session, verification, attempts, number)
    pending = None
    if case.status == CaseStatus.AWAITING_CONFIRMATION and case.pending_approval:
        pending = _unsealed_identity(case.id, case.pending_approval)
    return CaseView(
        case=case,
        verification=verification,
        claim_name=verification.claim_name,
        claim_number=number,
        images=images,
        attempts=attempt_views,
        events=list(events),
        proposed=proposal.fields,
        overridden_checks=_overridden_checks(case, verification, attempts, proposal),
        claim_checks=_claim_checks(verification, number),
        proposal=proposal,
        pending=pending,
        client_names=client_names(
            session, [e.actor for e in events] + [case.claimed_by, case.first_approver, case.decided_by]
        ),
    )


def _proposal(session: Session, verification: Verification, attempts=None, number: str | None = None) -> Proposal:
    """``review.identity.propose`` over the verification's scans (decrypted here)."""
    if attempts is None:
        attempts = session.scalars(
            select(Attempt).where(Attempt.verification_id == verification.id).order_by(Attempt.created_at, Attempt.id)
        ).all()
    if number is None:
        number = verification_service.claim_number(verification)
    reads = []
    for attempt in attempts:
        fields = (attempt.result or {}).get("fields") or {}
        read = verification_service.read_number(attempt) or ""
        if not read and not fields.get("name"):
            continue
        reads.append(
            CardRead(
                name=fields.get("name", ""),
                number=verification_service.normalize_document_number(verification.document_type, read) if read else "",
                sex=fields.get("sex", ""),
                ethnicity=fields.get("ethnicity", ""),
                birth_date=fields.get("birth_date", ""),
            )
        )
    return propose(verification.document_type, verification.claim_name, number, reads)


def _claim_checks(verification: Verification, number: str) -> list[tuple[str, bool, str]]:
    if verification.document_type != DocumentType.RESIDENT_ID:
        return []
    check = validate_id_number(number)
    detail = ", ".join(str(p) for p in check.problems) or (check.place or "")
    return [("填写的号码符合 GB 11643（校验码、地区码、出生日期）", check.valid, detail)]


def _overridden_checks(case: ReviewCase, verification: Verification, attempts, proposal: Proposal) -> list[str]:
    seen = set(case.reasons or []) | set(verification.decision_reasons or [])
    if proposal.multiple:
        seen.add(CaseFlag.MULTIPLE_IDENTITIES.value)
    for attempt in attempts:
        seen |= set(attempt.reasons or [])
    return sorted(code for code in seen if code in OVERRIDDEN_CHECKS)


def _stored_corners(attempt: Attempt) -> list[list[float]] | None:
    """The card's corners the scan stored (frame pixels, clockwise from the card's own top-left)."""
    corners = ((attempt.result or {}).get("card") or {}).get("corners")
    return corners if corners and len(corners) == 4 else None


def _viewable_image(session: Session, case: ReviewCase, image_id: str) -> StoredImage:
    image = session.get(StoredImage, image_id)
    if image is None or image.verification_id != case.verification_id:
        raise not_found("image")
    if image.blob_id is None:
        raise ApiError("image_purged", 410, "the image was purged", "图片已按保存期限删除")
    return image


def view_image(session: Session, case_id: str, image_id: str, reviewer: Reviewer | str) -> tuple[bytes, str]:
    """The decrypted photo for the reviewer who may see the case; every view is audited (and committed)."""
    actor = actor_of(reviewer)
    case = _viewable(session, case_id, actor)
    image = _viewable_image(session, case, image_id)
    data = verification_service.image_bytes(image)
    append_audit(session, actor, "view_image", case, details={"image_id": image.id})
    session.commit()
    return data, image.content_type


def view_card_image(
    session: Session, case_id: str, image_id: str, reviewer: Reviewer | str, settings: Settings | None = None
) -> tuple[bytes, str]:
    """The straightened card (856x540 JPEG) the scan of this photo found; audited like the photo.

    The photo is decoded as the scan decoded it (same limits, EXIF orientation applied), so the
    stored corners land on the same pixels; 404 ``card_not_found`` when no scan found a card.
    """
    import cv2

    from pipelines.card import CardQuad, rectify
    from pipelines.decode import decode_image

    settings = settings or get_settings()
    actor = actor_of(reviewer)
    case = _viewable(session, case_id, actor)
    image = _viewable_image(session, case, image_id)
    corners = next(
        (
            c
            for c in map(
                _stored_corners,
                session.scalars(
                    select(Attempt).where(Attempt.image_id == image.id).order_by(Attempt.created_at.desc())
                ),
            )
            if c
        ),
        None,
    )
    if corners is None:
        raise ApiError("card_not_found", 404, "no scan found the card on this photo", "未识别到证件位置，请查看原图")
    frame = decode_image(verification_service.image_bytes(image), settings.decode_limits()).image
    card = rectify(frame, CardQuad(tuple((float(x), float(y)) for x, y in corners)))
    ok, encoded = cv2.imencode(".jpg", card, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise ApiError("image_encode_failed", 500, "the card image could not be encoded", "证件图片生成失败")
    append_audit(session, actor, "view_image", case, details={"image_id": image.id, "view": "card"})
    session.commit()
    return encoded.tobytes(), "image/jpeg"


def read_case_mrz(session: Session, case_id: str, reviewer: Reviewer | str) -> list[dict[str, Any]]:
    """For passports and travel permits: the zones read from each photo at upload (nothing is read here).

    A photo whose zone is still being read shows as ``{"pending": True}``.
    """
    case = _viewable(session, case_id, actor_of(reviewer))
    verification = session.get(Verification, case.verification_id)
    if verification is None or verification.document_type not in MRZ_DOCUMENTS:
        return []
    zones = []
    for attempt in session.scalars(
        select(Attempt).where(Attempt.verification_id == verification.id).order_by(Attempt.created_at, Attempt.id)
    ):
        if attempt.status in (AttemptStatus.QUEUED, AttemptStatus.RUNNING):
            zones.append({"image_id": attempt.image_id, "pending": True})
        elif (attempt.result or {}).get("mrz"):
            zones.append({"image_id": attempt.image_id, "pending": False, **attempt.result["mrz"]})
    return zones


# --- decisions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionOutcome:
    case: ReviewCase
    status: str  # decided | awaiting_confirmation
    verification_status: str


def approve_case(
    session: Session,
    case_id: str,
    reviewer: Reviewer | str,
    fields: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> DecisionOutcome:
    """Approve: the identity is the proposed one with the reviewer's corrections; commits.

    When the approval overrides a failed automatic check and four-eyes is on, the case waits
    for a second reviewer (``confirm_approval``) instead of verifying the subject now.
    """
    settings = settings or get_settings()
    actor = actor_of(reviewer)
    case = _held(session, case_id, actor)
    view = case_view(session, case_id, actor)
    identity = dict(view.proposed)
    # corrections are recorded against what the applicant typed when no read confirmed it
    baseline = dict(view.proposed)
    if not any(baseline.values()):
        baseline.update(name=view.claim_name, document_number=view.claim_number)
    corrections = {}
    for name, value in (fields or {}).items():
        if name not in CORRECTABLE_FIELDS:
            raise ApiError("validation_error", 422, f"unknown field {name!r}", "请求参数有误")
        value = (value or "").strip()
        identity[name] = value
        if value != baseline.get(name, ""):
            corrections[name] = {"from": baseline.get(name, ""), "to": value}
    # what a resident ID number itself encodes completes a typed identity (never another read)
    number = verification_service.normalize_document_number(
        view.verification.document_type, identity["document_number"]
    )
    for name, value in derived_from_number(view.verification.document_type, number).items():
        identity[name] = identity.get(name) or value
    reviewed = _reviewed_identity(identity)
    for name, change in corrections.items():
        append_audit(session, actor, "correction", case, details={"field": name, **_masked(name, change)})
    if settings.review_four_eyes and view.overridden_checks and case.confirmed_by is None:
        case.status = CaseStatus.AWAITING_CONFIRMATION
        case.first_approver = actor
        case.claimed_by = None
        case.lease_expires_at = None
        case.pending_approval = _sealed_identity(case.id, identity)
        append_audit(session, actor, "approve", case, details={"four_eyes": True, "overrides": view.overridden_checks})
        session.commit()
        return DecisionOutcome(case, case.status.value, view.verification.status.value)
    verification_service.approve_by_reviewer(session, view.verification, reviewed, actor)
    _decide(case, actor, "approve")
    append_audit(session, actor, "approve", case, details={"corrected": sorted(corrections)})
    session.commit()
    return DecisionOutcome(case, case.status.value, view.verification.status.value)


def confirm_approval(session: Session, case_id: str, reviewer: Reviewer | str) -> DecisionOutcome:
    """The second reviewer confirms a four-eyes approval (never the one who approved); commits."""
    actor = actor_of(reviewer)
    case = _locked_awaiting(session, case_id)
    if case.status != CaseStatus.AWAITING_CONFIRMATION:
        session.rollback()
        raise ApiError("not_awaiting_confirmation", 409, "the case is not waiting for a confirmation", "该案件无需复核")
    if case.first_approver == actor:
        session.rollback()
        raise ApiError(
            "second_reviewer_required", 403, "a second reviewer must confirm this approval", "需由另一名审核员复核"
        )
    verification = session.get(Verification, case.verification_id)
    assert verification is not None
    identity = _unsealed_identity(case.id, case.pending_approval or {})
    verification_service.approve_by_reviewer(session, verification, _reviewed_identity(identity), actor)
    case.confirmed_by = actor
    case.pending_approval = None
    _decide(case, case.first_approver or actor, "approve")
    append_audit(session, actor, "confirm", case, details={"first_approver": case.first_approver})
    session.commit()
    return DecisionOutcome(case, case.status.value, verification.status.value)


def _row_locked(session: Session, case_id: str) -> ReviewCase | None:
    """PostgreSQL: the case row locked for this transaction, read fresh (not from the identity map)."""
    return session.scalar(
        select(ReviewCase)
        .where(ReviewCase.id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _locked_awaiting(session: Session, case_id: str) -> ReviewCase:
    """The case, locked so two second reviewers cannot both confirm (or refuse) one approval."""
    if session.get_bind().dialect.name == "postgresql":
        case = _row_locked(session, case_id)
    else:
        # a write that changes nothing makes this transaction SQLite's one writer before the read
        session.execute(
            update(ReviewCase)
            .where(ReviewCase.id == case_id)
            .values(status=ReviewCase.status)
            .execution_options(synchronize_session=False)
        )
        case = session.get(ReviewCase, case_id)
        if case is not None:
            session.refresh(case)
    if case is None:
        session.rollback()
        raise not_found("review case")
    return case


def reject_confirmation(session: Session, case_id: str, reviewer: Reviewer | str) -> ReviewCase:
    """The second reviewer disagrees: the case goes back to the queue undecided; commits."""
    actor = actor_of(reviewer)
    case = _locked_awaiting(session, case_id)
    if case.status != CaseStatus.AWAITING_CONFIRMATION or case.first_approver == actor:
        session.rollback()
        raise ApiError(
            "not_awaiting_confirmation", 409, "the case is not waiting for your confirmation", "该案件无需复核"
        )
    case.status = CaseStatus.OPEN
    case.pending_approval = None
    append_audit(session, actor, "refuse_confirmation", case, details={"first_approver": case.first_approver})
    session.commit()
    return case


def reject_case(
    session: Session, case_id: str, reviewer: Reviewer | str, reason: str, comment: str | None = None
) -> DecisionOutcome:
    """Reject with a reason from the fixed list (``other`` needs a comment); commits."""
    actor = actor_of(reviewer)
    try:
        code = ReviewReason(reason)
    except ValueError:
        code = None
    if code not in REVIEW_REJECT_REASONS:
        raise ApiError(
            "validation_error",
            422,
            "unknown rejection reason",
            "请选择驳回原因",
            {"allowed": list(REVIEW_REJECT_REASONS)},
        )
    if code == ReviewReason.OTHER and not (comment or "").strip():
        raise ApiError("validation_error", 422, "a comment is required with the reason 'other'", "请填写驳回说明")
    case = _held(session, case_id, actor)
    verification = session.get(Verification, case.verification_id)
    assert verification is not None
    verification_service.reject_by_reviewer(session, verification, code.value, actor)
    _decide(case, actor, "reject", code.value, (comment or "").strip() or None)
    append_audit(session, actor, "reject", case, details={"reason": code.value, "comment": case.decision_comment})
    session.commit()
    return DecisionOutcome(case, case.status.value, verification.status.value)


def retake_case(session: Session, case_id: str, reviewer: Reviewer | str, reason: str) -> DecisionOutcome:
    """Ask the applicant for new photos (the verification goes back to ``retake``); commits."""
    actor = actor_of(reviewer)
    try:
        code = ReviewReason(reason)
    except ValueError:
        code = None
    if code not in REVIEW_RETAKE_REASONS:
        raise ApiError(
            "validation_error", 422, "unknown reason", "请选择原因", {"allowed": list(REVIEW_RETAKE_REASONS)}
        )
    case = _held(session, case_id, actor)
    verification = session.get(Verification, case.verification_id)
    assert verification is not None
    verification_service.request_new_images(session, verification, code.value, actor)
    _decide(case, actor, "retake", code.value)
    append_audit(session, actor, "retake", case, details={"reason": code.value})
    session.commit()
    return DecisionOutcome(case, case.status.value, verification.status.value)


def _decide(case: ReviewCase, actor: str, decision: str, reason: str | None = None, comment: str | None = None) -> None:
    case.status = CaseStatus.DECIDED
    case.decision = decision
    case.decision_reason = reason
    case.decision_comment = comment
    case.decided_by = actor
    case.decided_at = utcnow()
    case.claimed_by = None
    case.lease_expires_at = None
    _clear_assignment(case)


def _reviewed_identity(identity: dict[str, str]) -> verification_service.ReviewedIdentity:
    if not identity.get("name") or not identity.get("document_number"):
        raise ApiError("validation_error", 422, "name and document number are required", "姓名和证件号码不能为空")
    birth = None
    if identity.get("birth_date"):
        try:
            birth = date.fromisoformat(identity["birth_date"])
        except ValueError:
            raise ApiError(
                "validation_error", 422, "birth_date must be YYYY-MM-DD", "出生日期格式应为YYYY-MM-DD"
            ) from None
    return verification_service.ReviewedIdentity(
        name=identity["name"],
        document_number=identity["document_number"],
        sex=identity.get("sex") or None,
        ethnicity=identity.get("ethnicity") or None,
        birth_date=birth,
    )


def _masked(name: str, change: dict[str, str]) -> dict[str, str]:
    if name != "document_number":
        return change
    return {"from": mask_document_number(change["from"]), "to": mask_document_number(change["to"])}


def _pending_aad(case_id: str) -> bytes:
    return b"review_cases.pending_approval:" + case_id.encode()


def _sealed_identity(case_id: str, identity: dict[str, str]) -> dict[str, str]:
    # the pending approval holds a full document number: encrypted like every other stored number
    token = get_cipher().encrypt(json.dumps(identity, ensure_ascii=False).encode(), _pending_aad(case_id))
    return {"sealed": base64.b64encode(token).decode("ascii")}


def _unsealed_identity(case_id: str, sealed: dict[str, str]) -> dict[str, str]:
    token = base64.b64decode(sealed["sealed"])
    return json.loads(get_cipher().decrypt(token, _pending_aad(case_id)))


# --- the audit log ------------------------------------------------------------------------------------------


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _entry_payload(at: datetime, actor: str, action: str, case_id, verification_id, details) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "case_id": case_id,
        "verification_id": verification_id,
        "details": details,
    }


def entry_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + _canonical(payload)).hexdigest()


def append_audit(
    session: Session, actor: str, action: str, case: ReviewCase | None = None, *, details: dict | None = None
) -> AuditEntry:
    """Append one entry to the chain (the caller commits, together with what it records).

    Appends are serialised so the chain never forks: PostgreSQL by a transaction-scoped
    advisory lock, SQLite by taking the database's write lock before reading the head.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _AUDIT_LOCK_ID})
    else:
        # a write statement (matching nothing) makes this transaction SQLite's one writer
        session.execute(text("UPDATE reviewers SET id = id WHERE 1 = 0"))
    head = session.scalar(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS_HASH
    # microsecond precision survives both backends, so the hash recomputes from the stored row
    at = utcnow()
    payload = _entry_payload(
        at, actor, action, case.id if case else None, case.verification_id if case else None, details or {}
    )
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        case_id=payload["case_id"],
        verification_id=payload["verification_id"],
        details=payload["details"],
        prev_hash=head,
        entry_hash=entry_hash(head, payload),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditChainReport:
    ok: bool
    entries: int
    first_bad_id: int | None = None
    problem: str | None = None


def verify_audit_chain(session: Session) -> AuditChainReport:
    """Recompute every entry's hash from its content and its predecessor's hash."""
    previous = GENESIS_HASH
    count = 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        count += 1
        if entry.prev_hash != previous:
            return AuditChainReport(False, count, entry.id, "the entry does not link to the one before it")
        payload = _entry_payload(
            entry.at, entry.actor, entry.action, entry.case_id, entry.verification_id, entry.details or {}
        )
        if entry_hash(previous, payload) != entry.entry_hash:
            return AuditChainReport(False, count, entry.id, "the entry's content does not match its hash")
        previous = entry.entry_hash
    return AuditChainReport(True, count)


def audit_entries(session: Session, limit: int = 200, case_id: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if case_id:
        query = query.where(AuditEntry.case_id == case_id)
    return list(session.scalars(query))


# --- the queue and its statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    case: ReviewCase
    document_type: str
    age: timedelta


@dataclass(frozen=True)
class QueueView:
    rows: list[QueueRow]
    counts: dict[str, int]  # by case status, as stored
    oldest_age: timedelta | None  # of the oldest claimable case
    claimable: int = 0  # open + released + claimed on a lease that ran out: what "Take next" can hand out
    claimed: int = 0  # held on a live lease
    awaiting_confirmation: int = 0
    client_names: dict[str, str] = field(default_factory=dict)  # api key id -> name, for actor labels


SORTS = ("oldest", "newest", "origin", "document_type")


def queue_view(
    session: Session,
    origin: str | None = None,
    document_type: str | None = None,
    sort: str = "oldest",
    verification_id: str | None = None,
) -> QueueView:
    now = utcnow()
    query = (
        select(ReviewCase, Verification.document_type)
        .join(Verification, Verification.id == ReviewCase.verification_id)
        .where(ReviewCase.status.in_(_WAITING))
    )
    if origin:
        query = query.where(ReviewCase.origin == origin)
    if document_type:
        query = query.where(Verification.document_type == document_type)
    if verification_id:  # search by (the start of) a verification id
        query = query.where(ReviewCase.verification_id.startswith(verification_id.lower(), autoescape=True))
    order = {
        "newest": (ReviewCase.created_at.desc(),),
        "origin": (ReviewCase.origin, ReviewCase.created_at),
        "document_type": (Verification.document_type, ReviewCase.created_at),
    }.get(sort, (ReviewCase.created_at,))
    rows = [
        QueueRow(case, str(doc.value if hasattr(doc, "value") else doc), now - case.created_at)
        for case, doc in session.execute(query.order_by(*order, ReviewCase.id)).all()
    ]
    counts = Counter(dict(session.execute(select(ReviewCase.status, func.count()).group_by(ReviewCase.status)).all()))
    claimable = session.scalar(select(func.count()).select_from(ReviewCase).where(_claimable(now))) or 0
    oldest = session.scalar(select(func.min(ReviewCase.created_at)).where(_claimable(now)))
    by_status = {str(k.value if hasattr(k, "value") else k): v for k, v in counts.items()}
    actors = {row.case.claimed_by for row in rows} | {row.case.first_approver for row in rows}
    return QueueView(
        rows,
        by_status,
        (now - oldest) if oldest else None,
        claimable=claimable,
        claimed=by_status.get("claimed", 0) - (claimable - by_status.get("open", 0) - by_status.get("released", 0)),
        awaiting_confirmation=by_status.get("awaiting_confirmation", 0),
        client_names=client_names(session, actors),
    )


def client_names(session: Session, actors) -> dict[str, str]:
    """The names of the API keys among ``actors`` (``key:<id>``): the console shows names, not ids."""
    ids = {actor.partition(":")[2] for actor in actors if actor and actor.startswith("key:")}
    if not ids:
        return {}
    return dict(session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(ids))).all())


@dataclass(frozen=True)
class QueueStatistics:
    size: int
    age_p50_seconds: float | None
    age_p95_seconds: float | None
    decisions_per_reviewer_per_day: list[tuple[str, str, int]]  # (day, actor, decisions)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    rank = max(0, math.ceil(q * len(values)) - 1)  # nearest rank
    return values[rank]


def queue_statistics(session: Session, days: int = 30) -> QueueStatistics:
    now = utcnow()
    created = session.scalars(select(ReviewCase.created_at).where(ReviewCase.status.in_(_WAITING))).all()
    ages = [(now - at).total_seconds() for at in created]
    since = now - timedelta(days=days)
    decisions = session.execute(
        select(AuditEntry.at, AuditEntry.actor).where(
            AuditEntry.action.in_(("approve", "confirm", "reject", "retake")), AuditEntry.at >= since
        )
    ).all()
    per_day = Counter((at.date().isoformat(), actor) for at, actor in decisions)
    rows = sorted(((day, actor, n) for (day, actor), n in per_day.items()), reverse=True)
    return QueueStatistics(len(ages), _percentile(ages, 0.5), _percentile(ages, 0.95), rows)


events.subscribe(on_verification_status_change)
