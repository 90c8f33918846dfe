"""The reviewers' console: server-rendered pages under ``/review/`` (Jinja2, a little plain JS).

Sign-in with a reviewer account (``ocr-service reviewers create``) gives a signed, HttpOnly,
SameSite=Lax session cookie (``review.sessions``) that dies after the idle timeout; every POST
form carries the session's CSRF token (the sign-in form a cookie-bound one). Pages call
``review.service`` only; photos are decrypted per request for the reviewer holding the case
and sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from ocr_service.db import SessionDep
from ocr_service.errors import ApiError
from ocr_service.review import service, sessions
from ocr_service.review.models import CaseOrigin, CaseStatus, Reviewer, ReviewerRole
from ocr_service.verification.models import DocumentType
from pipelines.reasons import MESSAGES, REVIEW_REJECT_REASONS, REVIEW_RETAKE_REASONS

router = APIRouter(prefix="/review", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
templates.env.globals.update(
    MESSAGES=MESSAGES,
    REJECT_REASONS=REVIEW_REJECT_REASONS,
    RETAKE_REASONS=REVIEW_RETAKE_REASONS,
    ORIGINS=[o.value for o in CaseOrigin],
    DOCUMENT_TYPES=[d.value for d in DocumentType],
    SORTS=service.SORTS,
)
_NO_STORE = {"Cache-Control": "no-store, private"}


def _age(delta) -> str:
    if delta is None:
        return "-"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


templates.env.filters["age"] = _age


def _key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "review_session_key", None) is None:
        state.review_session_key = sessions.session_key(state.settings)
    return state.review_session_key


def _to_signin() -> HTTPException:
    return HTTPException(status_code=303, headers={"Location": "/review/signin"})


def current_reviewer(request: Request, session: SessionDep) -> Reviewer:
    idle = request.app.state.settings.review_session_idle_minutes * 60
    console_session = sessions.decode(_key(request), request.cookies.get(sessions.COOKIE_NAME), idle)
    if console_session is None:
        raise _to_signin()
    reviewer = session.get(Reviewer, console_session.reviewer_id)
    if reviewer is None or not reviewer.active or reviewer.session_version != console_session.version:
        raise _to_signin()
    request.state.console_session = sessions.touched(console_session)
    return reviewer


def current_admin(reviewer: Annotated[Reviewer, Depends(current_reviewer)]) -> Reviewer:
    if reviewer.role != ReviewerRole.ADMIN:
        raise ApiError("forbidden", 403, "admins only", "无权访问")
    return reviewer


CurrentReviewer = Annotated[Reviewer, Depends(current_reviewer)]
CurrentAdmin = Annotated[Reviewer, Depends(current_admin)]


def _finish(request: Request, response: Response) -> Response:
    """Set the refreshed session cookie (the idle timeout slides) and forbid caching of the page."""
    console_session = getattr(request.state, "console_session", None)
    if console_session is not None:
        response.set_cookie(
            sessions.COOKIE_NAME,
            sessions.encode(_key(request), console_session),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/review",
        )
    response.headers.setdefault("Cache-Control", "no-store, private")
    return response


def _page(request: Request, reviewer: Reviewer | None, template: str, **context) -> Response:
    csrf = request.state.console_session.csrf if reviewer is not None else None
    response = templates.TemplateResponse(request, template, {"reviewer": reviewer, "csrf": csrf, **context})
    return _finish(request, response)


def _redirect(request: Request, url: str) -> Response:
    return _finish(request, RedirectResponse(url, status_code=303))


def _check_csrf(request: Request, token: str | None) -> None:
    if not sessions.csrf_matches(request.state.console_session.csrf, token):
        raise ApiError(
            "csrf_failed", 403, "the form's CSRF token is missing or wrong; reload the page", "页面已过期，请刷新"
        )


Csrf = Annotated[str, Form()]


# --- sign-in ------------------------------------------------------------------------------------------


@router.get("/")
def home() -> Response:
    return RedirectResponse("/review/queue", status_code=303)


@router.get("/signin")
def signin_page(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request, "signin.html", {"reviewer": None, "signin_csrf": token, "error": error}
    )
    response.set_cookie(sessions.SIGNIN_CSRF_COOKIE, token, httponly=True, samesite="lax", path="/review")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/signin")
def signin(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Csrf,
) -> Response:
    if not sessions.csrf_matches(request.cookies.get(sessions.SIGNIN_CSRF_COOKIE, ""), csrf):
        return RedirectResponse("/review/signin?error=expired", status_code=303)
    reviewer = service.authenticate_reviewer(session, username, password)
    if reviewer is None:
        return RedirectResponse("/review/signin?error=invalid", status_code=303)
    request.state.console_session = sessions.new_session(reviewer.id, reviewer.session_version)
    response = _redirect(request, "/review/queue")
    response.delete_cookie(sessions.SIGNIN_CSRF_COOKIE, path="/review")
    return response


@router.post("/signout")
def signout(request: Request, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.sign_out(session, reviewer)
    response = RedirectResponse("/review/signin", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME, path="/review")
    return response


# --- the queue -----------------------------------------------------------------------------------------


@router.get("/queue")
def queue_page(
    request: Request,
    reviewer: CurrentReviewer,
    session: SessionDep,
    origin: str | None = None,
    document_type: str | None = None,
    sort: str = "oldest",
    empty: bool = False,
) -> Response:
    view = service.queue_view(session, origin or None, document_type or None, sort)
    return _page(
        request,
        reviewer,
        "queue.html",
        view=view,
        held=service.held_case(session, reviewer),
        filters={"origin": origin or "", "document_type": document_type or "", "sort": sort},
        empty=empty,
        awaiting=[r for r in view.rows if r.case.status == CaseStatus.AWAITING_CONFIRMATION],
    )


@router.post("/claim")
def claim(
    request: Request,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    origin: Annotated[str, Form()] = "",
    document_type: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, csrf)
    held = service.held_case(session, reviewer)
    case = held or service.claim_next_case(
        session,
        reviewer,
        settings=request.app.state.settings,
        origin=origin or None,
        document_type=document_type or None,
    )
    if case is None:
        return _redirect(request, "/review/queue?empty=1")
    return _redirect(request, f"/review/cases/{case.id}")


# --- a case ----------------------------------------------------------------------------------------------


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep) -> Response:
    view = service.case_view(session, case_id, reviewer)
    mrz = None
    if view.verification.document_type in service.MRZ_DOCUMENTS:
        mrz = service.read_case_mrz(session, case_id, reviewer)
    settings = request.app.state.settings
    return _page(
        request,
        reviewer,
        "case.html",
        view=view,
        mrz=mrz,
        four_eyes=settings.review_four_eyes and bool(view.overridden_checks),
        lease_minutes=settings.review_lease_minutes,
    )


@router.get("/cases/{case_id}/images/{image_id}")
def case_image(
    request: Request, case_id: str, image_id: str, reviewer: CurrentReviewer, session: SessionDep
) -> Response:
    data, content_type = service.view_image(session, case_id, image_id, reviewer)
    return _finish(request, Response(data, media_type=content_type, headers=_NO_STORE))


@router.post("/cases/{case_id}/lease")
def renew_lease(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep) -> Response:
    _check_csrf(request, request.headers.get("X-CSRF-Token"))
    case = service.renew_lease(session, case_id, reviewer, request.app.state.settings)
    return _finish(request, Response(case.lease_expires_at.isoformat(), media_type="text/plain"))


@router.post("/cases/{case_id}/release")
def release(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.release_case(session, case_id, reviewer)
    return _redirect(request, "/review/queue")


@router.post("/cases/{case_id}/approve")
def approve(
    request: Request,
    case_id: str,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    name: Annotated[str, Form()],
    document_number: Annotated[str, Form()],
    sex: Annotated[str, Form()] = "",
    ethnicity: Annotated[str, Form()] = "",
    birth_date: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, csrf)
    fields = {"name": name, "document_number": document_number, "sex": sex, "ethnicity": ethnicity}
    fields["birth_date"] = birth_date
    outcome = service.approve_case(session, case_id, reviewer, fields, request.app.state.settings)
    return _redirect(request, f"/review/queue?done={outcome.status}")


@router.post("/cases/{case_id}/confirm")
def confirm(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.confirm_approval(session, case_id, reviewer)
    return _redirect(request, "/review/queue?done=decided")


@router.post("/cases/{case_id}/refuse")
def refuse(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.reject_confirmation(session, case_id, reviewer)
    return _redirect(request, "/review/queue")


@router.post("/cases/{case_id}/reject")
def reject(
    request: Request,
    case_id: str,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    reason: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, csrf)
    service.reject_case(session, case_id, reviewer, reason, comment)
    return _redirect(request, "/review/queue?done=decided")


@router.post("/cases/{case_id}/retake")
def retake(
    request: Request,
    case_id: str,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    reason: Annotated[str, Form()],
) -> Response:
    _check_csrf(request, csrf)
    service.retake_case(session, case_id, reviewer, reason)
    return _redirect(request, "/review/queue?done=decided")


# --- admin -------------------------------------------------------------------------------------------------


@router.get("/admin/reviewers")
def reviewers_page(request: Request, admin: CurrentAdmin, session: SessionDep, error: str | None = None) -> Response:
    return _page(request, admin, "admin_reviewers.html", reviewers=service.list_reviewers(session), error=error)


@router.post("/admin/reviewers")
def create_reviewer(
    request: Request,
    admin: CurrentAdmin,
    session: SessionDep,
    csrf: Csrf,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()] = "reviewer",
) -> Response:
    _check_csrf(request, csrf)
    try:
        created = service.create_reviewer(session, username, password, role)
    except ValueError as exc:
        session.rollback()
        return _redirect(request, f"/review/admin/reviewers?error={exc}")
    service.append_audit(session, admin.actor, "create_reviewer", details={"reviewer": created.username})
    session.commit()
    return _redirect(request, "/review/admin/reviewers")


@router.post("/admin/reviewers/{reviewer_id}/active")
def set_active(
    request: Request,
    reviewer_id: str,
    admin: CurrentAdmin,
    session: SessionDep,
    csrf: Csrf,
    active: Annotated[str, Form()],
) -> Response:
    _check_csrf(request, csrf)
    service.set_reviewer_active(session, reviewer_id, active == "1", admin)
    return _redirect(request, "/review/admin/reviewers")


@router.get("/admin/audit")
def audit_page(request: Request, admin: CurrentAdmin, session: SessionDep, case_id: str | None = None) -> Response:
    return _page(
        request,
        admin,
        "admin_audit.html",
        entries=service.audit_entries(session, case_id=case_id or None),
        chain=service.verify_audit_chain(session),
    )


@router.get("/admin/stats")
def stats_page(request: Request, admin: CurrentAdmin, session: SessionDep) -> Response:
    return _page(request, admin, "admin_stats.html", stats=service.queue_statistics(session))
