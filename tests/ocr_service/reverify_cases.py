"""Stored cases for the re-verification tests and benchmark, built cheaply.

Each case is a verified automatic verification with its stored (encrypted) photo, a finished
attempt carrying the result a real scan of that photo produced, and the verified identity --
the rows ``process_attempt`` would have left -- inserted directly. A few committed sample
photos are reused: each distinct photo is scanned once here (the "stored scan"), and every
case of that photo gets the same result, recorded under an older pipeline version so the
report has a version change to show. A case made "failing" claims a name the photo does not
show, while its stored scan still says accept: today's scan rejects it.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from ocr_service.db import session_scope, utcnow
from tests.conftest import SAMPLE_SET

SAMPLE_FILES = ("0001_front_clean.jpg", "0002_front_clean.jpg", "0003_front_clean.jpg", "0004_front_clean.jpg")
OLD_PIPELINE_VERSION = "0.9.0-old"
WRONG_NAME = "欧阳娜娜"  # not on any sample card: the name check fails


@dataclass(frozen=True)
class BaselineScan:
    decision: str
    reasons: list[str]
    result: dict
    read_number: str
    models_digest: str


@functools.cache
def baseline_scan(file_name: str) -> BaselineScan:
    """The scan of one sample photo with its own claim, as the service would have stored it."""
    from ocr_service.config import get_settings
    from ocr_service.report import scan_result_json
    from pipelines.decode import decode_image
    from pipelines.ocr import get_engine
    from pipelines.scan import Claim, scan

    settings = get_settings()
    label = _label(file_name)
    image = decode_image((SAMPLE_SET / file_name).read_bytes(), settings.decode_limits()).image
    engine = get_engine(settings.ocr_engine, settings.ocr_threads)
    result = scan(image, engine, Claim(label["claim"]["name"], label["claim"]["id_number"]), settings.scan_settings())
    return BaselineScan(
        decision=result.decision.value,
        reasons=[r.value for r in result.reasons],
        result=scan_result_json(result, full_id_number=False),
        read_number=result.fields.value("id_number") if result.fields else "",
        models_digest=result.models_digest,
    )


@functools.cache
def _label(file_name: str) -> dict:
    for line in (SAMPLE_SET / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        if label["file"] == file_name:
            return label
    raise LookupError(file_name)


@dataclass(frozen=True)
class SeededCases:
    client_key_id: str
    attempt_ids: list[str]
    verification_ids: list[str]
    failing_verification_ids: list[str]


def seed_cases(
    count: int, failing: int = 0, files: tuple[str, ...] = SAMPLE_FILES, created_at: datetime | None = None
) -> SeededCases:
    """``count`` stored verified cases (the first ``failing`` of them now fail), in the process database."""
    from ocr_service.auth import create_api_key
    from ocr_service.crypto import get_cipher
    from ocr_service.storage import get_blob_store
    from ocr_service.verification import service
    from ocr_service.verification.models import (
        Attempt,
        AttemptStatus,
        DocumentType,
        ImageSide,
        Method,
        StoredImage,
        Verification,
        VerificationStatus,
        VerifiedIdentity,
        new_id,
    )
    from pipelines.reasons import Decision

    cipher = get_cipher()
    blobs = get_blob_store()
    photos = {name: (SAMPLE_SET / name).read_bytes() for name in files}
    baselines = {name: baseline_scan(name) for name in files}
    when = created_at or utcnow()
    attempt_ids, verification_ids, failing_ids = [], [], []
    with session_scope() as session:
        client, _secret = create_api_key(session, f"reverify seed {secrets.token_hex(3)}", ["client"])
        for i in range(count):
            name = files[i % len(files)]
            label, baseline, photo = _label(name), baselines[name], photos[name]
            assert baseline.decision == Decision.ACCEPT.value, f"sample {name} should scan as accept"
            claim_name = WRONG_NAME if i < failing else label["claim"]["name"]
            number = label["claim"]["id_number"]
            verification = Verification(
                id=new_id(),
                client_key_id=client.id,
                subject_id=f"seed-{i}-{secrets.token_hex(3)}",
                document_type=DocumentType.RESIDENT_ID,
                method=Method.AUTO,
                status=VerificationStatus.VERIFIED,
                claim_name=claim_name,
                claim_number_index=cipher.blind_index(number),
                decision_reasons=[],
                created_at=when,
                updated_at=when,
                decided_at=when,
            )
            verification.claim_number_enc = cipher.encrypt_text(number, service._claim_aad(verification.id))
            image = StoredImage(
                id=new_id(),
                verification_id=verification.id,
                blob_id=blobs.put(photo, service._image_aad(verification.id)),
                sha256="0" * 64,
                content_type="image/jpeg",
                size_bytes=len(photo),
                created_at=when,
            )
            attempt = Attempt(
                id=new_id(),
                verification_id=verification.id,
                image_id=image.id,
                side=ImageSide.FRONT,
                status=AttemptStatus.DONE,
                decision=Decision.ACCEPT,
                reasons=baseline.reasons,
                result=baseline.result,
                pipeline_version=OLD_PIPELINE_VERSION,
                models_digest=baseline.models_digest,
                created_at=when,
                finished_at=when,
                task_attempts=1,
            )
            attempt.read_number_enc = cipher.encrypt_text(baseline.read_number, service._read_aad(attempt.id))
            identity = VerifiedIdentity(
                id=new_id(),
                client_key_id=client.id,
                subject_id=verification.subject_id,
                verification_id=verification.id,
                name=claim_name,
                document_type=DocumentType.RESIDENT_ID,
                number_index=cipher.blind_index(number),
                method=Method.AUTO,
                verified_at=when,
                flagged=False,
            )
            identity.number_enc = cipher.encrypt_text(number, service._identity_aad(identity.id))
            session.add(verification)
            session.flush()
            session.add_all([image])
            session.flush()
            session.add_all([attempt, identity])
            attempt_ids.append(attempt.id)
            verification_ids.append(verification.id)
            if i < failing:
                failing_ids.append(verification.id)
        client_id = client.id
    return SeededCases(client_id, attempt_ids, verification_ids, failing_ids)
