"""Verification cases: the only code that writes the verification tables.

Owns the state machine (``ALLOWED_TRANSITIONS``), the per-subject limits on automatic attempts
(failures per episode, scans per day: ``failed_attempts``, ``scans_today``), idempotent uploads,
the scan of one attempt (``process_attempt``, run by a worker or the in-process pool) and the
verified identity that a successful scan leaves behind.

Every status change goes through ``_transition``: a compare-and-set UPDATE on the status the
caller read (so two racing requests cannot both move a case), a ``StatusEvent`` row, and an
announcement (``verification.events``) that the review queue and the webhooks subscribe to.
Functions take a session and plain arguments; the ones called from routes commit what they
write before they return.

Personal data: claim and read numbers are stored encrypted (``crypto.Cipher``, associated
data naming the row) with a blind index for equality lookups; scan results keep the number
masked; nothing here logs a name or a number.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocr_service import metrics
from ocr_service.config import Settings, get_settings
from ocr_service.crypto import get_cipher
from ocr_service.db import Database, get_database, utcnow
from ocr_service.errors import ApiError, illegal_transition, image_error, not_found
from ocr_service.imaging import decode_slots, release_memory
from ocr_service.masking import mask_document_number
from ocr_service.queue import dispatch
from ocr_service.queue.celery_app import SCAN_TASK
from ocr_service.report import scan_result_json
from ocr_service.storage import get_blob_store
from ocr_service.verification import events
from ocr_service.verification.events import StatusChange
from ocr_service.verification.models import (
    ApiKey,
    Attempt,
    AttemptStatus,
    DocumentType,
    IdempotencyRecord,
    ImageSide,
    Method,
    StatusEvent,
    StoredImage,
    Verification,
    VerificationStatus,
    VerifiedIdentity,
    new_id,
)
from ocr_service.verification.schemas import (
    AttemptOut,
    ClaimCorrection,
    ClaimOut,
    IdentityOut,
    NextAction,
    QualityOut,
    QualityScoresOut,
    StatusEventOut,
    UploadOut,
    VerificationCreate,
    VerificationOut,
    reasons_out,
)
from pipelines.decode import DecodedImage, DecodeLimits, ImageDecodeError, decode_image
from pipelines.idnumber import (
    NumberKind,
    foreign_permanent_residence_number_ok,
    normalize_id_number,
    number_kind,
    residence_permit_number_ok,
    validate_id_number,
)
from pipelines.reasons import REJECT_REASONS, CaseReason, ClaimProblem, Decision, Reason, message_en, message_zh

log = structlog.get_logger(__name__)

S = VerificationStatus

# The state machine (docs/service-design.md). Anything else is 409 illegal_transition.
ALLOWED_TRANSITIONS: frozenset[tuple[VerificationStatus, VerificationStatus]] = frozenset(
    {
        (S.AWAITING_IMAGES, S.PROCESSING),  # upload, automatic resident ID
        (S.AWAITING_IMAGES, S.IN_REVIEW),  # upload, manual / other document / attempts exhausted
        (S.PROCESSING, S.VERIFIED),  # scan accept
        (S.PROCESSING, S.RETAKE),  # scan retake or reject (a failed attempt)
        (S.PROCESSING, S.IN_REVIEW),  # scan review, too many failures, or the scan could not run
        (S.RETAKE, S.PROCESSING),  # upload again
        (S.RETAKE, S.IN_REVIEW),  # attempts exhausted
        (S.IN_REVIEW, S.WITHDRAWN),  # the applicant withdraws
        # the applicant withdraws a case whose scan is still queued or running (a broker or worker
        # outage must not hold them for minutes, issue 13); the late scan is recorded, decides nothing
        (S.PROCESSING, S.WITHDRAWN),
        (S.IN_REVIEW, S.VERIFIED),  # reviewer approves (issue 4)
        (S.IN_REVIEW, S.REJECTED),  # reviewer rejects (issue 4)
        (S.IN_REVIEW, S.RETAKE),  # reviewer asks for new images (issue 4)
        (S.VERIFIED, S.REJECTED),  # reviewer rejects an identity flagged by re-verification (issue 4)
    }
)
FINAL_STATUSES = frozenset({S.VERIFIED, S.REJECTED, S.WITHDRAWN})
FAILED_DECISIONS = (Decision.RETAKE, Decision.REJECT)
# A clear read that contradicts only what was typed: no new photo can fix it, so the scan asks for
# the claim again (next_action correct_claim) and does not count as a failed attempt (issue 13).
# Which claim field (ClaimIn's names) each reason points at.
_CLAIM_FIELDS = {Reason.NAME_MISMATCH: "name", Reason.ID_NUMBER_MISMATCH: "document_number"}


def claim_fields(reasons: list[str] | None) -> list[str]:
    """The claim field a scan's reasons say was mistyped: [] unless contradicting one field of the
    claim is all that is wrong. An invalid number on the card is a reject a correction cannot fix,
    and a card whose name *and* number both differ is someone else's card, not a typo: that is a
    failed attempt like any other (otherwise other people's cards could be scanned for free)."""
    rejects = {reason for reason in reasons or () if reason in REJECT_REASONS}
    if len(rejects) != 1 or not rejects <= set(_CLAIM_FIELDS):
        return []
    return [field for reason, field in _CLAIM_FIELDS.items() if reason in rejects]


def charged_attempts(attempts: Iterable[tuple[str, Decision | None, list[str] | None]]) -> list[bool]:
    """Which of these attempts (verification id, decision, reasons; oldest first) count as failed.

    A retake or reject counts, except the first claim mismatch of each verification: that one asks
    for the claim and is free. If the same kind of contradiction comes back (the applicant insists,
    or the read itself is wrong, e.g. a rare character), it counts like any failure, so the case
    still reaches a person once the attempts are used up instead of asking for the claim forever.
    """
    asked: set[str] = set()
    charged = []
    for verification_id, decision, reasons in attempts:
        if decision not in FAILED_DECISIONS:
            charged.append(False)
        elif claim_fields(reasons) and verification_id not in asked:
            asked.add(verification_id)
            charged.append(False)
        else:
            charged.append(True)
    return charged


# Which photos a case needs before it can be decided. The automatic path reads the portrait
# side only (name and number are printed there); a reviewer wants both sides of a two-sided card.
_REQUIRED_SIDES: dict[tuple[DocumentType, Method], tuple[ImageSide, ...]] = {
    (DocumentType.RESIDENT_ID, Method.AUTO): (ImageSide.FRONT,),
    (DocumentType.RESIDENT_ID, Method.MANUAL): (ImageSide.FRONT, ImageSide.BACK),
    (DocumentType.HK_MACAU_PERMIT, Method.MANUAL): (ImageSide.FRONT, ImageSide.BACK),
    (DocumentType.TAIWAN_PERMIT, Method.MANUAL): (ImageSide.FRONT, ImageSide.BACK),
    # both cards are two-sided like the resident ID card, whichever method the client sent
    **{
        (document_type, method): (ImageSide.FRONT, ImageSide.BACK)
        for document_type in (DocumentType.HMT_RESIDENCE_PERMIT, DocumentType.FOREIGN_PERMANENT_RESIDENCE)
        for method in Method
    },
}
# Numbers with a format of their own, checked on creation (422 naming the format otherwise).
_NUMBER_FORMATS = {
    DocumentType.HMT_RESIDENCE_PERMIT: (residence_permit_number_ok, ClaimProblem.INVALID_RESIDENCE_PERMIT_NUMBER),
    DocumentType.FOREIGN_PERMANENT_RESIDENCE: (
        foreign_permanent_residence_number_ok,
        ClaimProblem.INVALID_FOREIGN_PERMANENT_RESIDENCE_NUMBER,
    ),
}
# A valid number typed as a resident ID that is not a mainland resident's (003: 港澳台及外籍人员
# 不能自动认证): the case takes the holder's document type and goes to a person, saying why.
_NOT_A_RESIDENT = {
    NumberKind.HMT_RESIDENCE_PERMIT: (DocumentType.HMT_RESIDENCE_PERMIT, CaseReason.RESIDENCE_PERMIT_NUMBER),
    NumberKind.FOREIGN_PERMANENT_RESIDENCE: (
        DocumentType.FOREIGN_PERMANENT_RESIDENCE,
        CaseReason.FOREIGN_PERMANENT_RESIDENCE_NUMBER,
    ),
}
_ROUTED_ON_CREATION = frozenset(reason.value for _, reason in _NOT_A_RESIDENT.values())
# Documents with a machine-readable zone: their photos are read once at upload (verification.mrz)
# for the reviewer, who still decides; the zone's text is not compared with anything automatically.
MRZ_DOCUMENTS = frozenset({DocumentType.HK_MACAU_PERMIT, DocumentType.TAIWAN_PERMIT, DocumentType.FOREIGN_PASSPORT})
# SQLite has no row locks; a scan marked running longer than this was started by a process
# that died (a scan takes about a second), so a resubmission may take it over.
STALE_RUNNING_AFTER = timedelta(minutes=2)

_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}


# --- small helpers ---------------------------------------------------------------------------


def _claim_aad(verification_id: str) -> bytes:
    return b"verifications.claim_number:" + verification_id.encode()


def _read_aad(attempt_id: str) -> bytes:
    return b"attempts.read_number:" + attempt_id.encode()


def _identity_aad(identity_id: str) -> bytes:
    return b"verified_identities.number:" + identity_id.encode()


def _image_aad(verification_id: str) -> bytes:
    return b"stored_images:" + verification_id.encode()


def normalize_document_number(document_type: DocumentType, number: str) -> str:
    if document_type in (DocumentType.RESIDENT_ID, DocumentType.HMT_RESIDENCE_PERMIT):
        return normalize_id_number(number)
    return "".join(unicodedata.normalize("NFKC", number).split()).upper()


def requires_manual_review(verification: Verification) -> bool:
    """Only a resident ID card on the automatic path is scanned; everything else goes to a person."""
    return not (verification.method == Method.AUTO and verification.document_type == DocumentType.RESIDENT_ID)


def required_sides(verification: Verification) -> tuple[ImageSide, ...]:
    return _REQUIRED_SIDES.get((verification.document_type, verification.method), (ImageSide.FRONT,))


def episode_started_at(session: Session, client_key_id: str, subject_id: str) -> datetime | None:
    """When the subject's current automatic episode began: its latest withdrawal, None before any.

    003: a request waiting for a reviewer can be withdrawn "to verify again automatically", so a
    withdrawal starts the failure count afresh; the earlier attempts stay in the history.
    """
    # Only a withdrawal from review: withdrawing a case while its scan waits (issue 13) must not
    # wipe the failures before it, or upload-and-withdraw would reset the count at will.
    return session.scalar(
        select(func.max(StatusEvent.at))
        .join(Verification, Verification.id == StatusEvent.verification_id)
        .where(
            Verification.client_key_id == client_key_id,
            Verification.subject_id == subject_id,
            StatusEvent.from_status == S.IN_REVIEW,
            StatusEvent.to_status == S.WITHDRAWN,
        )
    )


def _subject_attempts(client_key_id: str, subject_id: str):
    return (
        select(func.count(Attempt.id))
        .join(Verification, Verification.id == Attempt.verification_id)
        .where(Verification.client_key_id == client_key_id, Verification.subject_id == subject_id)
    )


def failed_attempts(session: Session, client_key_id: str, subject_id: str) -> int:
    """Failed automatic attempts (retake or reject) of one subject in its current episode; a
    verification's first claim mismatch is not one (``charged_attempts``). Counted here: the
    reasons are a JSON list."""
    query = (
        select(Attempt.verification_id, Attempt.decision, Attempt.reasons)
        .join(Verification, Verification.id == Attempt.verification_id)
        .where(
            Verification.client_key_id == client_key_id,
            Verification.subject_id == subject_id,
            Attempt.decision.in_(FAILED_DECISIONS),
        )
        .order_by(Attempt.created_at, Attempt.id)
    )
    started = episode_started_at(session, client_key_id, subject_id)
    if started is not None:
        query = query.where(Attempt.created_at > started)
    return sum(charged_attempts(session.execute(query).all()))


def scans_today(session: Session, client_key_id: str, subject_id: str) -> int:
    """Automatic scans the pipeline decided for one subject in the last 24 hours, over all episodes."""
    since = utcnow() - timedelta(days=1)
    query = _subject_attempts(client_key_id, subject_id).where(
        Attempt.decision.is_not(None), Attempt.created_at >= since
    )
    return session.scalar(query) or 0


def attempts_left(session: Session, client_key_id: str, subject_id: str, settings: Settings) -> int:
    """Automatic attempts before manual review: the episode's failures and the day's scans both count."""
    return max(
        0,
        min(
            settings.max_failed_attempts - failed_attempts(session, client_key_id, subject_id),
            settings.max_daily_attempts - scans_today(session, client_key_id, subject_id),
        ),
    )


def _limit_reached(session: Session, client_key_id: str, subject_id: str, settings: Settings) -> CaseReason | None:
    """Why the subject's automatic attempts are used up (the episode's failures first), None if they are not."""
    if failed_attempts(session, client_key_id, subject_id) >= settings.max_failed_attempts:
        return CaseReason.TOO_MANY_ATTEMPTS
    if scans_today(session, client_key_id, subject_id) >= settings.max_daily_attempts:
        return CaseReason.DAILY_ATTEMPTS_EXHAUSTED
    return None


def _transition(
    session: Session,
    verification: Verification,
    to: VerificationStatus,
    *,
    action: str,
    actor: str,
    reason: str | None = None,
    settings: Settings | None = None,
) -> None:
    """Move a case to ``to``: compare-and-set on the status read, history row, webhook after commit."""
    current = verification.status
    if (current, to) not in ALLOWED_TRANSITIONS:
        raise illegal_transition(current.value, action)
    now = utcnow()
    moved = session.execute(
        update(Verification)
        .where(Verification.id == verification.id, Verification.status == current)
        .values(status=to, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:  # another request moved it first
        session.refresh(verification)
        raise illegal_transition(verification.status.value, action)
    verification.status = to
    verification.updated_at = now
    if to in FINAL_STATUSES:
        verification.decided_at = now
    session.add(
        StatusEvent(verification_id=verification.id, from_status=current, to_status=to, reason=reason, actor=actor)
    )
    # the review queue and the client's webhook follow (they subscribe; nothing here imports them)
    events.announce(StatusChange(session, verification, current, to, settings or get_settings()))


def _owned(session: Session, client: ApiKey, verification_id: str) -> Verification:
    """The client's own verification; another client's id is indistinguishable from a missing one."""
    stmt = select(Verification).where(Verification.id == verification_id, Verification.client_key_id == client.id)
    verification = session.scalar(stmt)
    if verification is None:
        raise not_found("verification")
    return verification


# --- quality ---------------------------------------------------------------------------------


def _decode(data: bytes, limits: DecodeLimits) -> DecodedImage:
    """Decode an upload in a request thread; call it holding one of ``imaging.decode_slots``."""
    try:
        return decode_image(data, limits)
    except ImageDecodeError as exc:
        log.info("image_rejected", code=exc.code.value, detail=exc.detail)
        raise image_error(exc.code) from None


# An upload is decoded here only to refuse a bad file before anything is stored; the scan decodes
# it again. A JPEG is checked at 1/8 scale: every byte of its entropy stream is still decoded (only
# the inverse DCT is reduced), so damage is found as at full size, for a sixty-fourth of the pixels.
_VALIDATION_LONG_SIDE = 640


def _upload_format(data: bytes, settings: Settings) -> str:
    """The format of an upload that decodes; the pixels are dropped at once."""
    limits = replace(settings.decode_limits(), long_side=_VALIDATION_LONG_SIDE)
    with decode_slots(settings).held():
        return _decode(data, limits).format


def check_quality(data: bytes, settings: Settings) -> QualityOut:
    """The live framing check: card geometry and capture quality, no OCR, nothing stored."""
    from pipelines.quality import check_frame

    started = time.perf_counter()
    with decode_slots(settings).held():  # the frame is held until the check is done
        frame = _decode(data, settings.quality_decode_limits()).image
        detection, report = check_frame(frame, settings.quality)
        h, w = frame.shape[:2]
        del frame
    metrics.QUALITY_CHECKS.labels(ok=str(report.ok).lower()).inc()
    return QualityOut(
        ok=report.ok,
        reasons=reasons_out([r.value for r in report.reasons]),
        corners=detection.quad.as_lists() if detection.quad else None,
        frame_size=(w, h),
        scores=QualityScoresOut(**asdict(report.scores)) if report.scores else None,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )


# --- creating and reading cases ---------------------------------------------------------------


def create_verification(session: Session, client: ApiKey, data: VerificationCreate) -> Verification:
    """A new case in ``awaiting_images``. The claim number is checked, encrypted and indexed."""
    cipher = get_cipher()
    document_type, method, routed = data.document_type, data.method, None
    number = normalize_document_number(document_type, data.claim.document_number)
    if document_type in _NUMBER_FORMATS:
        number_ok, problem = _NUMBER_FORMATS[document_type]
        if not number_ok(number):
            raise ApiError(
                "validation_error",
                422,
                message_en(problem),
                message_zh(problem),
                {"errors": [{"loc": ["body", "claim", "document_number"], "problems": [problem.value]}]},
            )
    if document_type == DocumentType.RESIDENT_ID:
        check = validate_id_number(number)
        if not check.valid:
            raise ApiError(
                "validation_error",
                422,
                "the claimed resident ID number is not valid",
                "身份证号码格式不正确，请检查后重新填写",
                {
                    "errors": [
                        {"loc": ["body", "claim", "document_number"], "problems": [p.value for p in check.problems]}
                    ]
                },
            )
        if number_kind(number) in _NOT_A_RESIDENT:
            document_type, routed = _NOT_A_RESIDENT[number_kind(number)]
            method = Method.MANUAL
    pending = session.scalar(
        select(Verification).where(
            Verification.client_key_id == client.id,
            Verification.subject_id == data.subject_id,
            Verification.status.in_((S.IN_REVIEW, S.PROCESSING)),
        )
    )
    if pending is not None:
        # The product: a pending manual request is withdrawn before the applicant starts again.
        raise ApiError(
            "verification_pending",
            409,
            f"the subject already has a verification in {pending.status.value}; withdraw it first",
            "已有正在处理的认证申请，请先撤回后再重新认证",
            {"verification_id": pending.id, "current_status": pending.status.value},
        )
    verification = Verification(
        id=new_id(),
        client_key_id=client.id,
        subject_id=data.subject_id,
        document_type=document_type,
        method=method,
        status=S.AWAITING_IMAGES,
        claim_name=data.claim.name,
        claim_number_index=cipher.blind_index(number),
        # a re-typed case says why from the start, and keeps the reason for its review
        decision_reasons=[routed.value] if routed else [],
        review_reason=routed.value if routed else None,
    )
    verification.claim_number_enc = cipher.encrypt_text(number, _claim_aad(verification.id))
    session.add(verification)
    session.add(
        StatusEvent(
            verification_id=verification.id,
            from_status=None,
            to_status=S.AWAITING_IMAGES,
            reason=routed.value if routed else None,
            actor=_actor(client),
        )
    )
    session.commit()
    log.info(
        "verification_created",
        verification_id=verification.id,
        document_type=verification.document_type.value,
        method=verification.method.value,
    )
    return verification


def _actor(client: ApiKey) -> str:
    return f"key:{client.id}"


def get_verification(session: Session, client: ApiKey, verification_id: str) -> Verification:
    return _owned(session, client, verification_id)


def _next_action(session: Session, verification: Verification) -> NextAction:
    status = verification.status
    if status in FINAL_STATUSES:
        return NextAction.NONE
    if status == S.IN_REVIEW:
        return NextAction.WAIT_FOR_REVIEW
    if status == S.PROCESSING:
        return NextAction.WAIT_FOR_SCAN
    if status == S.RETAKE:
        return NextAction.CORRECT_CLAIM if claim_fields(verification.decision_reasons) else NextAction.UPLOAD_FRONT
    uploaded = set(session.scalars(select(Attempt.side).where(Attempt.verification_id == verification.id)).all())
    missing = [side for side in required_sides(verification) if side not in uploaded]
    return NextAction.UPLOAD_BACK if missing and missing[0] == ImageSide.BACK else NextAction.UPLOAD_FRONT


def verification_view(session: Session, verification: Verification, settings: Settings) -> VerificationOut:
    """The case as the client sees it: status, reasons in Chinese, attempts, what is left."""
    session.refresh(verification)
    cipher = get_cipher()
    claim_number = cipher.decrypt_text(verification.claim_number_enc, _claim_aad(verification.id))
    failed = failed_attempts(session, verification.client_key_id, verification.subject_id)
    left = attempts_left(session, verification.client_key_id, verification.subject_id, settings)
    attempts = session.scalars(
        select(Attempt).where(Attempt.verification_id == verification.id).order_by(Attempt.created_at, Attempt.id)
    ).all()
    events = session.scalars(
        select(StatusEvent).where(StatusEvent.verification_id == verification.id).order_by(StatusEvent.id)
    ).all()
    return VerificationOut(
        id=verification.id,
        subject_id=verification.subject_id,
        document_type=verification.document_type,
        method=verification.method,
        status=verification.status,
        claim=ClaimOut(name=verification.claim_name, document_number=mask_document_number(claim_number)),
        reasons=reasons_out(verification.decision_reasons),
        review_reason=verification.review_reason,
        attempts_left=left,
        failed_attempts=failed,
        max_failed_attempts=settings.max_failed_attempts,
        next_action=_next_action(session, verification),
        claim_fields=_claim_fields_asked(verification),
        attempts=[
            _attempt_out(a, charged)
            for a, charged in zip(
                attempts, charged_attempts((a.verification_id, a.decision, a.reasons) for a in attempts), strict=True
            )
        ],
        history=[
            StatusEventOut(from_status=e.from_status, to_status=e.to_status, reason=e.reason, at=e.at) for e in events
        ],
        created_at=verification.created_at,
        updated_at=verification.updated_at,
        decided_at=verification.decided_at,
    )


def _claim_fields_asked(verification: Verification) -> list[str]:
    return claim_fields(verification.decision_reasons) if verification.status == S.RETAKE else []


def _attempt_out(attempt: Attempt, charged: bool) -> AttemptOut:
    return AttemptOut(
        id=attempt.id,
        side=attempt.side,
        status=attempt.status,
        decision=attempt.decision,
        reasons=reasons_out(attempt.reasons),
        counts_as_failure=charged,
        created_at=attempt.created_at,
        finished_at=attempt.finished_at,
    )


# --- uploads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadTicket:
    """What an upload created: the attempt, and whether a scan must be submitted for it."""

    verification_id: str
    attempt_id: str
    needs_scan: bool  # an automatic scan: the upload waits for its decision
    replayed: bool
    reads_mrz: bool = False  # a passport/permit photo: its zone is read in the background, not waited for
    scans_for_review: bool = False  # a resident ID photo going to a person: scanned in the background, decides nothing
    # a repeated upload whose attempt is still queued (its message may have been lost): submitted again
    resend: bool = False
    # The answer as of the store (a new upload only): what the client is told if the database or
    # broker fails after the photo was committed (``stored_upload_view``).
    as_stored: UploadOut | None = None

    @property
    def in_background(self) -> bool:
        """Submitted for the worker but not waited for: the case is already with a reviewer."""
        return self.reads_mrz or self.scans_for_review

    @property
    def to_submit(self) -> bool:
        return self.needs_scan or self.in_background or self.resend


def _request_hash(verification_id: str, side: ImageSide, digest: str) -> str:
    return hashlib.sha256(f"upload|{verification_id}|{side.value}|{digest}".encode()).hexdigest()


def _replay(session: Session, record: IdempotencyRecord, verification_id: str, request_hash: str) -> UploadTicket:
    """The first upload's answer; its attempt is submitted again while still queued (issue 13: a
    client retrying after a broker outage must not wait for the sweeper)."""
    if record.verification_id != verification_id or record.request_hash != request_hash or not record.attempt_id:
        raise ApiError(
            "duplicate_request",
            409,
            "this Idempotency-Key was already used for a different request",
            "重复的请求标识，请勿重复提交",
            {"verification_id": record.verification_id},
        )
    attempt_status = session.scalar(select(Attempt.status).where(Attempt.id == record.attempt_id))
    return UploadTicket(
        record.verification_id,
        record.attempt_id,
        needs_scan=False,
        replayed=True,
        resend=attempt_status == AttemptStatus.QUEUED,
    )


def submit_image(
    session: Session,
    client: ApiKey,
    verification_id: str,
    side: ImageSide,
    data: bytes,
    idempotency_key: str | None,
    settings: Settings,
) -> UploadTicket:
    """Validate and store one photo and move the case on; commits before it returns.

    Order matters: nothing is written until the photo has decoded and the case accepts an
    upload, so a rejected upload leaves no blob and no row. The same ``Idempotency-Key``
    with the same verification and photo returns the first upload's attempt; with anything
    else it is ``duplicate_request``.
    """
    verification = _owned(session, client, verification_id)
    digest = hashlib.sha256(data).hexdigest()
    request_hash = _request_hash(verification.id, side, digest)
    if idempotency_key:
        record = session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.client_key_id == client.id, IdempotencyRecord.key == idempotency_key
            )
        )
        if record is not None:
            return _replay(session, record, verification.id, request_hash)

    manual = requires_manual_review(verification)
    if verification.status not in (S.AWAITING_IMAGES, S.RETAKE):
        raise illegal_transition(verification.status.value, "upload")
    sides = required_sides(verification)
    if side not in sides:
        raise ApiError(
            "side_not_requested",
            422,
            f"this verification takes the {' and '.join(s.value for s in sides)} side only",
            "请上传证件人像面" if sides == (ImageSide.FRONT,) else "请上传要求的证件面",
            {"side": side.value, "expected_sides": [s.value for s in sides]},
        )
    image_format = _upload_format(data, settings)

    exhausted = None if manual else _limit_reached(session, client.id, verification.subject_id, settings)
    if manual or exhausted:
        uploaded = set(session.scalars(select(Attempt.side).where(Attempt.verification_id == verification.id)).all())
        complete = all(s in uploaded | {side} for s in sides) or exhausted is not None
        to = S.IN_REVIEW if complete else None
        if exhausted is not None:
            review_reason = exhausted
        elif verification.review_reason in _ROUTED_ON_CREATION:
            review_reason = CaseReason(verification.review_reason)
        elif verification.method == Method.MANUAL:
            review_reason = CaseReason.MANUAL_METHOD
        else:
            review_reason = CaseReason.DOCUMENT_TYPE_MANUAL
    else:
        to, review_reason = S.PROCESSING, None

    # a passport or permit photo is read for its zone like a scan is run: queued, in the background
    reads_mrz = to != S.PROCESSING and verification.document_type in MRZ_DOCUMENTS
    # A resident ID portrait photo going to a person (manual method, attempts used up, or a new photo
    # after a reviewer asked for one) is scanned like any upload, so the reviewer sees what the
    # machine read and where the card is; the case is already in review, so the scan decides nothing.
    scans_for_review = (
        to != S.PROCESSING and verification.document_type == DocumentType.RESIDENT_ID and side == ImageSide.FRONT
    )
    queued = to == S.PROCESSING or reads_mrz or scans_for_review
    blobs = get_blob_store()
    blob_id = blobs.put(data, _image_aad(verification.id))
    try:
        image = StoredImage(
            id=new_id(),
            verification_id=verification.id,
            blob_id=blob_id,
            sha256=digest,
            content_type=_CONTENT_TYPES.get(image_format, "application/octet-stream"),
            size_bytes=len(data),
        )
        attempt = Attempt(
            id=new_id(),
            verification_id=verification.id,
            image_id=image.id,
            side=side,
            # a photo for a reviewer that nothing reads (a back side, a document without a zone)
            # is done on arrival, with no decision
            status=AttemptStatus.QUEUED if queued else AttemptStatus.DONE,
            reasons=[],
            idempotency_key=idempotency_key,
            finished_at=None if queued else utcnow(),
        )
        session.add_all([image, attempt])
        # flushed first: the unit of work does not order idempotency_records after attempts
        # (no relationship between them), and the record's foreign key needs the attempt row
        session.flush()
        if idempotency_key:
            session.add(
                IdempotencyRecord(
                    client_key_id=client.id,
                    key=idempotency_key,
                    request_hash=request_hash,
                    verification_id=verification.id,
                    attempt_id=attempt.id,
                )
            )
        session.flush()
        if to == S.IN_REVIEW:
            verification.review_reason = review_reason.value
            verification.decision_reasons = [review_reason.value]
        if to is not None:
            _transition(
                session,
                verification,
                to,
                action="upload",
                actor=_actor(client),
                reason=review_reason.value if review_reason else None,
                settings=settings,
            )
        session.flush()
        as_stored = UploadOut(
            verification_id=verification.id,
            attempt_id=attempt.id,
            status=verification.status,
            attempt_status=attempt.status,
            decision=None,
            reasons=reasons_out(verification.decision_reasons if to == S.IN_REVIEW else []),
            review_reason=verification.review_reason,
            attempts_left=attempts_left(session, client.id, verification.subject_id, settings),
            next_action=_next_action(session, verification),
            status_url="",  # the route's
            replayed=False,
        )
        session.commit()
    except IntegrityError:
        # Two requests with the same Idempotency-Key raced; the other one won. Answer as it did.
        session.rollback()
        blobs.delete(blob_id)
        record = session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.client_key_id == client.id, IdempotencyRecord.key == idempotency_key
            )
        )
        if record is None:
            raise
        return _replay(session, record, verification_id, request_hash)
    except BaseException:
        session.rollback()
        blobs.delete(blob_id)
        raise
    log.info(
        "image_uploaded",
        verification_id=verification.id,
        attempt_id=attempt.id,
        side=side.value,
        scan=to == S.PROCESSING,
        status=verification.status.value,
    )
    return UploadTicket(
        verification.id,
        attempt.id,
        needs_scan=to == S.PROCESSING,
        replayed=False,
        reads_mrz=reads_mrz,
        scans_for_review=scans_for_review,
        as_stored=as_stored,
    )


def correct_claim(
    session: Session, client: ApiKey, verification_id: str, claim: ClaimCorrection, settings: Settings
) -> UploadTicket:
    """The claim typed again after a scan asked for it: stored, and the photo that contradicted
    the old claim queued for a new scan (no new photo; commits before it returns). When the
    subject's automatic attempts are used up the case goes to a person instead, like an upload."""
    verification = _owned(session, client, verification_id)
    if verification.status != S.RETAKE or not claim_fields(verification.decision_reasons):
        raise illegal_transition(verification.status.value, "correct_claim")
    number = normalize_document_number(verification.document_type, claim.document_number)
    check = validate_id_number(number)
    if not check.valid or number_kind(number) in _NOT_A_RESIDENT:
        problems = [p.value for p in check.problems] or ["not_a_resident_id_number"]
        raise ApiError(
            "validation_error",
            422,
            "the corrected resident ID number is not valid",
            "身份证号码格式不正确，请检查后重新填写",
            {"errors": [{"loc": ["body", "document_number"], "problems": problems}]},
        )
    photo = session.scalar(
        select(Attempt)
        .where(Attempt.verification_id == verification.id, Attempt.decision.is_not(None))
        .order_by(Attempt.created_at.desc(), Attempt.id.desc())
        .limit(1)
    )
    assert photo is not None  # a claim mismatch is a decided scan of this case
    cipher = get_cipher()
    verification.claim_name = claim.name
    verification.claim_number_enc = cipher.encrypt_text(number, _claim_aad(verification.id))
    verification.claim_number_index = cipher.blind_index(number)
    exhausted = _limit_reached(session, client.id, verification.subject_id, settings)
    attempt = None
    if exhausted is not None:
        verification.review_reason = exhausted.value
        verification.decision_reasons = [exhausted.value]
        _transition(
            session, verification, S.IN_REVIEW, action="correct_claim", actor=_actor(client), reason=exhausted.value
        )
    else:
        attempt = Attempt(
            id=new_id(),
            verification_id=verification.id,
            image_id=photo.image_id,
            side=photo.side,
            status=AttemptStatus.QUEUED,
            reasons=[],
        )
        session.add(attempt)
        session.flush()
        _transition(
            session,
            verification,
            S.PROCESSING,
            action="correct_claim",
            actor=_actor(client),
            reason="claim_corrected",
            settings=settings,
        )
    session.commit()
    log.info("claim_corrected", verification_id=verification.id, rescan=attempt is not None)
    attempt_id = attempt.id if attempt is not None else photo.id
    return UploadTicket(verification.id, attempt_id, needs_scan=attempt is not None, replayed=False)


def stored_upload_view(ticket: UploadTicket, status_url: str) -> UploadOut | None:
    """The answer for a stored photo when nothing more can be read (database or broker down after
    the store): the case as it was committed, 202 with ``status_url``. None for a repeated upload."""
    if ticket.as_stored is None:
        return None
    return ticket.as_stored.model_copy(update={"status_url": status_url})


def upload_view(session: Session, ticket: UploadTicket, settings: Settings, status_url: str) -> UploadOut:
    """The answer to an upload, read fresh from the database (the scan may have just finished)."""
    # End the session's transaction (a read transaction begun before the wait could keep an old
    # snapshot; nothing is pending here) and forget the rows it holds: with expire_on_commit
    # off, the case would otherwise still read "processing" from the identity map.
    session.rollback()
    session.expire_all()
    verification = session.get(Verification, ticket.verification_id)
    attempt = session.get(Attempt, ticket.attempt_id)
    assert verification is not None and attempt is not None
    # a case that is not waiting for this scan has current reasons (a passport's zone may still be read)
    done = attempt.status in (AttemptStatus.DONE, AttemptStatus.FAILED) or verification.status != S.PROCESSING
    if attempt.decision is not None and verification.status == S.RETAKE:
        reasons = list(attempt.reasons)
    else:
        reasons = list(verification.decision_reasons or []) if done else []
        if attempt.decision is not None and not reasons:
            reasons = list(attempt.reasons)
    return UploadOut(
        verification_id=verification.id,
        attempt_id=attempt.id,
        status=verification.status,
        attempt_status=attempt.status,
        decision=attempt.decision,
        reasons=reasons_out(reasons),
        review_reason=verification.review_reason,
        attempts_left=attempts_left(session, verification.client_key_id, verification.subject_id, settings),
        next_action=_next_action(session, verification),
        claim_fields=_claim_fields_asked(verification),
        status_url=status_url,
        replayed=ticket.replayed,
    )


def attempt_finished(database: Database, attempt_id: str) -> bool:
    with database.session_scope() as session:
        status = session.scalar(select(Attempt.status).where(Attempt.id == attempt_id))
    return status in (AttemptStatus.DONE, AttemptStatus.FAILED)


def wait_for_attempt(attempt_id: str, timeout: float, database: Database | None = None) -> bool:
    """Poll the attempt every 50 ms until it is finished or ``timeout`` passes; True when finished.

    A fresh session per poll: a long-lived SQLite read transaction would keep seeing the
    snapshot from before the scan was written.
    """
    database = database or get_database()
    deadline = time.monotonic() + timeout
    while True:
        if attempt_finished(database, attempt_id):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


async def await_attempt(attempt_id: str, timeout: float, database: Database | None = None) -> bool:
    """``wait_for_attempt`` for async routes: sleeps without holding a worker thread."""
    from starlette.concurrency import run_in_threadpool

    database = database or get_database()
    deadline = time.monotonic() + timeout
    while True:
        if await run_in_threadpool(attempt_finished, database, attempt_id):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


# --- withdraw and identity ---------------------------------------------------------------------


def withdraw(session: Session, client: ApiKey, verification_id: str, settings: Settings) -> Verification:
    """The applicant takes back a request waiting for review, or one whose scan has not finished
    (processing). Withdrawn from review, the next automatic attempt starts a new episode
    (``episode_started_at``): the failure count restarts, the day's scans still count."""
    verification = _owned(session, client, verification_id)
    _transition(session, verification, S.WITHDRAWN, action="withdraw", actor=_actor(client), reason="withdrawn")
    session.commit()
    log.info("verification_withdrawn", verification_id=verification.id)
    return verification


def get_identity(session: Session, client: ApiKey, subject_id: str, full_number: bool) -> IdentityOut:
    identity = session.scalar(
        select(VerifiedIdentity).where(
            VerifiedIdentity.client_key_id == client.id, VerifiedIdentity.subject_id == subject_id
        )
    )
    if identity is None:
        raise ApiError("not_found", 404, "the subject has no verified identity", "尚未完成实名认证")
    number = identity_number(identity)
    # The birth date goes only with the full number: beside a masked one it would fill in the
    # eight birth digits of a resident ID number (issue 11).
    full_only = {"birth_date": identity.birth_date} if full_number else {}
    return IdentityOut(
        subject_id=identity.subject_id,
        name=identity.name,
        sex=identity.sex,
        ethnicity=identity.ethnicity,
        document_type=identity.document_type,
        document_number=number if full_number else mask_document_number(number),
        document_number_masked=not full_number,
        verified_at=identity.verified_at,
        method=identity.method,
        verification_id=identity.verification_id,
        **full_only,
    )


# --- the scan of one attempt (worker side) ------------------------------------------------------


@dataclass(frozen=True)
class _ScanInputs:
    image: bytes
    claim_name: str
    claim_number: str
    reads_mrz: bool = False  # a passport/permit photo: read its zone, decide nothing


def process_attempt(attempt_id: str) -> None:
    """Scan one queued attempt and record the decision; safe to call any number of times.

    PostgreSQL: the attempt row is locked (``SELECT ... FOR UPDATE``) for the whole scan, so a
    duplicate delivery waits and then finds it done. SQLite has no row locks: the attempt is
    claimed by a conditional UPDATE (queued -> running, or a running one abandoned longer than
    ``STALE_RUNNING_AFTER``), the scan runs outside any transaction (SQLite has one writer), and
    the result is written only if the attempt is still running. Either way the decision, the
    status change, its history row and the verified identity are one transaction.
    """
    database = get_database()
    settings = get_settings()
    if database.backend == "postgresql":
        with database.session_scope() as session:
            attempt = session.scalar(select(Attempt).where(Attempt.id == attempt_id).with_for_update())
            if attempt is None or attempt.status in (AttemptStatus.DONE, AttemptStatus.FAILED):
                return
            attempt.status = AttemptStatus.RUNNING
            attempt.task_attempts += 1
            _observe_queue_wait(attempt)
            inputs = _load_inputs(session, attempt)
            outcome = _run_scan(inputs, settings)
            _record(session, attempt, outcome, settings)
        return

    with database.session_scope() as session:
        stale = utcnow() - STALE_RUNNING_AFTER
        claimed = session.execute(
            update(Attempt)
            .where(
                Attempt.id == attempt_id,
                or_(
                    Attempt.status == AttemptStatus.QUEUED,
                    and_(Attempt.status == AttemptStatus.RUNNING, Attempt.created_at < stale),
                ),
            )
            .values(status=AttemptStatus.RUNNING, task_attempts=Attempt.task_attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            return
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        _observe_queue_wait(attempt)
        inputs = _load_inputs(session, attempt)
    outcome = _run_scan(inputs, settings)
    with database.session_scope() as session:
        finished = session.execute(
            update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.status == AttemptStatus.RUNNING)
            .values(status=AttemptStatus.DONE)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not finished:  # a concurrent take-over finished it first
            return
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        _record(session, attempt, outcome, settings)


def _observe_queue_wait(attempt: Attempt) -> None:
    if attempt.task_attempts <= 1:
        metrics.QUEUE_WAIT_SECONDS.observe(max(0.0, (utcnow() - attempt.created_at).total_seconds()))


def _load_inputs(session: Session, attempt: Attempt) -> _ScanInputs | Exception:
    """The decrypted photo and claim; an exception (purged or damaged photo) is returned, not raised."""
    verification = attempt.verification
    try:
        image = attempt.image
        if image.blob_id is None:
            raise LookupError("the photo was purged")
        data = get_blob_store().get(image.blob_id, _image_aad(verification.id))
        number = get_cipher().decrypt_text(verification.claim_number_enc, _claim_aad(verification.id))
    except Exception as exc:  # BlobNotFound, DecryptionError: nothing a retry can fix
        return exc
    return _ScanInputs(data, verification.claim_name, number, verification.document_type in MRZ_DOCUMENTS)


@dataclass(frozen=True)
class _ScanOutcome:
    decision: Decision | None  # None: the scan could not run
    result: object | None  # pipelines.scan.ScanResult
    error: str | None = None
    mrz: dict | None = None  # a zone reading (verification.mrz.reading_json)
    read_zone: bool = False  # this was a zone read, not a scan


def _run_scan(inputs: _ScanInputs | Exception, settings: Settings) -> _ScanOutcome:
    from pipelines.ocr import get_engine
    from pipelines.scan import Claim, scan

    if isinstance(inputs, Exception):
        return _ScanOutcome(None, None, type(inputs).__name__)
    if inputs.reads_mrz:
        from ocr_service.verification import mrz

        try:
            return _ScanOutcome(None, None, mrz=mrz.reading_json(mrz.read_mrz(inputs.image)), read_zone=True)
        except ImageDecodeError as exc:
            return _ScanOutcome(None, None, exc.code.value, read_zone=True)
    try:
        decoded = decode_image(inputs.image, settings.decode_limits())
    except ImageDecodeError as exc:
        return _ScanOutcome(None, None, exc.code.value)
    engine = get_engine(settings.ocr_engine, settings.ocr_threads)
    started = time.perf_counter()
    result = scan(decoded.image, engine, Claim(inputs.claim_name, inputs.claim_number), settings.scan_settings())
    metrics.SCAN_SECONDS.observe(time.perf_counter() - started)
    del decoded  # the frame (up to decode_long_side) is not kept with the result
    release_memory()  # glibc keeps a scan's freed buffers mapped otherwise (benchmarks/upload_memory.py)
    return _ScanOutcome(result.decision, result)


def _record(session: Session, attempt: Attempt, outcome: _ScanOutcome, settings: Settings) -> None:
    """Write the scan's result and move the case: the decision table of the automatic path."""
    verification = attempt.verification
    attempt.finished_at = utcnow()
    if outcome.read_zone:
        # a reviewer's aid only: stored with the attempt, no decision, the case stays where it is
        attempt.status = AttemptStatus.DONE
        attempt.result = {"mrz": outcome.mrz, "mrz_error": outcome.error}
        log.info("mrz_recorded", attempt_id=attempt.id, found=outcome.mrz is not None, error=outcome.error)
        return
    if outcome.result is None:
        attempt.status = AttemptStatus.FAILED
        attempt.reasons = [CaseReason.SCAN_FAILED.value]
        if verification.status != S.PROCESSING:
            # a scan for a reviewer (the case is already in review) or a late one: the case keeps its reason
            log.warning("scan_failed", attempt_id=attempt.id, error=outcome.error)
            return
        verification.review_reason = CaseReason.SCAN_FAILED.value
        verification.decision_reasons = [CaseReason.SCAN_FAILED.value]
        if verification.status == S.PROCESSING:
            _transition(
                session, verification, S.IN_REVIEW, action="scan", actor="worker", reason=CaseReason.SCAN_FAILED.value
            )
        log.warning("scan_failed", attempt_id=attempt.id, error=outcome.error)
        return

    result = outcome.result
    decision = result.decision
    reasons = [r.value for r in result.reasons]
    read_number = result.fields.value("id_number") if result.fields is not None else ""
    # a scan the case is not waiting for (see below) is a reviewer's aid: its decision stays in the
    # stored result only, so it neither counts as a failed attempt nor reads as the case's answer
    waited_for = verification.status == S.PROCESSING
    attempt.status = AttemptStatus.DONE
    attempt.decision = decision if waited_for else None
    attempt.reasons = reasons
    attempt.result = scan_result_json(result, full_id_number=False)
    attempt.read_number_enc = get_cipher().encrypt_text(read_number, _read_aad(attempt.id)) if read_number else None
    attempt.pipeline_version = result.pipeline_version
    attempt.models_digest = result.models_digest
    metrics.SCANS.labels(decision=decision.value).inc()
    log.info(
        "scan_recorded",
        attempt_id=attempt.id,
        verification_id=verification.id,
        decision=decision.value,
        reasons=reasons,
        total_ms=result.timings_ms.get("total"),
    )
    if not waited_for:
        # A scan for a reviewer (the photo went to review on upload), or the case moved on without
        # this scan (a reviewer action racing a redelivered task): record the attempt, leave the case.
        return

    if decision == Decision.ACCEPT:
        verification.decision_reasons = []
        verification.review_reason = None
        _transition(session, verification, S.VERIFIED, action="scan", actor="worker", reason="scan_accept")
        _save_identity(session, verification, result, read_number)
    elif decision == Decision.REVIEW:
        verification.review_reason = CaseReason.SCAN_NEEDS_REVIEW.value
        verification.decision_reasons = reasons
        _transition(
            session, verification, S.IN_REVIEW, action="scan", actor="worker", reason=CaseReason.SCAN_NEEDS_REVIEW.value
        )
    else:  # retake or reject: a failed attempt
        session.flush()
        used_up = _limit_reached(session, verification.client_key_id, verification.subject_id, settings)
        if used_up is not None:
            verification.review_reason = used_up.value
            verification.decision_reasons = [used_up.value, *reasons]
            _transition(session, verification, S.IN_REVIEW, action="scan", actor="worker", reason=used_up.value)
        else:
            verification.decision_reasons = reasons
            _transition(session, verification, S.RETAKE, action="scan", actor="worker", reason=f"scan_{decision.value}")


def _save_identity(session: Session, verification: Verification, result, read_number: str) -> None:
    """Create or replace the subject's verified identity from an accepted scan."""
    fields = result.fields
    identity = ReviewedIdentity(
        name=fields.value("name") or verification.claim_name,
        document_number=normalize_id_number(read_number),
        sex=fields.value("sex") or None,
        ethnicity=fields.value("ethnicity") or None,
        birth_date=fields.birth_date if isinstance(fields.birth_date, date) else None,
    )
    _write_identity(session, verification, identity, verification.method)


def _write_identity(session: Session, verification: Verification, identity: ReviewedIdentity, method) -> None:
    """The one writer of ``verified_identities`` (scan accept and reviewer approval).

    A number already verified for another subject of the same client is kept but flagged:
    two accounts claiming one person is for a person to look at, not for the scan to decide.
    ``identity.document_number`` is already normalised.
    """
    cipher = get_cipher()
    number = identity.document_number
    index = cipher.blind_index(number)
    other = session.scalar(
        select(VerifiedIdentity.id).where(
            VerifiedIdentity.client_key_id == verification.client_key_id,
            VerifiedIdentity.number_index == index,
            VerifiedIdentity.subject_id != verification.subject_id,
        )
    )
    row = session.scalar(
        select(VerifiedIdentity).where(
            VerifiedIdentity.client_key_id == verification.client_key_id,
            VerifiedIdentity.subject_id == verification.subject_id,
        )
    )
    if row is None:
        row = VerifiedIdentity(
            id=new_id(), client_key_id=verification.client_key_id, subject_id=verification.subject_id
        )
        session.add(row)
    row.verification_id = verification.id
    row.name = identity.name
    row.sex = identity.sex or None
    row.ethnicity = identity.ethnicity or None
    row.birth_date = identity.birth_date
    row.document_type = verification.document_type
    row.number_enc = cipher.encrypt_text(number, _identity_aad(row.id))
    row.number_index = index
    row.method = method
    row.verified_at = utcnow()
    row.flagged = other is not None
    row.flag_reason = "document number already verified for another subject" if other is not None else None


# --- decisions of a reviewer (the review queue, issue 4) ------------------------------------------


@dataclass(frozen=True)
class ReviewedIdentity:
    """The identity a reviewer approves: what the document shows, corrections included."""

    name: str
    document_number: str
    sex: str | None = None
    ethnicity: str | None = None
    birth_date: date | None = None


def claim_number(verification: Verification) -> str:
    """The number the applicant typed, in full (reviewers compare it with the document)."""
    return get_cipher().decrypt_text(verification.claim_number_enc, _claim_aad(verification.id))


def read_number(attempt: Attempt) -> str | None:
    """The full number the scan of an attempt read, when it read one."""
    if attempt.read_number_enc is None:
        return None
    return get_cipher().decrypt_text(attempt.read_number_enc, _read_aad(attempt.id))


def identity_number(identity: VerifiedIdentity) -> str:
    """The verified identity's full number (consumers mask it unless their scope allows)."""
    return get_cipher().decrypt_text(identity.number_enc, _identity_aad(identity.id))


def image_bytes(image: StoredImage) -> bytes:
    """The decrypted photo (raises BlobNotFound once purged)."""
    from ocr_service.storage import BlobNotFound

    if image.blob_id is None:
        raise BlobNotFound(image.id)
    return get_blob_store().get(image.blob_id, _image_aad(image.verification_id))


def approve_by_reviewer(session: Session, verification: Verification, identity: ReviewedIdentity, actor: str) -> None:
    """A reviewer approves: the case becomes verified and the subject's identity is (re)written.

    A case already verified (an identity flagged by re-verification) keeps its status; its
    identity is rewritten and the flag cleared. The caller commits.
    """
    if verification.status == S.IN_REVIEW:
        verification.decision_reasons = []
        _transition(session, verification, S.VERIFIED, action="approve", actor=actor, reason="review_approved")
    elif verification.status != S.VERIFIED:
        raise illegal_transition(verification.status.value, "approve")
    number = normalize_document_number(verification.document_type, identity.document_number)
    _write_identity(session, verification, replace(identity, document_number=number), Method.MANUAL)


def reject_by_reviewer(session: Session, verification: Verification, reason: str, actor: str) -> None:
    """A reviewer rejects; ``reason`` is a review reason code whose Chinese text the applicant sees.

    Rejecting a verified case (flagged by re-verification) also removes its verified identity:
    the declaration module must not pre-fill an identity a reviewer refused. The caller commits.
    """
    was_verified = verification.status == S.VERIFIED
    verification.decision_reasons = [reason]
    _transition(session, verification, S.REJECTED, action="reject", actor=actor, reason=f"review_rejected:{reason}")
    if was_verified:
        row = session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.verification_id == verification.id))
        if row is not None:
            session.delete(row)


def request_new_images(session: Session, verification: Verification, reason: str, actor: str) -> None:
    """A reviewer sends the case back to the applicant for new photos (status ``retake``). The caller commits."""
    verification.decision_reasons = [reason]
    _transition(session, verification, S.RETAKE, action="retake", actor=actor, reason=f"review_retake:{reason}")


# --------------------------------------------------------------------------- the outbox

UNFINISHED_ATTEMPT_STATUSES = (AttemptStatus.QUEUED, AttemptStatus.RUNNING)


def unfinished_attempt_ids(session: Session, cutoff: datetime) -> list[str]:
    """Attempts still queued/running created at or before ``cutoff``, oldest first: what ``requeue_stale`` resends."""
    return list(
        session.scalars(
            select(Attempt.id)
            .where(Attempt.status.in_(UNFINISHED_ATTEMPT_STATUSES), Attempt.created_at <= cutoff)
            .order_by(Attempt.created_at)
        ).all()
    )


# The attempts table is the outbox queue.dispatch sweeps; without a broker it runs scans itself.
dispatch.register_outbox(unfinished_attempt_ids)
dispatch.register_inprocess(SCAN_TASK, process_attempt)
