"""The capture links' routes: the client's API (create, revoke) and the page a link opens.

``api_router`` (``/v1/verifications/{id}/capture-sessions``, client key) hands out and revokes
links. ``page_router`` (``/capture/{token}``, no key: the token is the credential) serves the
page and the three calls it makes -- the live check, the upload, the status -- each on behalf of
the key that made the link, through the same verification code the client's own calls use.

The page is HTML with one inline script run by a per-response CSP nonce; nothing else may run,
load or frame it, and no Referer leaves it (the token is in its address).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Request, Response, UploadFile, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ocr_service.capture import service
from ocr_service.capture.models import CaptureAction
from ocr_service.capture.schemas import CaptureSessionOut, CaptureStatusOut
from ocr_service.db import SessionDep
from ocr_service.errors import ApiError
from ocr_service.page_security import page_headers
from ocr_service.ratelimit import enforce
from ocr_service.verification import service as verification_service
from ocr_service.verification.models import ImageSide
from ocr_service.verification.routes import Client, SettingsDep, _errors, store_and_scan
from ocr_service.verification.schemas import QualityOut, UploadOut
from pipelines.reasons import MESSAGES

# The page's pacing. 960 px on the long side keeps a card's edges and text sharp enough for the
# live check while a frame stays ~60-90 KB; 4 checks a second feels live without queueing frames
# on a slow uplink (the page never has more than one frame in flight); 3 good frames in a row
# (~0.75 s held still) before the automatic shot, so a card passing through the outline is not taken.
FRAME_LONG_SIDE = 960
CHECK_INTERVAL_MS = 250
GOOD_FRAMES_TO_CAPTURE = 3

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

api_router = APIRouter(prefix="/v1")
page_router = APIRouter(prefix="/capture", include_in_schema=False)


def _link(request: Request, token: str) -> str:
    base = request.app.state.settings.public_base_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/capture/{token}"


@api_router.post(
    "/verifications/{verification_id}/capture-sessions",
    response_model=CaptureSessionOut,
    status_code=status.HTTP_201_CREATED,
    tags=["capture"],
    summary="A short-lived link to the hosted capture page for this verification",
    responses=_errors(404),
)
def create_capture_session(
    request: Request, verification_id: str, client: Client, session: SessionDep, settings: SettingsDep
) -> CaptureSessionOut:
    """Open ``url`` on the applicant's phone: the page checks framing live, takes the photo and shows
    the decision. The link works only for this verification's quality checks, uploads and status,
    for ``OCR_CAPTURE_SESSION_MINUTES``, until revoked; no API key reaches the phone."""
    capture_session, token = service.create_capture_session(session, client, verification_id, settings)
    return CaptureSessionOut(
        id=capture_session.id,
        verification_id=capture_session.verification_id,
        url=_link(request, token),
        expires_at=capture_session.expires_at,
    )


@api_router.delete(
    "/verifications/{verification_id}/capture-sessions/{capture_session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["capture"],
    summary="Revoke a capture link",
    responses=_errors(404),
)
def revoke_capture_session(
    verification_id: str, capture_session_id: str, client: Client, session: SessionDep
) -> Response:
    service.revoke_capture_session(session, client, verification_id, capture_session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- the page ------------------------------------------------------------------------------------


def _security_headers(nonce: str) -> dict[str, str]:
    return {
        **page_headers(
            f"script-src 'nonce-{nonce}'",
            f"style-src 'nonce-{nonce}'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob: mediastream:",
            "connect-src 'self'",
            "form-action 'none'",
        ),
        "Permissions-Policy": "camera=(self), microphone=()",
        "Cache-Control": "no-store, private",
        "X-Robots-Tag": "noindex",
    }


def _page(request: Request, template: str, context: dict, status_code: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(18)
    response = templates.TemplateResponse(request, template, {"nonce": nonce, **context}, status_code=status_code)
    response.headers.update(_security_headers(nonce))
    return response


def _status_out(session, access: service.CaptureAccess, settings) -> CaptureStatusOut:
    verification = verification_service.get_verification(session, access.client, access.verification_id)
    view = verification_service.verification_view(session, verification, settings)
    return CaptureStatusOut(
        status=view.status,
        reasons=view.reasons,
        review_reason=view.review_reason,
        attempts_left=view.attempts_left,
        next_action=view.next_action,
    )


@page_router.get("/{token}", response_class=HTMLResponse)
def capture_page(request: Request, token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        access = service.open_capture_link(session, token, CaptureAction.PAGE)
    except ApiError as exc:
        return _page(request, "link_error.html", {"message": exc.message_zh}, status_code=exc.status)
    initial = _status_out(session, access, settings)
    return _page(
        request,
        "capture.html",
        {
            "base": f"/capture/{token}",
            "initial": initial.model_dump(mode="json"),
            "frame_long_side": FRAME_LONG_SIDE,
            "check_interval_ms": CHECK_INTERVAL_MS,
            "good_frames": GOOD_FRAMES_TO_CAPTURE,
            "messages": {code: zh for code, (zh, _en) in MESSAGES.items()},
            "link_messages": service.LINK_MESSAGES_ZH,
        },
    )


@page_router.post("/{token}/quality", response_model=QualityOut)
def capture_quality(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="One camera frame.")],
) -> QualityOut:
    access = service.open_capture_link(session, token, CaptureAction.QUALITY)
    enforce(request.app.state.rate_limiter, "capture", access.capture_session_id, settings.capture_frames_per_minute)
    return verification_service.check_quality(image.file.read(), settings)


@page_router.post("/{token}/images", response_model=UploadOut)
async def capture_upload(
    request: Request,
    response: Response,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The full-resolution photo.")],
    side: Annotated[ImageSide, Form()] = ImageSide.FRONT,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> UploadOut:
    access = await run_in_threadpool(service.open_capture_link, session, token, CaptureAction.UPLOAD)
    return await store_and_scan(
        request,
        response,
        session,
        access.client,
        access.verification_id,
        side,
        image,
        idempotency_key,
        settings,
        status_url=f"/capture/{token}/status",
    )


@page_router.get("/{token}/status", response_model=CaptureStatusOut)
def capture_status(token: str, session: SessionDep, settings: SettingsDep) -> CaptureStatusOut:
    access = service.open_capture_link(session, token, CaptureAction.STATUS)
    return _status_out(session, access, settings)


# what app.py mounts: the client's API and the page
router = APIRouter()
router.include_router(api_router)
router.include_router(page_router)
