"""HTTP routes of the applicant-side flow: thin (parse, call ``service``, return a schema).

Authentication and the per-key rate limit come from ``Client``; the per-subject limit is
applied where a subject is known (creating a case, uploading to one). Uploads answer 200 with
the scan's decision when it finishes within ``result_wait_seconds``, else 202 with
``status_url`` (and ``Location``) to poll; a stored photo is 202 even if the broker or the
database fails after the store.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ocr_service.auth import ClientKey, Scope
from ocr_service.config import Settings
from ocr_service.db import SessionDep
from ocr_service.errors import is_outage
from ocr_service.queue import dispatch
from ocr_service.ratelimit import enforce
from ocr_service.verification import service
from ocr_service.verification.models import ApiKey, ImageSide
from ocr_service.verification.schemas import (
    ClaimCorrection,
    ErrorOut,
    IdentityOut,
    QualityOut,
    UploadOut,
    VerificationCreate,
    VerificationOut,
)


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def _client_within_limit(request: Request, client: ClientKey, settings: SettingsDep) -> ApiKey:
    request.state.client_key_prefix = client.key_prefix  # for the access log (a plain string)
    enforce(request.app.state.rate_limiter, "key", client.id, settings.rate_limit_per_minute_key)
    return client


# The caller's key (scope ``client``), already counted against its per-minute limit.
Client = Annotated[ApiKey, Depends(_client_within_limit)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Repeat an upload safely: the same key for the same verification and photo returns the "
        "first answer; the same key for anything else is 409 duplicate_request.",
    ),
]


def _limit_subject(request: Request, client: ApiKey, subject_id: str, settings: Settings) -> None:
    enforce(
        request.app.state.rate_limiter, "subject", f"{client.id}:{subject_id}", settings.rate_limit_per_minute_subject
    )


def _errors(*codes: int) -> dict[int | str, dict]:
    return {code: {"model": ErrorOut} for code in (401, 403, 429, *codes)}


log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1")


@router.post(
    "/quality",
    response_model=QualityOut,
    tags=["capture"],
    summary="Check one camera frame's capture quality (nothing is stored)",
    responses=_errors(413, 415, 422, 503),
)
def check_quality(
    client: Client, settings: SettingsDep, image: Annotated[UploadFile, File(description="One camera frame.")]
) -> QualityOut:
    """Fast framing feedback for the camera screen: is the card in the frame, sharp, free of glare.

    Reasons carry the Chinese prompt to show (请将身份证放入框内, 画面模糊，请保持稳定, …);
    ``corners`` are in frame pixels so the app can draw the detected outline.
    """
    return service.check_quality(image.file.read(), settings)


@router.post(
    "/verifications",
    response_model=VerificationOut,
    status_code=status.HTTP_201_CREATED,
    tags=["verifications"],
    summary="Start a verification for a subject",
    responses=_errors(409, 422),
)
def create_verification(
    request: Request, body: VerificationCreate, client: Client, session: SessionDep, settings: SettingsDep
) -> VerificationOut:
    """A new case waiting for photos. ``subject_id`` is the client application's id of the applicant."""
    _limit_subject(request, client, body.subject_id, settings)
    verification = service.create_verification(session, client, body)
    return service.verification_view(session, verification, settings)


@router.get(
    "/verifications/{verification_id}",
    response_model=VerificationOut,
    tags=["verifications"],
    summary="A verification's status, attempts and reasons",
    responses=_errors(404),
)
def get_verification(
    verification_id: str, client: Client, session: SessionDep, settings: SettingsDep
) -> VerificationOut:
    return service.verification_view(session, service.get_verification(session, client, verification_id), settings)


@router.post(
    "/verifications/{verification_id}/images",
    response_model=UploadOut,
    tags=["verifications"],
    summary="Upload a photo of the document",
    responses={
        202: {"model": UploadOut, "description": "Accepted; the scan did not finish in time. Poll status_url."},
        **_errors(404, 409, 413, 415, 422, 503),
    },
)
async def upload_image(
    request: Request,
    response: Response,
    verification_id: str,
    client: Client,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP or BMP photo of the document.")],
    side: Annotated[ImageSide, Form(description="The side asked for (next_action).")] = ImageSide.FRONT,
    idempotency_key: IdempotencyKey = None,
) -> UploadOut:
    """Automatic resident ID: the photo is scanned and the answer carries the decision, reasons and
    attempts left. Manual method and other documents: the photos go to the manual-review queue."""
    return await store_and_scan(
        request, response, session, client, verification_id, side, image, idempotency_key, settings
    )


async def store_and_scan(
    request: Request,
    response: Response,
    session: Session,
    client: ApiKey,
    verification_id: str,
    side: ImageSide,
    image: UploadFile,
    idempotency_key: str | None,
    settings: Settings,
    status_url: str | None = None,
) -> UploadOut:
    """One upload on behalf of ``client``: stored, its scan submitted, its decision awaited up to
    ``result_wait_seconds`` (else 202 and ``status_url``). The API's upload and the capture page's
    (``capture.routes``) both end here, so both get the same limits, queue handling and answer."""
    verification = await run_in_threadpool(service.get_verification, session, client, verification_id)
    _limit_subject(request, client, verification.subject_id, settings)
    data = await image.read()
    ticket = await run_in_threadpool(
        service.submit_image, session, client, verification_id, side, data, idempotency_key, settings
    )
    status_url = status_url or str(request.url_for("get_verification", verification_id=ticket.verification_id).path)
    return await _answer_stored(request, response, session, ticket, settings, status_url)


async def _answer_stored(
    request: Request,
    response: Response,
    session: Session,
    ticket: service.UploadTicket,
    settings: Settings,
    status_url: str,
) -> UploadOut:
    """Submit a committed attempt's scan and wait for it (upload, claim correction)."""
    # The photo and its attempt are committed: from here on, whatever fails (the broker, the
    # database), the answer is 202 with where to look, never an error that invites a new upload.
    # A queued attempt is sent again by the requeue sweeper, or by a retry with the same key.
    try:
        if ticket.to_submit:
            await run_in_threadpool(dispatch.submit, ticket.attempt_id, settings)
        finished = ticket.in_background or await service.await_attempt(
            ticket.attempt_id, settings.result_wait_seconds, request.app.state.db
        )
        answer = await run_in_threadpool(service.upload_view, session, ticket, settings, status_url)
    except Exception as exc:
        stored = service.stored_upload_view(ticket, status_url)
        if stored is None or not is_outage(exc):
            raise
        log.warning("upload_stored_answer_pending", attempt_id=ticket.attempt_id, error=type(exc).__name__)
        finished, answer = False, stored
    if not finished:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = status_url
    return answer


@router.put(
    "/verifications/{verification_id}/claim",
    response_model=UploadOut,
    tags=["verifications"],
    summary="Correct the claim when a scan asks for it (next_action correct_claim)",
    responses={
        202: {"model": UploadOut, "description": "Accepted; the re-scan did not finish in time. Poll status_url."},
        **_errors(404, 409, 422, 503),
    },
)
async def correct_claim(
    request: Request,
    response: Response,
    verification_id: str,
    body: ClaimCorrection,
    client: Client,
    session: SessionDep,
    settings: SettingsDep,
) -> UploadOut:
    """The card was read clearly and contradicts the typed ``claim_fields``: send the claim again and the
    stored photo is scanned against it (no new photo). The mismatch did not count as a failed attempt.
    Answered like an upload: 200 with the decision, or 202 with ``status_url``."""
    verification = await run_in_threadpool(service.get_verification, session, client, verification_id)
    _limit_subject(request, client, verification.subject_id, settings)
    ticket = await run_in_threadpool(service.correct_claim, session, client, verification_id, body, settings)
    status_url = str(request.url_for("get_verification", verification_id=ticket.verification_id).path)
    return await _answer_stored(request, response, session, ticket, settings, status_url)


@router.post(
    "/verifications/{verification_id}/withdraw",
    response_model=VerificationOut,
    tags=["verifications"],
    summary="Withdraw a verification waiting for manual review or for its scan",
    responses=_errors(404, 409),
)
def withdraw_verification(
    verification_id: str, client: Client, session: SessionDep, settings: SettingsDep
) -> VerificationOut:
    """While ``in_review``, or ``processing`` (a scan held up by an outage; it is recorded when it runs
    but decides nothing); afterwards the applicant starts a new (automatic) verification."""
    verification = service.withdraw(session, client, verification_id, settings)
    return service.verification_view(session, verification, settings)


@router.get(
    "/subjects/{subject_id}/identity",
    response_model=IdentityOut,
    # birth_date is left out, not sent as null, for a key without identity:full
    response_model_exclude_unset=True,
    tags=["identities"],
    summary="The identity a subject verified",
    responses=_errors(404),
)
def get_identity(subject_id: str, client: Client, session: SessionDep) -> IdentityOut:
    """Without the ``identity:full`` scope the number is masked (1****************1) and no birth date is sent.

    The birth date and a masked number together would give the number back, whatever the mask.
    """
    return service.get_identity(session, client, subject_id, full_number=client.has_scope(Scope.IDENTITY_FULL))
