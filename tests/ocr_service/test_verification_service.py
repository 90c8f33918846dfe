"""The verification service without HTTP: one scan per attempt, encryption at rest, failure paths.

Runs on SQLite and PostgreSQL (``service_runtime`` takes the ``database`` fixture).
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import threading

from sqlalchemy import select

from ocr_service.crypto import get_cipher
from ocr_service.storage import get_blob_store
from ocr_service.verification import service
from ocr_service.verification.models import (
    Attempt,
    AttemptStatus,
    ImageSide,
    StatusEvent,
    StoredImage,
    Verification,
    VerificationStatus,
    VerifiedIdentity,
)
from ocr_service.verification.schemas import VerificationCreate
from tests.ocr_service.api_harness import BLURRED, CLEAN, claim_of, photo, service_runtime

NUMBER = claim_of(CLEAN)["document_number"]


def upload(runtime, subject: str = "subject-1", image: str = CLEAN) -> tuple[str, str]:
    """A case with one queued attempt (not yet scanned): (verification id, attempt id)."""
    with runtime.session() as session:
        client = runtime.client_key(session)
        case = service.create_verification(
            session, client, VerificationCreate(subject_id=subject, claim=claim_of(CLEAN))
        )
        ticket = service.submit_image(session, client, case.id, ImageSide.FRONT, photo(image), None, runtime.settings)
        assert ticket.needs_scan
        return case.id, ticket.attempt_id


def test_an_attempt_is_scanned_once_however_often_it_is_delivered(service_runtime):
    case_id, attempt_id = upload(service_runtime)
    threads = [threading.Thread(target=service.process_attempt, args=(attempt_id,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    service.process_attempt(attempt_id)  # a late redelivery
    with service_runtime.session() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt.status == AttemptStatus.DONE
        assert attempt.task_attempts == 1
        assert session.get(Verification, case_id).status == VerificationStatus.VERIFIED
        events = session.scalars(select(StatusEvent.to_status).where(StatusEvent.verification_id == case_id)).all()
        assert events.count(VerificationStatus.VERIFIED) == 1
    assert service.wait_for_attempt(attempt_id, 0.1)


def test_numbers_and_photos_are_stored_encrypted_and_results_keep_the_number_masked(service_runtime):
    case_id, attempt_id = upload(service_runtime)
    service.process_attempt(attempt_id)
    cipher = get_cipher()
    with service_runtime.session() as session:
        case = session.get(Verification, case_id)
        assert NUMBER.encode() not in case.claim_number_enc
        assert cipher.decrypt_text(case.claim_number_enc, b"verifications.claim_number:" + case_id.encode()) == NUMBER
        assert case.claim_number_index == cipher.blind_index(NUMBER)

        attempt = session.get(Attempt, attempt_id)
        result_json = json.dumps(attempt.result, ensure_ascii=False)
        assert NUMBER not in result_json
        assert attempt.result["fields"]["id_number"] == NUMBER[0] + "*" * 16 + NUMBER[-1]
        assert cipher.decrypt_text(attempt.read_number_enc, b"attempts.read_number:" + attempt_id.encode()) == NUMBER
        assert attempt.pipeline_version and attempt.models_digest

        identity = session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.verification_id == case_id))
        assert NUMBER.encode() not in identity.number_enc
        assert identity.number_index == cipher.blind_index(NUMBER)
        assert identity.flagged is False

        image = session.get(StoredImage, attempt.image_id)
        stored = get_blob_store().path(image.blob_id).read_bytes()
        assert not stored.startswith(b"\xff\xd8") and photo(CLEAN)[:2000] not in stored
        assert get_blob_store().get(image.blob_id, b"stored_images:" + case_id.encode()) == photo(CLEAN)
        assert image.sha256 and image.content_type == "image/jpeg"


def test_a_photo_gone_before_its_scan_sends_the_case_to_review(service_runtime):
    case_id, attempt_id = upload(service_runtime)
    with service_runtime.session() as session:
        image = session.get(StoredImage, session.get(Attempt, attempt_id).image_id)
        get_blob_store().delete(image.blob_id)
    service.process_attempt(attempt_id)
    with service_runtime.session() as session:
        attempt = session.get(Attempt, attempt_id)
        case = session.get(Verification, case_id)
        assert attempt.status == AttemptStatus.FAILED
        assert (case.status, case.review_reason) == (VerificationStatus.IN_REVIEW, "scan_failed")


def test_a_failed_scan_moves_the_case_to_retake_and_counts_for_the_subject(service_runtime):
    case_id, attempt_id = upload(service_runtime, image=BLURRED)
    service.process_attempt(attempt_id)
    with service_runtime.session() as session:
        case = session.get(Verification, case_id)
        assert case.status == VerificationStatus.RETAKE
        assert case.decision_reasons == ["blurry"]
        assert service.failed_attempts(session, service_runtime.client_key_id, "subject-1") == 1
        assert service.failed_attempts(session, service_runtime.client_key_id, "someone-else") == 0


def test_an_unprocessed_attempt_is_not_reported_finished(service_runtime):
    _case_id, attempt_id = upload(service_runtime)
    assert service.wait_for_attempt(attempt_id, 0.12) is False


def test_the_same_number_verified_by_a_second_subject_is_flagged_for_a_person(service_runtime):
    for subject in ("account-a", "account-b"):
        _case_id, attempt_id = upload(service_runtime, subject=subject)
        service.process_attempt(attempt_id)
    with service_runtime.session() as session:
        flags = dict(session.execute(select(VerifiedIdentity.subject_id, VerifiedIdentity.flagged)).all())
    assert flags == {"account-a": False, "account-b": True}


# --- status changes are announced, not pushed into the listeners (issue 10, shape) ----------------------------


def test_verification_service_imports_neither_the_review_queue_nor_webhooks():
    import ast
    from pathlib import Path

    source = Path(service.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    assert not [name for name in imported if name.startswith("ocr_service.review")]
    assert "ocr_service.webhooks" not in imported


def test_every_status_change_is_announced_to_the_subscribers(service_runtime):
    from ocr_service.verification import events

    seen: list[tuple[str, str | None, str]] = []

    def recorder(change: events.StatusChange) -> None:
        seen.append((change.verification.id, change.before.value if change.before else None, change.after.value))

    events.subscribe(recorder)
    try:
        case_id, attempt_id = upload(service_runtime)
        service.process_attempt(attempt_id)
    finally:
        events.unsubscribe(recorder)
    assert seen == [(case_id, "awaiting_images", "processing"), (case_id, "processing", "verified")]
