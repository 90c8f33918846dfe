"""Declarations: creating them from a verified identity, the form, attachments, the state machine, review.

Service functions take a session and plain arguments and are the only code that writes the
declaration tables; they commit what they write. Applicant fields (name, sex, ethnicity, ID
number, verification id) are copied from ``VerifiedIdentity`` when a declaration is created and
are never taken from a request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ocr_service.auth import Scope, create_api_key
from ocr_service.config import Settings, get_settings
from ocr_service.crypto import get_cipher
from ocr_service.db import utcnow
from ocr_service.declaration import validation
from ocr_service.declaration.models import (
    ApplicantCategory,
    Declaration,
    DeclarationAttachment,
    DeclarationEvent,
    DeclarationKind,
    DeclarationStatus,
    ExamProject,
    IdentityReview,
    UnitBinding,
    UnitCodeCounter,
    UnitRequestStatus,
    WorkUnit,
    WorkUnitRequest,
)
from ocr_service.declaration.requirements import (
    PROBATION_CONDITIONAL_UPLOADS,
    TCM_CANDIDATES,
    TEACHER_DOCUMENTS,
)
from ocr_service.declaration.schemas import (
    ApplicantOut,
    AttachmentOut,
    DeclarationOut,
    EventOut,
    NoticeCheckOut,
    ProbationForm,
    ProjectOut,
    RequiredUploadOut,
    ReviewDeclarationOut,
    TcmForm,
    UnverifiedApplicantIn,
    WorkUnitOut,
    WorkUnitSearchOut,
)
from ocr_service.errors import ApiError, not_found
from ocr_service.masking import mask_document_number
from ocr_service.storage import BlobStore
from ocr_service.verification.models import ApiKey, DocumentType, VerifiedIdentity
from ocr_service.verification.service import identity_number
from pipelines import divisions
from pipelines.decode import ImageDecodeError, decode_image

log = structlog.get_logger(__name__)

S = DeclarationStatus

# --- the state machine ----------------------------------------------------------------------------


class Action(StrEnum):
    CREATE = "create"
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    START_REVIEW = "start_review"
    APPROVE = "approve"
    RETURN = "return"
    ALLOW_MODIFICATION = "allow_modification"


# action -> (the statuses it may start from, the status it leads to)
TRANSITIONS: dict[Action, tuple[frozenset[DeclarationStatus], DeclarationStatus]] = {
    Action.SUBMIT: (frozenset({S.DRAFT, S.WITHDRAWN, S.RETURNED, S.MODIFICATION_ALLOWED}), S.SUBMITTED),
    # only before the unit has started reviewing
    Action.WITHDRAW: (frozenset({S.SUBMITTED}), S.WITHDRAWN),
    Action.START_REVIEW: (frozenset({S.SUBMITTED}), S.UNDER_REVIEW),
    Action.APPROVE: (frozenset({S.SUBMITTED, S.UNDER_REVIEW}), S.APPROVED),
    Action.RETURN: (frozenset({S.SUBMITTED, S.UNDER_REVIEW}), S.RETURNED),
    Action.ALLOW_MODIFICATION: (frozenset({S.APPROVED}), S.MODIFICATION_ALLOWED),
}
# where the applicant may change the form and attachments
EDITABLE = frozenset({S.DRAFT, S.WITHDRAWN, S.RETURNED, S.MODIFICATION_ALLOWED})
# approved is final until the unit reopens it; only open declarations get flagged
OPEN = frozenset(set(S) - {S.APPROVED})

# Confirmation codes a unit is given (or may choose): at least 8 characters of an alphabet with no
# look-alikes (no 0/O, 1/I/L), so a code read aloud or off paper is typed right. Generated ones
# have 10: 31^10 (about 8e14) values, hopeless to guess within the attempt limits.
CONFIRMATION_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CONFIRMATION_CODE_MIN_LENGTH = 8
CONFIRMATION_CODE_LENGTH = 10
# A counter idle this long (no failure, no lockout running) is forgotten, its back-off level too.
UNIT_CODE_FORGET_AFTER = timedelta(hours=24)
# PBKDF2 rounds for confirmation codes: codes are short, so the hash must be slow to brute-force
# offline; 100k SHA-256 rounds take ~50 ms, paid only when a unit is registered or bound.
CODE_HASH_ITERATIONS = 100_000
# Attachments: PDF, JPEG and PNG only, recognised by their first bytes.
_SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
_EXTENSIONS = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}


def illegal_transition(declaration: Declaration, action: Action) -> ApiError:
    return ApiError(
        "illegal_transition",
        409,
        f"cannot {action.value} a declaration that is {declaration.status.value}",
        "当前申报状态不允许此操作",
        {"current_status": declaration.status.value, "action": action.value},
    )


def transition(
    session: Session, declaration: Declaration, action: Action, actor: str, reason: str | None = None
) -> None:
    """Move along the state machine and record the event (who, when, from, to, why), or 409."""
    allowed_from, to_status = TRANSITIONS[action]
    if declaration.status not in allowed_from:
        raise illegal_transition(declaration, action)
    declaration.events.append(
        DeclarationEvent(
            declaration_id=declaration.id,
            from_status=declaration.status,
            to_status=to_status,
            action=action.value,
            reason=reason,
            actor=actor,
        )
    )
    declaration.status = to_status
    declaration.updated_at = utcnow()


def validation_failed(errors: list[validation.FieldError]) -> ApiError:
    return ApiError(
        "validation_failed",
        422,
        "the declaration has invalid or missing fields",
        "申报信息有误，请按提示修改",
        {"errors": [error.as_dict() for error in errors]},
    )


def _actor(key: ApiKey) -> str:
    return f"key:{key.id}"


# --- personal data -----------------------------------------------------------------------------


def _number_aad(declaration_id: str) -> bytes:
    return b"declarations.number:" + declaration_id.encode()


def _form_aad(declaration_id: str) -> bytes:
    return b"declarations.form:" + declaration_id.encode()


def _attachment_aad(declaration_id: str) -> bytes:
    return b"declaration_attachments:" + declaration_id.encode()


def applicant_number(declaration: Declaration) -> str:
    return get_cipher().decrypt_text(declaration.number_enc, _number_aad(declaration.id))


def read_form(declaration: Declaration) -> dict[str, Any]:
    if declaration.form_enc is None:
        return {}
    return json.loads(get_cipher().decrypt_text(declaration.form_enc, _form_aad(declaration.id)))


def _write_form(declaration: Declaration, form: dict[str, Any]) -> None:
    text = json.dumps(form, ensure_ascii=False, sort_keys=True)
    declaration.form_enc = get_cipher().encrypt_text(text, _form_aad(declaration.id))


def _parsed(declaration: Declaration) -> TcmForm | ProbationForm:
    model = TcmForm if declaration.kind is DeclarationKind.TCM_EXPERTISE else ProbationForm
    return model.model_validate(read_form(declaration))


# --- work units -----------------------------------------------------------------------------------


def new_confirmation_code() -> str:
    """A fresh unit confirmation code: 10 characters drawn by ``secrets`` from the unambiguous alphabet."""
    return "".join(secrets.choice(CONFIRMATION_CODE_ALPHABET) for _ in range(CONFIRMATION_CODE_LENGTH))


def _normalise_code(code: str) -> str:
    """Codes compare without regard to case or surrounding spaces."""
    return code.strip().upper()


def check_code_strength(code: str) -> str:
    """The normalised code, or a 422 when it is shorter than 8 or has characters outside the alphabet."""
    normalised = _normalise_code(code)
    if len(normalised) >= CONFIRMATION_CODE_MIN_LENGTH and set(normalised) <= set(CONFIRMATION_CODE_ALPHABET):
        return normalised
    message_zh = f"单位确认码须至少{CONFIRMATION_CODE_MIN_LENGTH}位，只能使用数字2-9和字母（不含易混淆的O、I、L）"
    raise ApiError(
        "weak_confirmation_code",
        422,
        f"a confirmation code needs at least {CONFIRMATION_CODE_MIN_LENGTH} characters from "
        f"{CONFIRMATION_CODE_ALPHABET} (no 0, 1, O, I, L); omit it to have one generated",
        message_zh,
        {
            "errors": [{"field": "confirmation_code", "code": "weak_confirmation_code", "message_zh": message_zh}],
            "min_length": CONFIRMATION_CODE_MIN_LENGTH,
            "alphabet": CONFIRMATION_CODE_ALPHABET,
        },
    )


# Hashes of codes normalised by ``_normalise_code`` carry this scheme; the units registered before
# issue 11 keep "pbkdf2_sha256" and are compared as they were typed then (stripped only).
_CODE_SCHEME = "pbkdf2_sha256_upper"


def hash_confirmation_code(code: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", _normalise_code(code).encode(), salt, CODE_HASH_ITERATIONS)
    return f"{_CODE_SCHEME}${CODE_HASH_ITERATIONS}${salt.hex()}${digest.hex()}"


def check_confirmation_code(code: str, stored: str) -> bool:
    """Constant-time comparison of the PBKDF2 digests (the code itself is never compared)."""
    scheme, iterations, salt, expected = stored.split("$")
    typed = _normalise_code(code) if scheme == _CODE_SCHEME else code.strip()
    digest = hashlib.pbkdf2_hmac("sha256", typed.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


def register_work_unit(session: Session, name: str, confirmation_code: str) -> tuple[WorkUnit, str]:
    """Register a unit; returns it and the secret of its reviewer key (shown once).

    The code is refused unless it passes ``check_code_strength``; ``new_confirmation_code`` makes one.
    """
    name = name.strip()
    code = check_code_strength(confirmation_code)
    if session.scalar(select(WorkUnit.id).where(WorkUnit.name == name)) is not None:
        raise ApiError("work_unit_exists", 409, "a work unit with this name is registered", "该单位已注册")
    key, secret = create_api_key(session, f"work unit: {name}"[:200], [Scope.UNIT_REVIEWER])
    unit = WorkUnit(name=name, confirmation_code_hash=hash_confirmation_code(code), reviewer_key_id=key.id)
    session.add(unit)
    session.commit()
    return unit, secret


def search_work_units(session: Session, name: str, limit: int = 20) -> list[WorkUnit]:
    pattern = "%" + name.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = select(WorkUnit).where(WorkUnit.name.like(pattern, escape="\\")).order_by(WorkUnit.name).limit(limit)
    return list(session.scalars(query))


# what an empty search answers: 003 (三、(二) 如果单位暂不存在，请联系单位负责人进行机构注册)
NO_UNIT_HINT = "未找到该单位。如单位尚未注册，请单位负责人提交申请单位注册，管理员审核通过后即可绑定"
UNIT_REQUEST_PATH = "/v1/declarations/work-unit-requests"


def work_unit_search(session: Session, name: str) -> WorkUnitSearchOut:
    """The matching units, or none with a hint pointing to the self-registration request."""
    units = [WorkUnitOut(id=u.id, name=u.name) for u in search_work_units(session, name)]
    if units:
        return WorkUnitSearchOut(units=units)
    return WorkUnitSearchOut(units=[], hint_zh=NO_UNIT_HINT, register_request_path=UNIT_REQUEST_PATH)


# --- units asking to be registered --------------------------------------------------------------


def request_work_unit(
    session: Session,
    client: ApiKey,
    subject_id: str,
    name: str,
    contact_name: str,
    contact_phone: str,
    note: str | None,
) -> WorkUnitRequest:
    """Record a unit's request to be registered; 409 when it is registered or already asked for."""
    name = name.strip()
    if session.scalar(select(WorkUnit.id).where(WorkUnit.name == name)) is not None:
        raise ApiError(
            "work_unit_exists", 409, "a work unit with this name is registered", "该单位已注册，请直接搜索绑定"
        )
    pending = select(WorkUnitRequest.id).where(
        WorkUnitRequest.name == name, WorkUnitRequest.status == UnitRequestStatus.PENDING
    )
    if session.scalar(pending) is not None:
        raise ApiError(
            "work_unit_request_pending",
            409,
            "a request to register this unit is waiting for an administrator",
            "该单位的注册申请正在审核中，请耐心等待",
        )
    request = WorkUnitRequest(
        name=name,
        status=UnitRequestStatus.PENDING,
        client_key_id=client.id,
        subject_id=subject_id,
        contact_name=contact_name.strip(),
        contact_phone=contact_phone.strip(),
        note=(note or "").strip() or None,
    )
    session.add(request)
    session.commit()
    log.info("work_unit_requested", request_id=request.id, client_key_id=client.id)
    return request


def get_work_unit_request(session: Session, client: ApiKey, request_id: str) -> WorkUnitRequest:
    """The request as its client key sees it (another key's request is 404)."""
    request = session.get(WorkUnitRequest, request_id)
    if request is None or request.client_key_id != client.id:
        raise not_found("work unit request")
    return request


def list_work_unit_requests(session: Session, status: UnitRequestStatus | None) -> list[WorkUnitRequest]:
    query = select(WorkUnitRequest).order_by(WorkUnitRequest.created_at, WorkUnitRequest.id)
    if status is not None:
        query = query.where(WorkUnitRequest.status == status)
    return list(session.scalars(query.limit(500)))


def _pending_request(session: Session, request_id: str) -> WorkUnitRequest:
    request = session.get(WorkUnitRequest, request_id)
    if request is None:
        raise not_found("work unit request")
    if request.status is not UnitRequestStatus.PENDING:
        raise ApiError(
            "work_unit_request_decided",
            409,
            f"the request is already {request.status.value}",
            "该注册申请已处理",
            {"current_status": request.status.value},
        )
    return request


def approve_work_unit_request(
    session: Session, admin: ApiKey, request_id: str
) -> tuple[WorkUnitRequest, WorkUnit, str, str]:
    """Register the requested unit with a generated code.

    Returns the request, the unit, its reviewer key's secret and its confirmation code (both shown
    once, for the admin to hand to the unit's contact).
    """
    request = _pending_request(session, request_id)
    code = new_confirmation_code()
    unit, secret = register_work_unit(session, request.name, code)
    request.status = UnitRequestStatus.APPROVED
    request.work_unit_id = unit.id
    request.reviewed_at = utcnow()
    request.reviewed_by = f"admin:{admin.id}"
    session.commit()
    return request, unit, secret, code


def reject_work_unit_request(session: Session, admin: ApiKey, request_id: str, reason: str | None) -> WorkUnitRequest:
    if not (reason or "").strip():
        raise validation_failed([validation.field_error("reason", "required", "不通过原因")])
    request = _pending_request(session, request_id)
    request.status = UnitRequestStatus.REJECTED
    request.review_reason = reason.strip()
    request.reviewed_at = utcnow()
    request.reviewed_by = f"admin:{admin.id}"
    session.commit()
    return request


def get_binding(session: Session, client: ApiKey, subject_id: str) -> UnitBinding | None:
    return session.scalar(
        select(UnitBinding).where(UnitBinding.client_key_id == client.id, UnitBinding.subject_id == subject_id)
    )


# --- confirmation-code attempts -------------------------------------------------------------------


class CodeScope(StrEnum):
    SUBJECT = "subject"
    UNIT = "unit"
    CLIENT = "client"


def _code_counters(client: ApiKey, subject_id: str, work_unit_id: str) -> list[tuple[CodeScope, str]]:
    return [
        (CodeScope.SUBJECT, f"{client.id}:{subject_id}"),
        (CodeScope.UNIT, work_unit_id),
        (CodeScope.CLIENT, client.id),
    ]


def _code_limit(settings: Settings, scope: CodeScope) -> int:
    return {
        CodeScope.SUBJECT: settings.unit_code_max_failures_per_subject,
        CodeScope.UNIT: settings.unit_code_max_failures_per_unit,
        CodeScope.CLIENT: settings.unit_code_max_failures_per_client,
    }[scope]


def _locked_counters(session: Session, keys: list[tuple[CodeScope, str]]) -> list[UnitCodeCounter]:
    """The counters' rows, created when missing, locked until the commit.

    Rows are created and locked in one order (scope, key) for every request, so two requests never
    wait for each other in a cycle. On SQLite the insert takes the database's write lock instead.
    """
    now = utcnow()
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    for scope, key in sorted((str(scope), key) for scope, key in keys):
        session.execute(
            insert(UnitCodeCounter)
            .values(scope=scope, key=key, failures=0, lockouts=0, window_started_at=now)
            .on_conflict_do_nothing()
        )
    rows = session.scalars(
        select(UnitCodeCounter)
        .where(or_(*(and_(UnitCodeCounter.scope == str(s), UnitCodeCounter.key == k) for s, k in keys)))
        .order_by(UnitCodeCounter.scope, UnitCodeCounter.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return sorted(rows, key=lambda row: [str(s) for s, _ in keys].index(row.scope))


def _code_locked(settings: Settings, scope: CodeScope, seconds: int) -> ApiError:
    seconds = max(1, seconds)
    minutes = -(-seconds // 60)
    error = ApiError(
        "too_many_bind_attempts",
        429,
        f"too many wrong confirmation codes ({scope}); try again in {seconds} s",
        f"单位确认码错误次数过多，请{minutes}分钟后再试",
        {
            "scope": str(scope),
            "retry_after": seconds,
            "window_seconds": settings.unit_code_window_seconds,
            "max_failures": _code_limit(settings, scope),
        },
    )
    error.headers["Retry-After"] = str(seconds)
    return error


def _reserve_code_attempt(session: Session, settings: Settings, keys: list[tuple[CodeScope, str]]) -> int:
    """Count this attempt as a failure in advance, or refuse it when a counter is locked or spent.

    Counting before the (slow) hash is checked, under the rows' lock, makes the budget exact even
    when many API processes take guesses at once. Returns the attempts left before a lockout.
    """
    now = utcnow()
    window = timedelta(seconds=settings.unit_code_window_seconds)
    rows = _locked_counters(session, keys)
    refusal: tuple[int, CodeScope] | None = None
    for row in rows:
        scope = CodeScope(row.scope)
        if row.last_failure_at is not None and now - row.last_failure_at > UNIT_CODE_FORGET_AFTER:
            row.lockouts = 0
        if now - row.window_started_at >= window:
            row.failures, row.window_started_at = 0, now
        if row.locked_until is not None and row.locked_until > now:
            wait = (row.locked_until - now).total_seconds()
        elif row.failures >= _code_limit(settings, scope):  # spent by attempts still being checked
            wait = (row.window_started_at + window - now).total_seconds()
        else:
            continue
        if refusal is None or wait > refusal[0]:
            refusal = (int(wait + 0.999), scope)
    if refusal is not None:
        session.commit()
        raise _code_locked(settings, refusal[1], refusal[0])
    for row in rows:
        row.failures += 1
        row.last_failure_at = now
    left = min(_code_limit(settings, CodeScope(row.scope)) - row.failures for row in rows)
    session.commit()
    return left


def _settle_code_attempt(session: Session, settings: Settings, keys: list[tuple[CodeScope, str]], ok: bool) -> None:
    """Take back the reserved failure when the code was right; lock the spent counters when it was not.

    A right code takes back only its own reservation: it never resets a counter. The unit's and the
    client key's counters hold other callers' failures (possibly a guesser's), and even a subject's
    could be reset by a guesser who knows another unit's code and binds to it between guesses. So
    failures fade only with the window, and an applicant who mistyped then succeeded keeps those
    few failures for at most one window, which costs nobody a binding.
    """
    now = utcnow()
    rows = _locked_counters(session, keys)
    for row in rows:
        if ok:
            row.failures = max(0, row.failures - 1)
        elif row.failures >= _code_limit(settings, CodeScope(row.scope)):
            seconds = min(
                settings.unit_code_lockout_seconds * 2 ** min(row.lockouts, 30), settings.unit_code_lockout_max_seconds
            )
            row.lockouts += 1
            row.locked_until = now + timedelta(seconds=seconds)
            row.failures, row.window_started_at = 0, row.locked_until
            log.warning("unit_code_locked", scope=row.scope, lockouts=row.lockouts, seconds=seconds)
    if not ok:
        session.execute(
            delete(UnitCodeCounter).where(
                UnitCodeCounter.last_failure_at < now - UNIT_CODE_FORGET_AFTER,
                or_(UnitCodeCounter.locked_until.is_(None), UnitCodeCounter.locked_until < now),
            )
        )
    session.commit()


def bind_work_unit(
    session: Session,
    client: ApiKey,
    subject_id: str,
    work_unit_id: str,
    code: str,
    settings: Settings | None = None,
) -> UnitBinding:
    """Bind the subject to a unit after checking the unit's code; rebinding replaces the binding.

    Wrong codes count per subject, per unit and per client key (settings ``unit_code_*``): guessing
    one unit's code under ever new subject ids, or many units' codes with one key, ends in a 429
    ``too_many_bind_attempts`` with Retry-After, whose lockout doubles each time it recurs.
    """
    settings = settings or get_settings()
    unit = session.get(WorkUnit, work_unit_id)
    if unit is None:
        raise ApiError("work_unit_not_found", 404, "no such work unit", "未找到该单位，请确认单位已注册")
    keys = _code_counters(client, subject_id, unit.id)
    left = _reserve_code_attempt(session, settings, keys)
    ok = check_confirmation_code(code, unit.confirmation_code_hash)
    _settle_code_attempt(session, settings, keys, ok)
    if not ok:
        log.info("unit_code_wrong", work_unit_id=unit.id, client_key_id=client.id)
        raise ApiError(
            "wrong_confirmation_code",
            422,
            "the confirmation code is wrong",
            "单位确认码错误，请向申报单位核实",
            {
                "errors": [
                    {
                        "field": "confirmation_code",
                        "code": "wrong_confirmation_code",
                        "message_zh": "单位确认码错误，请向申报单位核实",
                    }
                ],
                "remaining_attempts": max(left, 0),
            },
        )
    binding = get_binding(session, client, subject_id)
    if binding is None:
        binding = UnitBinding(client_key_id=client.id, subject_id=subject_id, work_unit_id=unit.id)
        session.add(binding)
    binding.work_unit_id = unit.id
    binding.work_unit = unit
    binding.bound_at = utcnow()
    session.commit()
    return binding


def unbind_work_unit(session: Session, client: ApiKey, subject_id: str) -> None:
    session.execute(
        delete(UnitBinding).where(UnitBinding.client_key_id == client.id, UnitBinding.subject_id == subject_id)
    )
    session.commit()


# --- exam projects -------------------------------------------------------------------------------

# windows are announced, and shown to applicants, in Beijing time
BEIJING = ZoneInfo("Asia/Shanghai")
# the title of a project seeded for the current year (OCR_DECLARATION_DEFAULT_PROJECTS)
DEFAULT_PROJECT_TITLES: dict[DeclarationKind, str] = {
    DeclarationKind.TCM_EXPERTISE: "{year}年湖北省中医医术确有专长人员医师资格考核",
    DeclarationKind.PHYSICIAN_PROBATION: "{year}年湖北考区医师资格考试试用期考核",
}


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _beijing(moment: datetime) -> str:
    return _aware(moment).astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")


def window_zh(project: ExamProject) -> str:
    """The window as applicants read it: "2026年03月01日 08:00至2026年03月31日 17:00（北京时间）"."""
    return f"{_beijing(project.opens_at)}至{_beijing(project.closes_at)}（北京时间）"


def is_open(project: ExamProject, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return _aware(project.opens_at) <= now < _aware(project.closes_at)


def _window_refusal(project: ExamProject, now: datetime) -> ApiError:
    before = now < _aware(project.opens_at)
    state_zh = "尚未开始" if before else "已结束"
    return ApiError(
        "declaration_window_not_open" if before else "declaration_window_closed",
        409,
        f"declarations to {project.code} are accepted from {project.opens_at.isoformat()} "
        f"until {project.closes_at.isoformat()}",
        f"“{project.title}”申报时间为{window_zh(project)}，申报{state_zh}",
        {
            "project_code": project.code,
            "opens_at": _aware(project.opens_at).isoformat(),
            "closes_at": _aware(project.closes_at).isoformat(),
        },
    )


def _project_field_error(field: str, code: str, message_zh: str) -> ApiError:
    return validation_failed([validation.FieldError(field, code, message_zh)])


def create_project(
    session: Session,
    code: str,
    kind: DeclarationKind,
    year: int,
    title: str,
    opens_at: datetime,
    closes_at: datetime,
) -> ExamProject:
    """A new exam project (admin API); 409 when the code is taken, 422 when the window is empty."""
    if opens_at.tzinfo is None or closes_at.tzinfo is None:
        raise _project_field_error("opens_at", "timezone_required", "申报开始、截止时间须带时区")
    if closes_at <= opens_at:
        raise _project_field_error("closes_at", "window_empty", "申报截止时间须晚于开始时间")
    if session.scalar(select(ExamProject.id).where(ExamProject.code == code)) is not None:
        raise ApiError("project_exists", 409, "a project with this code exists", "该项目编号已存在")
    project = ExamProject(code=code, kind=kind, year=year, title=title.strip(), opens_at=opens_at, closes_at=closes_at)
    session.add(project)
    session.commit()
    return project


def get_project(session: Session, code: str) -> ExamProject:
    project = session.scalar(select(ExamProject).where(ExamProject.code == code))
    if project is None:
        raise ApiError("project_not_found", 404, "no exam project has this code", "未找到该申报项目")
    return project


def update_project(
    session: Session,
    code: str,
    title: str | None = None,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
) -> ExamProject:
    """Change a project's title or window (e.g. extend the deadline); kind, year and code stay."""
    project = get_project(session, code)
    opens_at = opens_at or _aware(project.opens_at)
    closes_at = closes_at or _aware(project.closes_at)
    if opens_at.tzinfo is None or closes_at.tzinfo is None:
        raise _project_field_error("opens_at", "timezone_required", "申报开始、截止时间须带时区")
    if closes_at <= opens_at:
        raise _project_field_error("closes_at", "window_empty", "申报截止时间须晚于开始时间")
    project.opens_at, project.closes_at = opens_at, closes_at
    if title is not None:
        project.title = title.strip()
    session.commit()
    return project


def list_projects(session: Session, kind: DeclarationKind | None = None) -> list[ExamProject]:
    query = select(ExamProject).order_by(ExamProject.year.desc(), ExamProject.opens_at.desc(), ExamProject.code)
    if kind is not None:
        query = query.where(ExamProject.kind == kind)
    return list(session.scalars(query))


def seed_default_project(session: Session, kind: DeclarationKind, now: datetime | None = None) -> ExamProject:
    """The project of ``kind`` for the current (Beijing) year, open the whole year, created if missing."""
    year = (now or utcnow()).astimezone(BEIJING).year
    code = f"{kind.value}-{year}"
    existing = session.scalar(select(ExamProject).where(ExamProject.code == code))
    if existing is not None:
        return existing
    project = ExamProject(
        code=code,
        kind=kind,
        year=year,
        title=DEFAULT_PROJECT_TITLES[kind].format(year=year),
        opens_at=datetime(year, 1, 1, tzinfo=BEIJING).astimezone(UTC),
        closes_at=datetime(year + 1, 1, 1, tzinfo=BEIJING).astimezone(UTC),
    )
    session.add(project)
    session.flush()
    return project


def resolve_project(
    session: Session, kind: DeclarationKind, project_code: str | None, settings: Settings
) -> ExamProject:
    """The project a new declaration belongs to: the one named, else the one of ``kind`` open now.

    With none open, the current year's default project is seeded when
    ``OCR_DECLARATION_DEFAULT_PROJECTS`` is on (so a deployment without projects keeps working);
    otherwise 409 naming the latest project's window.
    """
    now = utcnow()
    if project_code is not None:
        project = get_project(session, project_code)
        if project.kind is not kind:
            raise _project_field_error("project_code", "project_kind_mismatch", "所选项目与申报类别不一致")
        return project
    projects = list_projects(session, kind)
    open_now = [p for p in projects if is_open(p, now)]
    if len(open_now) == 1:
        return open_now[0]
    if len(open_now) > 1:
        codes = "、".join(p.code for p in open_now)
        raise _project_field_error("project_code", "project_required", f"有多个项目正在申报，请选择项目（{codes}）")
    if settings.declaration_default_projects and not any(p.year == now.astimezone(BEIJING).year for p in projects):
        return seed_default_project(session, kind, now)
    if projects:
        raise _window_refusal(projects[0], now)
    raise ApiError("no_open_project", 409, "no exam project of this kind is open", "当前没有开放申报的项目")


def project_view(project: ExamProject) -> ProjectOut:
    return ProjectOut(
        code=project.code,
        kind=project.kind,
        year=project.year,
        title=project.title,
        opens_at=project.opens_at,
        closes_at=project.closes_at,
        window_zh=window_zh(project),
        open_now=is_open(project),
    )


# --- declarations -------------------------------------------------------------------------------

# Who may declare without a verified identity (003, 其他身份人员: 部队考生、港澳台考生 ... 直接进入省网
# 界面进行试用期填报), and with which documents. A document type the verification module does not
# (yet) define is simply absent.
UNVERIFIED_DOCUMENTS: dict[ApplicantCategory, frozenset[DocumentType]] = {
    ApplicantCategory.MILITARY: frozenset({DocumentType.MILITARY}),
    ApplicantCategory.HK_MACAU_TAIWAN: frozenset(
        DocumentType(value)
        for value in ("hk_macau_permit", "taiwan_permit", "hmt_residence_permit")
        if value in DocumentType._value2member_map_
    ),
}
APPLICANT_CATEGORY_LABELS: dict[ApplicantCategory, str] = {
    ApplicantCategory.MILITARY: "部队考生",
    ApplicantCategory.HK_MACAU_TAIWAN: "港澳台考生",
}
_DOCUMENT_NUMBER = re.compile(r"[\w()（）\-]{4,32}")


def _unverified_applicant_errors(
    kind: DeclarationKind, category: ApplicantCategory, applicant: UnverifiedApplicantIn | None
) -> list[validation.FieldError]:
    label = APPLICANT_CATEGORY_LABELS[category]
    if kind is not DeclarationKind.PHYSICIAN_PROBATION:
        return [
            validation.FieldError(
                "applicant_category",
                "category_not_for_kind",
                f"{label}未经实名认证直接申报仅适用于医师资格考试试用期申报，请先完成实名认证",
            )
        ]
    if applicant is None:
        return [validation.FieldError("applicant", "required", f"{label}请填写姓名、证件类型和证件号码")]
    errors = []
    if applicant.document_type not in UNVERIFIED_DOCUMENTS[category]:
        errors.append(
            validation.FieldError("applicant.document_type", "document_not_for_category", f"{label}所选证件类型不符")
        )
    if not _DOCUMENT_NUMBER.fullmatch(applicant.document_number.strip()):
        errors.append(validation.FieldError("applicant.document_number", "invalid_format", "证件号码格式不正确"))
    return errors


def _new_declaration_number(kind: DeclarationKind) -> str:
    prefix = "ZC" if kind is DeclarationKind.TCM_EXPERTISE else "SY"
    return f"{prefix}{utcnow():%Y%m%d}{secrets.randbelow(10**8):08d}"


def _existing_declaration(session: Session, client: ApiKey, subject_id: str, project: ExamProject) -> ApiError | None:
    existing = session.scalar(
        select(Declaration).where(
            Declaration.client_key_id == client.id,
            Declaration.subject_id == subject_id,
            Declaration.project_id == project.id,
        )
    )
    if existing is None:
        return None
    return ApiError(
        "declaration_exists",
        409,
        "the subject already has a declaration for this project",
        f"您已有“{project.title}”的申报（申报号{existing.number}），每个项目只能申报一次，请在原申报中修改",
        {"declaration_id": existing.id, "number": existing.number, "project_code": project.code},
    )


def create_declaration(
    session: Session,
    client: ApiKey,
    subject_id: str,
    kind: DeclarationKind,
    *,
    project_code: str | None = None,
    applicant_category: ApplicantCategory | None = None,
    applicant: UnverifiedApplicantIn | None = None,
    settings: Settings | None = None,
) -> Declaration:
    """A draft of one project for a subject, pre-filled from the subject's verified identity.

    One declaration per subject and project (409 ``declaration_exists``); none once the project's
    window has closed. Military and HK/Macau/Taiwan applicants (``applicant_category``) without a
    verified identity may declare for probation with the identity they type (``applicant``): the
    declaration is marked ``identity_review = pending`` for the unit or an admin to check.
    """
    settings = settings or get_settings()
    identity = session.scalar(
        select(VerifiedIdentity).where(
            VerifiedIdentity.client_key_id == client.id, VerifiedIdentity.subject_id == subject_id
        )
    )
    if identity is None and applicant_category is None:
        raise ApiError(
            "identity_not_verified",
            409,
            "the subject has no verified identity; complete real-name verification first "
            "(military and HK/Macau/Taiwan applicants may give applicant_category and applicant instead)",
            "请先完成实名认证（部队考生、港澳台考生可选择考生类别后直接申报）",
        )
    if identity is None:
        assert applicant_category is not None
        errors = _unverified_applicant_errors(kind, applicant_category, applicant)
        if errors:
            raise validation_failed(errors)
    project = resolve_project(session, kind, project_code, settings)
    now = utcnow()
    if now >= _aware(project.closes_at):
        session.rollback()
        raise _window_refusal(project, now)
    refusal = _existing_declaration(session, client, subject_id, project)
    if refusal is not None:
        session.rollback()
        raise refusal
    cipher = get_cipher()
    declaration = Declaration(
        number=_new_declaration_number(kind),
        kind=kind,
        status=S.DRAFT,
        client_key_id=client.id,
        subject_id=subject_id,
        project_id=project.id,
        applicant_category=applicant_category,
    )
    declaration.project = project
    if identity is not None:
        declaration.identity_id = identity.id
        declaration.verification_id = identity.verification_id
        declaration.applicant_name = identity.name
        declaration.applicant_sex = identity.sex
        declaration.applicant_ethnicity = identity.ethnicity
        declaration.document_type = identity.document_type
        declaration.flagged = identity.flagged
        declaration.flag_reason = identity.flag_reason if identity.flagged else None
        number = identity_number(identity)
    else:
        assert applicant is not None and applicant_category is not None
        declaration.applicant_name = applicant.name.strip()
        declaration.applicant_sex = applicant.sex
        declaration.applicant_ethnicity = applicant.ethnicity
        declaration.document_type = applicant.document_type
        declaration.flagged = False
        declaration.identity_review = IdentityReview.PENDING
        number = applicant.document_number.strip().upper()
    declaration.number_enc = cipher.encrypt_text(number, _number_aad(declaration.id))
    session.add(declaration)
    declaration.events.append(
        DeclarationEvent(
            declaration_id=declaration.id,
            from_status=None,
            to_status=S.DRAFT,
            action=Action.CREATE,
            actor=_actor(client),
        )
    )
    try:
        session.commit()
    except IntegrityError:  # a concurrent request created the subject's declaration of this project
        session.rollback()
        refusal = _existing_declaration(session, client, subject_id, project)
        if refusal is None:
            raise
        raise refusal from None
    return declaration


def get_declaration(session: Session, client: ApiKey, declaration_id: str) -> Declaration:
    declaration = session.get(Declaration, declaration_id)
    if declaration is None or declaration.client_key_id != client.id:
        raise not_found("declaration")
    return declaration


def list_declarations(session: Session, client: ApiKey, subject_id: str) -> list[Declaration]:
    query = (
        select(Declaration)
        .where(Declaration.client_key_id == client.id, Declaration.subject_id == subject_id)
        .order_by(Declaration.created_at)
    )
    return list(session.scalars(query))


def _require_editable(declaration: Declaration) -> None:
    if declaration.status not in EDITABLE:
        raise ApiError(
            "declaration_not_editable",
            409,
            f"a declaration that is {declaration.status.value} cannot be changed",
            "当前申报状态不允许修改",
            {"current_status": declaration.status.value},
        )


def form_errors(declaration: Declaration, raw: dict[str, Any]) -> tuple[TcmForm | ProbationForm | None, list]:
    attachment_ids = {attachment.id for attachment in declaration.attachments}
    if declaration.kind is DeclarationKind.TCM_EXPERTISE:
        form, errors = validation.parse_form(TcmForm, raw)
        return form, errors or validation.tcm_form_errors(form, attachment_ids)
    form, errors = validation.parse_form(ProbationForm, raw)
    return form, errors or validation.probation_form_errors(form, attachment_ids)


def save_form(session: Session, client: ApiKey, declaration_id: str, raw: dict[str, Any]) -> Declaration:
    """Replace the form (a draft may be incomplete; malformed fields are refused with 422)."""
    declaration = get_declaration(session, client, declaration_id)
    _require_editable(declaration)
    form, errors = form_errors(declaration, raw)
    if errors:
        raise validation_failed(errors)
    _write_form(declaration, form.model_dump(mode="json"))
    declaration.confirmed_at = None  # a changed form must be confirmed again
    declaration.updated_at = utcnow()
    session.commit()
    return declaration


def completeness_errors(session: Session, declaration: Declaration) -> list[validation.FieldError]:
    form = _parsed(declaration)
    if isinstance(form, TcmForm):
        return validation.tcm_completeness_errors(form, applicant_number=applicant_number(declaration))
    unit_name = declaration.work_unit.name if declaration.work_unit is not None else None
    return validation.probation_completeness_errors(form, declaration.document_type, unit_name)


def _snapshot_bound_unit(session: Session, declaration: Declaration, client: ApiKey) -> None:
    if declaration.kind is DeclarationKind.PHYSICIAN_PROBATION:
        binding = get_binding(session, client, declaration.subject_id)
        declaration.work_unit_id = binding.work_unit_id if binding else None
        declaration.work_unit = binding.work_unit if binding else None


def acknowledge_instructions(session: Session, client: ApiKey, declaration_id: str, version: str) -> Declaration:
    """Record that the applicant read the 申报须知 of ``version`` (the text they were shown), with the time.

    409 ``instructions_version_changed`` when the text changed since: read it again. Acknowledging
    again replaces the time and version. Not a transition, so not in the event history.
    """
    from ocr_service.declaration import instructions

    declaration = get_declaration(session, client, declaration_id)
    current = instructions.version(declaration.kind)
    if version.strip() != current:
        raise ApiError(
            "instructions_version_changed",
            409,
            "the instructions changed; read the current version and acknowledge it",
            "申报须知已更新，请重新阅读后确认",
            {"current_version": current},
        )
    declaration.instructions_acknowledged_at = utcnow()
    declaration.instructions_version = current
    log.info("instructions_acknowledged", declaration_id=declaration.id, version=current)
    declaration.updated_at = utcnow()
    session.commit()
    return declaration


def _require_acknowledged(declaration: Declaration) -> None:
    if declaration.instructions_acknowledged_at is None:
        raise ApiError(
            "instructions_not_acknowledged",
            409,
            "acknowledge the instructions (POST .../acknowledge-instructions) before confirming or submitting",
            "请先阅读并确认申报须知",
        )


def confirm(session: Session, client: ApiKey, declaration_id: str) -> Declaration:
    """The confirm screen: everything a submission needs is checked and the declaration marked confirmed."""
    declaration = get_declaration(session, client, declaration_id)
    _require_editable(declaration)
    _require_acknowledged(declaration)
    _snapshot_bound_unit(session, declaration, client)
    errors = completeness_errors(session, declaration)
    if errors:
        session.rollback()
        raise validation_failed(errors)
    declaration.confirmed_at = utcnow()
    session.commit()
    return declaration


def submit(session: Session, client: ApiKey, declaration_id: str) -> Declaration:
    declaration = get_declaration(session, client, declaration_id)
    if declaration.status not in TRANSITIONS[Action.SUBMIT][0]:
        raise illegal_transition(declaration, Action.SUBMIT)
    now = utcnow()
    if declaration.project is not None and not is_open(declaration.project, now):
        raise _window_refusal(declaration.project, now)
    _require_acknowledged(declaration)
    if declaration.kind is DeclarationKind.PHYSICIAN_PROBATION and declaration.confirmed_at is None:
        raise ApiError("not_confirmed", 409, "confirm the declaration before submitting", "请先确认申报信息再提交")
    _snapshot_bound_unit(session, declaration, client)
    errors = completeness_errors(session, declaration)
    if errors:
        session.rollback()
        raise validation_failed(errors)
    transition(session, declaration, Action.SUBMIT, _actor(client))
    declaration.submitted_at = utcnow()
    if declaration.verify_code is None:
        declaration.verify_code = secrets.token_hex(8).upper()
    session.commit()
    return declaration


def withdraw(session: Session, client: ApiKey, declaration_id: str) -> Declaration:
    declaration = get_declaration(session, client, declaration_id)
    transition(session, declaration, Action.WITHDRAW, _actor(client))
    declaration.confirmed_at = None
    session.commit()
    return declaration


# --- attachments --------------------------------------------------------------------------------


def _attachment_error(code: str, status: int, message: str, message_zh: str, **details: Any) -> ApiError:
    errors = [{"field": "file", "code": code, "message_zh": message_zh}]
    return ApiError(code, status, message, message_zh, {"errors": errors, **details})


def sniff_attachment(data: bytes, settings: Settings) -> str:
    """The content type of an acceptable attachment, judged by its bytes (never by name or header)."""
    if not data:
        raise _attachment_error("empty_attachment", 422, "the file is empty", "文件为空，请重新上传")
    if len(data) > settings.declaration_max_attachment_bytes:
        raise _attachment_error(
            "attachment_too_large",
            413,
            "the file exceeds the size limit",
            f"文件过大，请上传{settings.declaration_max_attachment_bytes // (1024 * 1024)}MB以内的文件",
            max_bytes=settings.declaration_max_attachment_bytes,
        )
    content_type = next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)
    if content_type is None:
        raise _attachment_error(
            "unsupported_attachment_type",
            415,
            "only PDF, JPEG and PNG files are accepted",
            "仅支持PDF、JPG、PNG格式的文件",
        )
    if content_type == "application/pdf":
        if b"%%EOF" not in data[-1024:]:
            raise _attachment_error("damaged_attachment", 422, "the PDF is incomplete", "文件已损坏，请重新上传")
    else:
        try:
            decode_image(data, settings.decode_limits())
        except ImageDecodeError:
            raise _attachment_error(
                "damaged_attachment", 422, "the image cannot be read", "文件已损坏，请重新上传"
            ) from None
    return content_type


_SAFE_NAME = re.compile(r"[^\w.\-()\u4e00-\u9fff]+")


def add_attachment(
    session: Session,
    client: ApiKey,
    declaration_id: str,
    data: bytes,
    filename: str | None,
    settings: Settings,
    store: BlobStore,
) -> DeclarationAttachment:
    declaration = get_declaration(session, client, declaration_id)
    _require_editable(declaration)
    content_type = sniff_attachment(data, settings)
    stem = _SAFE_NAME.sub("_", (filename or "").rsplit("/", 1)[-1]).strip("._")[:80] or "attachment"
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    blob_id = store.put(data, _attachment_aad(declaration.id))
    attachment = DeclarationAttachment(
        declaration_id=declaration.id,
        blob_id=blob_id,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=stem + _EXTENSIONS[content_type],
    )
    declaration.attachments.append(attachment)
    session.commit()
    return attachment


def read_attachment(
    declaration: Declaration, attachment_id: str, store: BlobStore
) -> tuple[DeclarationAttachment, bytes]:
    attachment = next((a for a in declaration.attachments if a.id == attachment_id), None)
    if attachment is None:
        raise not_found("attachment")
    return attachment, store.get(attachment.blob_id, _attachment_aad(declaration.id))


# --- review -------------------------------------------------------------------------------------


def reviewer_can_see(session: Session, key: ApiKey, declaration: Declaration) -> bool:
    """Admin keys review everything; a unit's reviewer key reviews the declarations naming its unit."""
    if key.has_scope(Scope.ADMIN):
        return True
    return declaration.work_unit is not None and declaration.work_unit.reviewer_key_id == key.id


def get_for_review(session: Session, key: ApiKey, declaration_id: str) -> Declaration:
    declaration = session.get(Declaration, declaration_id)
    if declaration is None or not reviewer_can_see(session, key, declaration):
        raise not_found("declaration")
    return declaration


def list_for_review(session: Session, key: ApiKey, status: DeclarationStatus | None) -> list[Declaration]:
    query = select(Declaration).order_by(Declaration.submitted_at, Declaration.id)
    if status is not None:
        query = query.where(Declaration.status == status)
    if not key.has_scope(Scope.ADMIN):
        query = query.join(WorkUnit, Declaration.work_unit_id == WorkUnit.id).where(WorkUnit.reviewer_key_id == key.id)
    return list(session.scalars(query.limit(500)))


def _reviewer_actor(key: ApiKey, declaration: Declaration) -> str:
    if key.has_scope(Scope.ADMIN):
        return f"admin:{key.id}"
    return f"unit:{declaration.work_unit_id}"


def review_action(
    session: Session, key: ApiKey, declaration_id: str, action: Action, reason: str | None = None
) -> Declaration:
    if action not in (Action.START_REVIEW, Action.APPROVE, Action.RETURN, Action.ALLOW_MODIFICATION):
        raise ValueError(f"{action} is not a reviewer action")
    declaration = get_for_review(session, key, declaration_id)
    if action is Action.RETURN and not (reason or "").strip():
        raise validation_failed([validation.field_error("reason", "required", "退回原因")])
    if action is Action.APPROVE and declaration.identity_review is IdentityReview.PENDING:
        raise ApiError(
            "identity_review_pending",
            409,
            "the applicant declared without a verified identity: confirm the identity first",
            "该考生未经实名认证直接申报，请先核验其身份证件并确认身份",
            {"applicant_category": declaration.applicant_category},
        )
    transition(session, declaration, action, _reviewer_actor(key, declaration), reason)
    session.commit()
    return declaration


def confirm_identity(session: Session, key: ApiKey, declaration_id: str, reason: str | None = None) -> Declaration:
    """The unit (or an admin) checked the documents of an applicant declared without a verified identity."""
    declaration = get_for_review(session, key, declaration_id)
    if declaration.identity_review is not IdentityReview.PENDING:
        raise ApiError(
            "no_identity_review",
            409,
            "this declaration has no identity awaiting review",
            "该申报无需核验身份，或身份已核验",
            {"identity_review": declaration.identity_review},
        )
    actor = _reviewer_actor(key, declaration)
    declaration.identity_review = IdentityReview.CONFIRMED
    declaration.identity_reviewed_by = actor
    declaration.identity_reviewed_at = utcnow()
    declaration.events.append(
        DeclarationEvent(
            declaration_id=declaration.id,
            from_status=declaration.status,
            to_status=declaration.status,
            action="confirm_identity",
            reason=reason,
            actor=actor,
        )
    )
    declaration.updated_at = utcnow()
    session.commit()
    return declaration


def flag_declarations_for_identity(session: Session, subject_id: str, client_key_id: str, reason: str) -> int:
    """Flag the subject's open declarations (its verified identity was flagged or revoked).

    Called by re-verification and by reviewers inside their own transaction: flushes, does not
    commit. Returns how many declarations were flagged. The unit reviewer's view shows the reason.
    """
    declarations = session.scalars(
        select(Declaration).where(
            Declaration.client_key_id == client_key_id,
            Declaration.subject_id == subject_id,
            Declaration.status.in_(OPEN),
        )
    ).all()
    for declaration in declarations:
        declaration.flagged = True
        declaration.flag_reason = reason
        declaration.updated_at = utcnow()
    session.flush()
    return len(declarations)


# --- the notice ----------------------------------------------------------------------------------

NOTICE_STATUSES = frozenset({S.SUBMITTED, S.UNDER_REVIEW, S.APPROVED})


def region_name(declaration: Declaration) -> str | None:
    code = read_form(declaration).get("region_code")
    return divisions.place_name(code) if code else None


def approved_at(declaration: Declaration) -> datetime | None:
    """When the declaration was last approved (its latest transition to ``approved``)."""
    times = [event.at for event in declaration.events if event.to_status is S.APPROVED]
    return times[-1] if times else None


def notice_pdf(
    session: Session, client: ApiKey, declaration_id: str, public_base_url: str
) -> tuple[Declaration, bytes]:
    """The printed notice: 申报回执 while submitted or in review, 报名成功通知单 once approved."""
    from ocr_service.declaration.notice import notice_content, render_notice

    declaration = get_declaration(session, client, declaration_id)
    if declaration.status not in NOTICE_STATUSES or declaration.verify_code is None:
        raise ApiError(
            "notice_not_available",
            409,
            "the notice exists once the declaration is submitted",
            "提交申报后方可打印申报回执，审核通过后方可打印报名成功通知单",
            {"current_status": declaration.status.value},
        )
    content = notice_content(
        declaration,
        read_form(declaration),
        id_number_masked=mask_document_number(applicant_number(declaration)),
        region_name=region_name(declaration),
        public_base_url=public_base_url,
        approved_at=approved_at(declaration),
        printed_at=utcnow(),
    )
    return declaration, render_notice(content)


def check_notice(session: Session, code: str) -> NoticeCheckOut:
    from ocr_service.declaration.notice import STATUS_LABELS

    declaration = session.scalar(select(Declaration).where(Declaration.verify_code == code.strip().upper()))
    if declaration is None:
        raise ApiError("unknown_verify_code", 404, "no declaration has this verification code", "验证码无效")
    return NoticeCheckOut(
        valid=declaration.status in NOTICE_STATUSES,
        number=declaration.number,
        kind=declaration.kind,
        status=declaration.status,
        status_label=STATUS_LABELS[declaration.status],
        applicant_name=declaration.applicant_name,
        id_number_masked=mask_document_number(applicant_number(declaration)),
        region_name=region_name(declaration),
        submitted_at=declaration.submitted_at,
        approved_at=approved_at(declaration),
    )


# --- views --------------------------------------------------------------------------------------


def required_uploads(declaration: Declaration) -> list[RequiredUploadOut]:
    """The uploads this declaration needs given its form so far (the data in ``requirements``)."""
    form = _parsed(declaration)
    out: list[RequiredUploadOut] = []
    if isinstance(form, TcmForm):
        if form.candidate_type is not None:
            for material in TCM_CANDIDATES[form.candidate_type].materials:
                out.append(
                    RequiredUploadOut(
                        slot=f"materials.{material.slot}",
                        label_zh=material.label_zh,
                        provided=bool(form.materials.get(material.slot)),
                    )
                )
        for i, teacher in enumerate(form.teachers):
            for document in TEACHER_DOCUMENTS:
                out.append(
                    RequiredUploadOut(
                        slot=f"teachers[{i}].documents.{document.slot}",
                        label_zh=f"{teacher.name}：{document.label_zh}",
                        provided=bool(teacher.documents.get(document.slot)),
                    )
                )
        return out
    values = form.model_dump()
    for rule in PROBATION_CONDITIONAL_UPLOADS:
        if rule.when.applies(values, declaration.document_type):
            out.append(
                RequiredUploadOut(
                    slot=f"uploads.{rule.upload.slot}",
                    label_zh=rule.upload.label_zh,
                    provided=bool(form.uploads.get(rule.upload.slot)),
                )
            )
    # supporting files (PROBATION_SUPPORTING_FILES) are optional, several allowed: never listed here
    return out


def _masked_form(declaration: Declaration) -> dict[str, Any]:
    form = read_form(declaration)
    for teacher in form.get("teachers", []):
        teacher["id_number"] = mask_document_number(teacher.get("id_number"))
    return form


def declaration_view(declaration: Declaration, *, for_reviewer: bool = False) -> DeclarationOut:
    values = {
        "id": declaration.id,
        "number": declaration.number,
        "kind": declaration.kind,
        "status": declaration.status,
        "subject_id": declaration.subject_id,
        "applicant": ApplicantOut(
            name=declaration.applicant_name,
            sex=declaration.applicant_sex,
            ethnicity=declaration.applicant_ethnicity,
            document_type=declaration.document_type,
            id_number_masked=mask_document_number(applicant_number(declaration)),
            verification_id=declaration.verification_id,
        ),
        "project": project_view(declaration.project) if declaration.project is not None else None,
        "applicant_category": declaration.applicant_category,
        "identity_review": declaration.identity_review,
        "form": _masked_form(declaration),
        "work_unit": WorkUnitOut(id=declaration.work_unit.id, name=declaration.work_unit.name)
        if declaration.work_unit
        else None,
        "editable": declaration.status in EDITABLE,
        "confirmed_at": declaration.confirmed_at,
        "submitted_at": declaration.submitted_at,
        "verify_code": declaration.verify_code,
        "instructions_acknowledged_at": declaration.instructions_acknowledged_at,
        "instructions_version": declaration.instructions_version,
        "events": [
            EventOut(
                from_status=e.from_status,
                to_status=e.to_status,
                action=e.action,
                reason=e.reason,
                actor=e.actor,
                at=e.at,
            )
            for e in declaration.events
        ],
        "attachments": [
            AttachmentOut(
                id=a.id,
                content_type=a.content_type,
                size_bytes=a.size_bytes,
                filename=a.filename,
                created_at=a.created_at,
            )
            for a in declaration.attachments
        ],
        "required_uploads": required_uploads(declaration),
    }
    if for_reviewer:
        return ReviewDeclarationOut(**values, flagged=declaration.flagged, flag_reason=declaration.flag_reason)
    return DeclarationOut(**values)
