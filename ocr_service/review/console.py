"""The reviewers' console: server-rendered pages under ``/review/`` (Jinja2, a little plain JS).

Sign-in with a reviewer account (``ocr-service reviewers create``) gives a signed, HttpOnly,
SameSite=Lax session cookie (``review.sessions``) that dies after the idle timeout; every POST
form carries the session's CSRF token (the sign-in form a server-signed one, also in a cookie). Pages call
``review.service`` only; photos are decrypted per request for the reviewer holding the case
and sent with ``Cache-Control: no-store``.

Errors are pages too (``ConsoleRoute``): an ``ApiError`` raised by the service becomes a Chinese
page with a way back, and a form posted after the session ended (signed out in another tab)
goes to sign-in saying the action was not saved, then back to the case.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException

from ocr_service.db import SessionDep, utcnow
from ocr_service.errors import ApiError
from ocr_service.review import labels, service, sessions
from ocr_service.review.models import CaseOrigin, CaseStatus, Reviewer, ReviewerRole
from ocr_service.review.throttle import SignInThrottle
from ocr_service.verification.models import DocumentType
from pipelines.reasons import MESSAGES, REVIEW_REJECT_REASONS, REVIEW_RETAKE_REASONS

SIGNIN = "/review/signin"
log = structlog.get_logger(__name__)
_CASE_PATH = re.compile(r"^/review/cases/([0-9a-f-]{36})(?:/|$)")


def diff_marks(text: str | None, other: str | None) -> Markup:
    """``text`` with the characters that differ from ``other`` marked (typed vs read, side by side)."""
    text, other = text or "", other or ""
    if not other or text == other:
        return escape(text)
    out = []
    for op, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, text, other, autojunk=False).get_opcodes():
        part = escape(text[i1:i2])
        out.append(part if op == "equal" else Markup('<mark class="diff">') + part + Markup("</mark>"))
    return Markup("").join(out)


templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
templates.env.globals.update(
    MESSAGES=MESSAGES,
    REJECT_REASONS=REVIEW_REJECT_REASONS,
    RETAKE_REASONS=REVIEW_RETAKE_REASONS,
    ORIGINS=[o.value for o in CaseOrigin],
    DOCUMENT_TYPES=[d.value for d in DocumentType],
    SORTS=service.SORTS,
    L=labels,
)
templates.env.filters.update(
    age=labels.duration,
    local=labels.local_time,
    reason=labels.reason_label,
    diff=diff_marks,
)
_NO_STORE = {"Cache-Control": "no-store, private"}


class ConsoleRoute(APIRoute):
    """Console routes answer errors with pages, never with the JSON API's error body."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error_page(request, exc)
            except HTTPException as exc:
                if exc.status_code == 303 and (exc.headers or {}).get("Location") == SIGNIN:
                    return _signed_out(request)
                raise

        return console_handler


router = APIRouter(prefix="/review", include_in_schema=False, route_class=ConsoleRoute)


def _error_page(request: Request, exc: ApiError) -> Response:
    match = _CASE_PATH.match(request.url.path)
    # an input the reviewer can fix sends them back to the case; a lost case back to the queue
    back_to_case = match and (exc.status == 422 or exc.code == "csrf_failed")
    response = templates.TemplateResponse(
        request,
        "error.html",
        {
            "reviewer": None,
            "code": exc.code,
            "message": exc.message_zh or exc.message,
            "case_url": f"/review/cases/{match.group(1)}" if back_to_case else None,
        },
        status_code=exc.status,
    )
    response.headers["Cache-Control"] = "no-store, private"
    return response


def _signed_out(request: Request) -> Response:
    """The session is gone: a GET goes to sign-in; a POST (a decision) says it was not saved."""
    if request.method == "GET":
        return RedirectResponse(SIGNIN, status_code=303)
    match = _CASE_PATH.match(request.url.path)
    back = f"/review/cases/{match.group(1)}" if match else "/review/queue"
    return RedirectResponse(f"{SIGNIN}?error=signed_out&next={quote(back, safe='')}", status_code=303)


def _safe_next(url: str | None) -> str:
    """Only a console path of this site (no scheme, no host, no ``//``)."""
    if url and url.startswith("/review/") and not url.startswith("//") and "\\" not in url and ".." not in url:
        return url
    return "/review/queue"


def _key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "review_session_key", None) is None:
        state.review_session_key = sessions.session_key(state.settings)
    return state.review_session_key


def _signin_key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "review_signin_key", None) is None:
        state.review_signin_key = sessions.signin_key(state.settings)
    return state.review_signin_key


def _to_signin() -> HTTPException:
    return HTTPException(status_code=303, headers={"Location": SIGNIN})


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
            secure=sessions.cookies_secure(request, request.app.state.settings),
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


def _throttle(request: Request) -> SignInThrottle:
    state = request.app.state
    if getattr(state, "signin_throttle", None) is None:
        state.signin_throttle = SignInThrottle(state.settings)
    return state.signin_throttle


def _wait_text(seconds: int) -> str:
    return f"{seconds} 秒" if seconds < 60 else f"{math.ceil(seconds / 60)} 分钟"


def _signin_form(request: Request, error: str | None, next: str | None, status_code: int = 200, **context) -> Response:
    token = sessions.new_signin_token(_signin_key(request))
    response = templates.TemplateResponse(
        request,
        "signin.html",
        {"reviewer": None, "signin_csrf": token, "error": error, "next": _safe_next(next), **context},
        status_code=status_code,
    )
    response.set_cookie(
        sessions.SIGNIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=sessions.cookies_secure(request, request.app.state.settings),
        path="/review",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _locked(request: Request, seconds: int, next: str) -> Response:
    """429: the same page for a known and an unknown username (the lock is keyed on what was typed)."""
    response = _signin_form(request, "locked", next, 429, wait=_wait_text(seconds))
    response.headers["Retry-After"] = str(seconds)
    return response


@router.get("/signin")
def signin_page(request: Request, error: str | None = None, next: str | None = None) -> Response:
    return _signin_form(request, error, next)


@router.post("/signin")
def signin(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Csrf,
    next: Annotated[str, Form()] = "",
) -> Response:
    max_age = request.app.state.settings.review_signin_token_max_age_minutes * 60
    if not (
        sessions.csrf_matches(request.cookies.get(sessions.SIGNIN_CSRF_COOKIE, ""), csrf)
        and sessions.signin_token_valid(_signin_key(request), csrf, max_age)
    ):
        # a form left open too long, or a token this server never signed: a new form to send again
        return _signin_form(request, "expired", next, 403)
    throttle = _throttle(request)
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(username, address)
    if wait:
        # refused before the password is checked: a locked account costs no argon2 either
        log.warning("signin_refused_locked", address=address, retry_after=wait)
        return _locked(request, wait, next)
    reviewer = service.authenticate_reviewer(session, username, password)
    if reviewer is None:
        lockouts = throttle.record_failure(username, address)
        service.record_signin_failure(session, username, address, lockouts)
        if lockouts:
            return _locked(request, throttle.retry_after(username, address), next)
        return RedirectResponse(f"{SIGNIN}?error=invalid", status_code=303)
    throttle.record_success(username)
    request.state.console_session = sessions.new_session(reviewer.id, reviewer.session_version)
    response = _redirect(request, _safe_next(next))
    response.delete_cookie(
        sessions.SIGNIN_CSRF_COOKIE,
        path="/review",
        httponly=True,
        samesite="lax",
        secure=sessions.cookies_secure(request, request.app.state.settings),
    )
    return response


@router.post("/signout")
def signout(request: Request, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.sign_out(session, reviewer)
    response = RedirectResponse("/review/signin", status_code=303)
    response.delete_cookie(
        sessions.COOKIE_NAME,
        path="/review",
        httponly=True,
        samesite="lax",
        secure=sessions.cookies_secure(request, request.app.state.settings),
    )
    return response


# --- the queue -----------------------------------------------------------------------------------------


def _known_filters(origin: str | None, document_type: str | None) -> tuple[str, str, bool]:
    """The origin and document type with values outside their enums dropped, and whether any was.

    Only the page's own select boxes produce these, so an unknown value is a hand-edited or stale
    link: the queue is shown without that filter (and says so) rather than failing the query.
    """
    known_origin = origin if origin in CaseOrigin._value2member_map_ else ""
    known_document = document_type if document_type in DocumentType._value2member_map_ else ""
    return known_origin, known_document, (known_origin, known_document) != (origin or "", document_type or "")


def _filters(origin: str | None, document_type: str | None, sort: str = "oldest", q: str = "") -> dict[str, str]:
    return {"origin": origin or "", "document_type": document_type or "", "sort": sort or "oldest", "q": q or ""}


def _queue_url(filters: dict[str, str], **flags: str) -> str:
    query = {k: v for k, v in filters.items() if v and not (k == "sort" and v == "oldest")}
    query.update({k: v for k, v in flags.items() if v})
    return "/review/queue" + (f"?{urlencode(query)}" if query else "")


@router.get("/queue")
def queue_page(
    request: Request,
    reviewer: CurrentReviewer,
    session: SessionDep,
    origin: str | None = None,
    document_type: str | None = None,
    sort: str = "oldest",
    q: str = "",
    empty: bool = False,
    done: str = "",
) -> Response:
    origin, document_type, ignored_filter = _known_filters(origin, document_type)
    view = service.queue_view(session, origin or None, document_type or None, sort, verification_id=q.strip() or None)
    return _page(
        request,
        reviewer,
        "queue.html",
        view=view,
        ignored_filter=ignored_filter,
        held=service.held_case(session, reviewer),
        filters=_filters(origin, document_type, sort, q),
        filtered=bool(origin or document_type or q.strip()),
        empty=empty,
        done=done,
        now=utcnow(),
        awaiting=[r for r in view.rows if r.case.status == CaseStatus.AWAITING_CONFIRMATION],
        # admins assign waiting cases to a named reviewer from the queue
        assignees=[r for r in service.list_reviewers(session) if r.active]
        if reviewer.role == ReviewerRole.ADMIN
        else [],
    )


def _claim_next(request: Request, reviewer: Reviewer, session, origin: str, document_type: str, done: str = ""):
    """Redirect to the reviewer's held case, else to a newly claimed one, else back to the queue saying why."""
    origin, document_type, _ignored = _known_filters(origin, document_type)
    case = service.held_case(session, reviewer) or service.claim_next_case(
        session,
        reviewer,
        settings=request.app.state.settings,
        origin=origin or None,
        document_type=document_type or None,
    )
    if case is None:
        return _redirect(request, _queue_url(_filters(origin, document_type), empty="1", done=done))
    return _redirect(request, f"/review/cases/{case.id}" + (f"?done={done}" if done else ""))


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
    return _claim_next(request, reviewer, session, origin, document_type)


# --- a case ----------------------------------------------------------------------------------------------


@router.get("/cases/{case_id}")
def case_page(
    request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, done: str = ""
) -> Response:
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
        done=done,
        now=utcnow(),
        four_eyes=settings.review_four_eyes and bool(view.overridden_checks),
        lease_minutes=settings.review_lease_minutes,
    )


@router.get("/cases/{case_id}/images/{image_id}")
def case_image(
    request: Request, case_id: str, image_id: str, reviewer: CurrentReviewer, session: SessionDep
) -> Response:
    data, content_type = service.view_image(session, case_id, image_id, reviewer)
    return _finish(request, Response(data, media_type=content_type, headers=_NO_STORE))


@router.get("/cases/{case_id}/images/{image_id}/card")
def case_card_image(
    request: Request, case_id: str, image_id: str, reviewer: CurrentReviewer, session: SessionDep
) -> Response:
    """The straightened card the scan computed (the case page's default view; the raw photo is one click away)."""
    data, content_type = service.view_card_image(session, case_id, image_id, reviewer, request.app.state.settings)
    return _finish(request, Response(data, media_type=content_type, headers=_NO_STORE))


@router.post("/cases/{case_id}/lease")
def renew_lease(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep) -> Response:
    _check_csrf(request, request.headers.get("X-CSRF-Token"))
    case = service.renew_lease(session, case_id, reviewer, request.app.state.settings)
    return _finish(request, Response(labels.local_time(case.lease_expires_at, "%H:%M:%S"), media_type="text/plain"))


Advance = Annotated[str, Form()]


def _after_decision(request: Request, reviewer: Reviewer, session, advance: str, done: str) -> Response:
    """Auto-advance: straight to the next case (the default), or back to the queue."""
    if advance == "1":
        return _claim_next(request, reviewer, session, "", "", done=done)
    return _redirect(request, f"/review/queue?done={done}")


@router.post("/cases/{case_id}/release")
def release(
    request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf, advance: Advance = ""
) -> Response:
    _check_csrf(request, csrf)
    service.release_case(session, case_id, reviewer)
    return _after_decision(request, reviewer, session, advance, "released")


@router.post("/cases/{case_id}/approve")
def approve(
    request: Request,
    case_id: str,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    name: Annotated[str, Form()] = "",
    document_number: Annotated[str, Form()] = "",
    sex: Annotated[str, Form()] = "",
    ethnicity: Annotated[str, Form()] = "",
    birth_date: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
    advance: Advance = "",
) -> Response:
    _check_csrf(request, csrf)
    if confirmed != "1":
        # the form has no submit button: only the confirmation step (values shown next to the claim) sends it
        raise ApiError(
            "confirmation_required",
            422,
            "approve through the confirmation step",
            "请先核对将写入的身份信息，再点击“确认通过”",
        )
    fields = {"name": name, "document_number": document_number, "sex": sex, "ethnicity": ethnicity}
    fields["birth_date"] = birth_date
    outcome = service.approve_case(session, case_id, reviewer, fields, request.app.state.settings)
    return _after_decision(request, reviewer, session, advance, outcome.status)


@router.post("/cases/{case_id}/confirm")
def confirm(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.confirm_approval(session, case_id, reviewer)
    return _redirect(request, "/review/queue?done=confirmed")


@router.post("/cases/{case_id}/refuse")
def refuse(request: Request, case_id: str, reviewer: CurrentReviewer, session: SessionDep, csrf: Csrf) -> Response:
    _check_csrf(request, csrf)
    service.reject_confirmation(session, case_id, reviewer)
    return _redirect(request, "/review/queue?done=refused")


@router.post("/cases/{case_id}/reject")
def reject(
    request: Request,
    case_id: str,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    reason: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    advance: Advance = "",
) -> Response:
    _check_csrf(request, csrf)
    service.reject_case(session, case_id, reviewer, reason, comment)
    return _after_decision(request, reviewer, session, advance, "decided")


@router.post("/cases/{case_id}/retake")
def retake(
    request: Request,
    case_id: str,
    reviewer: CurrentReviewer,
    session: SessionDep,
    csrf: Csrf,
    reason: Annotated[str, Form()] = "",
    advance: Advance = "",
) -> Response:
    _check_csrf(request, csrf)
    service.retake_case(session, case_id, reviewer, reason)
    return _after_decision(request, reviewer, session, advance, "decided")


# --- admin -------------------------------------------------------------------------------------------------


@router.post("/cases/{case_id}/assign")
def assign(
    request: Request,
    case_id: str,
    admin: CurrentAdmin,
    session: SessionDep,
    csrf: Csrf,
    reviewer: Annotated[str, Form()] = "",
) -> Response:
    """Assign a waiting case to a named reviewer (an empty name ends the assignment)."""
    _check_csrf(request, csrf)
    service.assign_case(session, case_id, reviewer or None, admin, request.app.state.settings)
    return _redirect(request, f"/review/queue?done={'assigned' if reviewer else 'unassigned'}")


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
