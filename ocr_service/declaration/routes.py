"""HTTP routes of the declaration module: thin (parse, call ``service``, return a schema).

Applicant side (scope ``client``): work-unit search and binding, declarations, their form,
attachments, confirm/submit/withdraw and the notice. Review side: an ``admin`` key, or the
``unit_reviewer`` key a work unit was given when it was registered (its own unit's declarations
only; that scope opens nothing of the identity review queue).
Registering units needs ``admin``. Attachments are always served as downloads with
``nosniff``, never rendered inline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, File, Query, Request, Response, UploadFile, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ocr_service.auth import AdminKey, Scope, require_any_scope, require_scope
from ocr_service.db import SessionDep, utcnow
from ocr_service.declaration import instructions as declaration_instructions
from ocr_service.declaration import service
from ocr_service.declaration.models import DeclarationKind, DeclarationStatus, UnitRequestStatus, WorkUnitRequest
from ocr_service.declaration.notice import KIND_LABELS, beijing_time
from ocr_service.declaration.schemas import (
    AdminWorkUnitRequestOut,
    AttachmentOut,
    BindingOut,
    BindRequest,
    DeclarationCreate,
    DeclarationOut,
    InstructionsAck,
    InstructionsOut,
    NoticeCheckOut,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    ReasonIn,
    ReturnIn,
    ReviewDeclarationOut,
    WorkUnitCreate,
    WorkUnitCreated,
    WorkUnitOut,
    WorkUnitRequestApproved,
    WorkUnitRequestCreate,
    WorkUnitRequestOut,
    WorkUnitSearchOut,
)
from ocr_service.errors import ApiError, not_found
from ocr_service.page_security import page_headers
from ocr_service.ratelimit import enforce
from ocr_service.storage import BlobStore, get_blob_store
from ocr_service.verification.models import ApiKey
from ocr_service.verification.routes import Client, SettingsDep
from ocr_service.verification.schemas import ErrorOut

AnyKey = Annotated[ApiKey, Depends(require_scope())]
# An admin key, or a unit's reviewer key (service.reviewer_can_see then decides per declaration);
# every other key -- client, identity reviewer -- gets 403 before anything is looked up.
Reviewer = Annotated[ApiKey, Depends(require_any_scope(Scope.UNIT_REVIEWER, Scope.ADMIN))]


def _blob_store() -> BlobStore:
    return get_blob_store()


BlobStoreDep = Annotated[BlobStore, Depends(_blob_store)]


def _errors(*codes: int) -> dict[int | str, dict]:
    return {code: {"model": ErrorOut} for code in (401, 403, *codes)}


router = APIRouter(prefix="/v1/declarations", tags=["declarations"])


def _download(data: bytes, content_type: str, filename: str) -> Response:
    return Response(
        content=data,
        media_type=content_type,
        headers={
            "Content-Disposition": f"attachment; filename=\"download\"; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )


# --- routes with fixed first segments (before /{declaration_id}) ---------------------------------


@router.get(
    "/verify/{code}",
    response_model=NoticeCheckOut,
    summary="Check a printed notice's verification code",
    responses=_errors(404),
)
def verify_notice(code: str, key: AnyKey, session: SessionDep) -> NoticeCheckOut:
    return service.check_notice(session, code)


@router.post(
    "/admin/work-units",
    response_model=WorkUnitCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a work unit (its confirmation code, generated unless chosen, is stored hashed)",
    responses=_errors(409, 422),
)
def register_work_unit(body: WorkUnitCreate, admin: AdminKey, session: SessionDep) -> WorkUnitCreated:
    code = service.check_code_strength(body.confirmation_code or service.new_confirmation_code())
    unit, secret = service.register_work_unit(session, body.name, code)
    return WorkUnitCreated(id=unit.id, name=unit.name, reviewer_key=secret, confirmation_code=code)


@router.post(
    "/admin/projects",
    response_model=ProjectOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an exam project (kind, year, title, declaration window)",
    responses=_errors(409, 422),
)
def create_project(body: ProjectCreate, admin: AdminKey, session: SessionDep) -> ProjectOut:
    project = service.create_project(
        session, body.code, body.kind, body.year, body.title, body.opens_at, body.closes_at
    )
    return service.project_view(project)


@router.patch(
    "/admin/projects/{code}",
    response_model=ProjectOut,
    summary="Change a project's title or declaration window",
    responses=_errors(404, 422),
)
def update_project(code: str, body: ProjectUpdate, admin: AdminKey, session: SessionDep) -> ProjectOut:
    project = service.update_project(session, code, body.title, body.opens_at, body.closes_at)
    return service.project_view(project)


@router.get(
    "/projects", response_model=list[ProjectOut], summary="Exam projects, newest first (the applicant picks one)"
)
def list_projects(
    key: AnyKey, session: SessionDep, kind: Annotated[DeclarationKind | None, Query()] = None
) -> list[ProjectOut]:
    return [service.project_view(p) for p in service.list_projects(session, kind)]


@router.get(
    "/work-units",
    response_model=WorkUnitSearchOut,
    summary="Search work units by name (nothing found: a Chinese hint pointing to the registration request)",
)
def search_work_units(
    client: Client, session: SessionDep, name: Annotated[str, Query(min_length=1, max_length=200)]
) -> WorkUnitSearchOut:
    return service.work_unit_search(session, name)


# --- units asking to be registered ------------------------------------------------------------------


def _unit_request_view(request: WorkUnitRequest) -> WorkUnitRequestOut:
    return WorkUnitRequestOut(
        id=request.id,
        name=request.name,
        status=request.status,
        subject_id=request.subject_id,
        created_at=request.created_at,
        reviewed_at=request.reviewed_at,
        review_reason=request.review_reason,
        work_unit_id=request.work_unit_id,
    )


def _admin_unit_request_view(request: WorkUnitRequest) -> AdminWorkUnitRequestOut:
    return AdminWorkUnitRequestOut(
        **_unit_request_view(request).model_dump(exclude={"status_label"}),
        contact_name=request.contact_name,
        contact_phone=request.contact_phone,
        note=request.note,
    )


@router.post(
    "/work-unit-requests",
    response_model=WorkUnitRequestOut,
    status_code=status.HTTP_201_CREATED,
    summary="Ask for a unit not yet registered to be registered (an admin approves or rejects)",
    responses=_errors(409, 422),
)
def request_work_unit(body: WorkUnitRequestCreate, client: Client, session: SessionDep) -> WorkUnitRequestOut:
    request = service.request_work_unit(
        session, client, body.subject_id, body.name, body.contact_name, body.contact_phone, body.note
    )
    return _unit_request_view(request)


@router.get(
    "/work-unit-requests/{request_id}",
    response_model=WorkUnitRequestOut,
    summary="Where a registration request stands",
    responses=_errors(404),
)
def get_work_unit_request(request_id: str, client: Client, session: SessionDep) -> WorkUnitRequestOut:
    return _unit_request_view(service.get_work_unit_request(session, client, request_id))


@router.get(
    "/admin/work-unit-requests",
    response_model=list[AdminWorkUnitRequestOut],
    summary="Registration requests, oldest first (with the contact to call)",
)
def list_work_unit_requests(
    admin: AdminKey,
    session: SessionDep,
    status_filter: Annotated[UnitRequestStatus | None, Query(alias="status")] = None,
) -> list[AdminWorkUnitRequestOut]:
    return [_admin_unit_request_view(r) for r in service.list_work_unit_requests(session, status_filter)]


@router.post(
    "/admin/work-unit-requests/{request_id}/approve",
    response_model=WorkUnitRequestApproved,
    summary="Approve: the unit is registered with a generated confirmation code (shown once)",
    responses=_errors(404, 409),
)
def approve_work_unit_request(request_id: str, admin: AdminKey, session: SessionDep) -> WorkUnitRequestApproved:
    request, unit, secret, code = service.approve_work_unit_request(session, admin, request_id)
    return WorkUnitRequestApproved(
        request=_admin_unit_request_view(request),
        work_unit=WorkUnitCreated(id=unit.id, name=unit.name, reviewer_key=secret, confirmation_code=code),
    )


@router.post(
    "/admin/work-unit-requests/{request_id}/reject",
    response_model=AdminWorkUnitRequestOut,
    summary="Reject with a reason the requester sees",
    responses=_errors(404, 409, 422),
)
def reject_work_unit_request(
    request_id: str, admin: AdminKey, session: SessionDep, body: ReasonIn
) -> AdminWorkUnitRequestOut:
    return _admin_unit_request_view(service.reject_work_unit_request(session, admin, request_id, body.reason))


# --- 申报须知 ---------------------------------------------------------------------------------------


@router.get("/instructions", response_model=InstructionsOut, summary="申报须知: the text to read and acknowledge")
def get_instructions(client: Client, kind: Annotated[DeclarationKind, Query()]) -> InstructionsOut:
    return InstructionsOut(
        kind=kind,
        title=declaration_instructions.TITLE,
        version=declaration_instructions.version(kind),
        items=list(declaration_instructions.ITEMS[kind]),
    )


@router.put(
    "/work-unit-binding",
    response_model=BindingOut,
    summary="Bind (or rebind) the subject to a work unit",
    responses=_errors(404, 422, 429),
)
def bind_work_unit(body: BindRequest, client: Client, session: SessionDep, settings: SettingsDep) -> BindingOut:
    binding = service.bind_work_unit(
        session, client, body.subject_id, body.work_unit_id, body.confirmation_code, settings
    )
    return BindingOut(
        subject_id=binding.subject_id,
        work_unit=WorkUnitOut(id=binding.work_unit.id, name=binding.work_unit.name),
        bound_at=binding.bound_at,
    )


@router.get("/work-unit-binding", response_model=BindingOut, summary="The subject's bound unit", responses=_errors(404))
def get_binding(client: Client, session: SessionDep, subject_id: Annotated[str, Query(max_length=128)]) -> BindingOut:
    binding = service.get_binding(session, client, subject_id)
    if binding is None:
        raise not_found("work unit binding")
    return BindingOut(
        subject_id=binding.subject_id,
        work_unit=WorkUnitOut(id=binding.work_unit.id, name=binding.work_unit.name),
        bound_at=binding.bound_at,
    )


@router.delete("/work-unit-binding", status_code=status.HTTP_204_NO_CONTENT, summary="Unbind the subject's unit")
def unbind_work_unit(client: Client, session: SessionDep, subject_id: Annotated[str, Query(max_length=128)]) -> None:
    service.unbind_work_unit(session, client, subject_id)


# --- review ---------------------------------------------------------------------------------------


@router.get("/review", response_model=list[ReviewDeclarationOut], summary="Declarations for this reviewer")
def review_list(
    key: Reviewer, session: SessionDep, status_filter: Annotated[DeclarationStatus | None, Query(alias="status")] = None
) -> list[ReviewDeclarationOut]:
    return [
        service.declaration_view(d, for_reviewer=True) for d in service.list_for_review(session, key, status_filter)
    ]


@router.get(
    "/review/{declaration_id}",
    response_model=ReviewDeclarationOut,
    summary="One declaration as the reviewer sees it (with why it is flagged)",
    responses=_errors(404),
)
def review_get(declaration_id: str, key: Reviewer, session: SessionDep) -> ReviewDeclarationOut:
    return service.declaration_view(service.get_for_review(session, key, declaration_id), for_reviewer=True)


@router.get(
    "/review/{declaration_id}/attachments/{attachment_id}",
    response_class=Response,
    summary="Download an attachment (never inline)",
    responses=_errors(404),
)
def review_attachment(
    declaration_id: str, attachment_id: str, key: Reviewer, session: SessionDep, store: BlobStoreDep
) -> Response:
    declaration = service.get_for_review(session, key, declaration_id)
    attachment, data = service.read_attachment(declaration, attachment_id, store)
    return _download(data, attachment.content_type, attachment.filename)


@router.post("/review/{declaration_id}/start", response_model=ReviewDeclarationOut, responses=_errors(404, 409))
def review_start(declaration_id: str, key: Reviewer, session: SessionDep, body: ReasonIn) -> ReviewDeclarationOut:
    """Start reviewing a submitted declaration (the applicant can no longer withdraw it)."""
    declaration = service.review_action(session, key, declaration_id, service.Action.START_REVIEW, body.reason)
    return service.declaration_view(declaration, for_reviewer=True)


@router.post("/review/{declaration_id}/approve", response_model=ReviewDeclarationOut, responses=_errors(404, 409))
def review_approve(declaration_id: str, key: Reviewer, session: SessionDep, body: ReasonIn) -> ReviewDeclarationOut:
    """Approve: read-only for the applicant from now on."""
    declaration = service.review_action(session, key, declaration_id, service.Action.APPROVE, body.reason)
    return service.declaration_view(declaration, for_reviewer=True)


@router.post("/review/{declaration_id}/return", response_model=ReviewDeclarationOut, responses=_errors(404, 409, 422))
def review_return(declaration_id: str, key: Reviewer, session: SessionDep, body: ReturnIn) -> ReviewDeclarationOut:
    """Return to the applicant with a reason; they edit and resubmit."""
    declaration = service.review_action(session, key, declaration_id, service.Action.RETURN, body.reason)
    return service.declaration_view(declaration, for_reviewer=True)


@router.post(
    "/review/{declaration_id}/allow-modification", response_model=ReviewDeclarationOut, responses=_errors(404, 409)
)
def review_allow_modification(
    declaration_id: str, key: Reviewer, session: SessionDep, body: ReasonIn
) -> ReviewDeclarationOut:
    """Reopen an approved declaration so the applicant may edit and resubmit."""
    declaration = service.review_action(session, key, declaration_id, service.Action.ALLOW_MODIFICATION, body.reason)
    return service.declaration_view(declaration, for_reviewer=True)


@router.post(
    "/review/{declaration_id}/confirm-identity", response_model=ReviewDeclarationOut, responses=_errors(404, 409)
)
def review_confirm_identity(
    declaration_id: str, key: Reviewer, session: SessionDep, body: ReasonIn
) -> ReviewDeclarationOut:
    """Confirm the identity of a military or HK/Macau/Taiwan applicant who declared without a verified one.

    Until then the declaration cannot be approved (409 ``identity_review_pending``).
    """
    declaration = service.confirm_identity(session, key, declaration_id, body.reason)
    return service.declaration_view(declaration, for_reviewer=True)


# --- the applicant's declarations -----------------------------------------------------------------


@router.post(
    "",
    response_model=DeclarationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a subject's declaration of a project (one per project; a verified identity, "
    "or a military / HK-Macau-Taiwan applicant category)",
    responses=_errors(404, 409, 422),
)
def create_declaration(
    body: DeclarationCreate, client: Client, session: SessionDep, settings: SettingsDep
) -> DeclarationOut:
    declaration = service.create_declaration(
        session,
        client,
        body.subject_id,
        body.kind,
        project_code=body.project_code,
        applicant_category=body.applicant_category,
        applicant=body.applicant,
        settings=settings,
    )
    return service.declaration_view(declaration)


@router.get("", response_model=list[DeclarationOut], summary="A subject's declarations")
def list_declarations(
    client: Client, session: SessionDep, subject_id: Annotated[str, Query(max_length=128)]
) -> list[DeclarationOut]:
    return [service.declaration_view(d) for d in service.list_declarations(session, client, subject_id)]


@router.get(
    "/{declaration_id}",
    response_model=DeclarationOut,
    summary="Progress: status, history, what is missing",
    responses=_errors(404),
)
def get_declaration(declaration_id: str, client: Client, session: SessionDep) -> DeclarationOut:
    return service.declaration_view(service.get_declaration(session, client, declaration_id))


@router.put(
    "/{declaration_id}/form",
    response_model=DeclarationOut,
    summary="Save the form (drafts may be incomplete)",
    responses=_errors(404, 409, 422),
)
def save_form(
    declaration_id: str, client: Client, session: SessionDep, form: Annotated[dict[str, Any], Body()]
) -> DeclarationOut:
    return service.declaration_view(service.save_form(session, client, declaration_id, form))


@router.post(
    "/{declaration_id}/attachments",
    response_model=AttachmentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a PDF, JPEG or PNG; refer to its id in the form",
    responses=_errors(404, 409, 413, 415, 422),
)
def upload_attachment(
    declaration_id: str,
    client: Client,
    session: SessionDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    file: Annotated[UploadFile, File(description="PDF, JPEG or PNG")],
) -> AttachmentOut:
    data = file.file.read(settings.declaration_max_attachment_bytes + 1)
    attachment = service.add_attachment(session, client, declaration_id, data, file.filename, settings, store)
    return AttachmentOut(
        id=attachment.id,
        content_type=attachment.content_type,
        size_bytes=attachment.size_bytes,
        filename=attachment.filename,
        created_at=attachment.created_at,
    )


@router.get(
    "/{declaration_id}/attachments/{attachment_id}",
    response_class=Response,
    summary="Download an attachment (never inline)",
    responses=_errors(404),
)
def download_attachment(
    declaration_id: str, attachment_id: str, client: Client, session: SessionDep, store: BlobStoreDep
) -> Response:
    declaration = service.get_declaration(session, client, declaration_id)
    attachment, data = service.read_attachment(declaration, attachment_id, store)
    return _download(data, attachment.content_type, attachment.filename)


@router.post(
    "/{declaration_id}/acknowledge-instructions",
    response_model=DeclarationOut,
    summary="Acknowledge the 申报须知 (needed before confirm and submit; recorded with the time)",
    responses=_errors(404, 409, 422),
)
def acknowledge_instructions(
    declaration_id: str, body: InstructionsAck, client: Client, session: SessionDep
) -> DeclarationOut:
    return service.declaration_view(service.acknowledge_instructions(session, client, declaration_id, body.version))


@router.post(
    "/{declaration_id}/confirm",
    response_model=DeclarationOut,
    summary="The confirm screen: check everything a submission needs",
    responses=_errors(404, 409, 422),
)
def confirm(declaration_id: str, client: Client, session: SessionDep) -> DeclarationOut:
    return service.declaration_view(service.confirm(session, client, declaration_id))


@router.post(
    "/{declaration_id}/submit",
    response_model=DeclarationOut,
    summary="Submit for review",
    responses=_errors(404, 409, 422),
)
def submit(declaration_id: str, client: Client, session: SessionDep) -> DeclarationOut:
    return service.declaration_view(service.submit(session, client, declaration_id))


@router.post(
    "/{declaration_id}/withdraw",
    response_model=DeclarationOut,
    summary="Withdraw before review starts, to edit",
    responses=_errors(404, 409),
)
def withdraw(declaration_id: str, client: Client, session: SessionDep) -> DeclarationOut:
    return service.declaration_view(service.withdraw(session, client, declaration_id))


@router.get(
    "/{declaration_id}/notice.pdf",
    response_class=Response,
    summary="The printable notice (PDF): a receipt once submitted, the registration success notice once approved",
    responses=_errors(404, 409),
)
def notice(
    declaration_id: str, client: Client, session: SessionDep, request: Request, settings: SettingsDep
) -> Response:
    # the QR code needs an absolute address: the configured public one, else the one asked at
    base_url = settings.public_base_url or str(request.base_url)
    declaration, pdf = service.notice_pdf(session, client, declaration_id, base_url)
    return _download(pdf, "application/pdf", f"notice-{declaration.number}.pdf")


# --- the public check page (no key: the QR code on the notice opens it) ---------------------------

public_router = APIRouter(tags=["public"])
_check_templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
# what service.submit issues: secrets.token_hex(8).upper(), 64 random bits
_CHECK_CODE = re.compile(r"[0-9A-Fa-f]{16}")
_CHECK_HEADERS = {
    **page_headers("style-src 'unsafe-inline'", "form-action 'none'"),
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


@public_router.get(
    "/check/{code}",
    response_class=HTMLResponse,
    summary="Public check page of a printed notice (no key): masked identity, state and times",
    responses={404: {"content": {"text/html": {}}}, 429: {"content": {"text/html": {}}}},
)
def check_page(code: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    context: dict[str, Any] = {"check": None, "retry_after": None, "checked_at": beijing_time(utcnow())}
    status_code = 200
    headers = dict(_CHECK_HEADERS)
    address = request.client.host if request.client else "unknown"
    try:
        # counted before the code is even looked at: a malformed guess costs as much as a real one
        enforce(request.app.state.rate_limiter, "notice_check", address, settings.public_check_per_minute)
        if not _CHECK_CODE.fullmatch(code):
            raise ApiError("unknown_verify_code", 404, "no declaration has this verification code", "验证码无效")
        check = service.check_notice(session, code)
    except ApiError as error:
        if error.status not in (404, 429):
            raise
        status_code = error.status
        if error.status == 429:
            context["retry_after"] = error.details.get("retry_after", 60)
            headers["Retry-After"] = str(context["retry_after"])
    else:
        context["check"] = {
            "valid": check.valid,
            "approved": check.status is DeclarationStatus.APPROVED,
            "number": check.number,
            "kind": KIND_LABELS[check.kind],
            "id_number_masked": check.id_number_masked,
            "status": check.status_label,
            "submitted_at": beijing_time(check.submitted_at),
            "approved_at": beijing_time(check.approved_at) if check.approved_at else None,
        }
    return _check_templates.TemplateResponse(
        request, "notice_check.html", context, status_code=status_code, headers=headers
    )
