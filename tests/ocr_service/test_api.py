"""The applicant-side API end to end over HTTP: real sample photos, real scans, SQLite and PostgreSQL.

Every test here runs on both backends (``harness`` takes ``database_url``) and, on teardown,
checks that no response fetched without ``identity:full`` and no log line holds a full ID number.
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ocr_service.verification.models import Attempt, IdempotencyRecord, StatusEvent, StoredImage, Verification
from tests.conftest import ROOT
from tests.ocr_service.api_harness import (
    BLURRED,
    CLEAN,
    LABELS,
    claim_of,
    harness,
    harness_callback_url,
    harness_settings,
    photo,
)

CLEAN_NUMBER = LABELS[CLEAN]["claim"]["id_number"]  # 142536197609041151
OTHER_VALID_NUMBER = LABELS["0002_front_clean.jpg"]["claim"]["id_number"]


def masked(number: str) -> str:
    return number[0] + "*" * (len(number) - 2) + number[-1]


# --- the automatic path -------------------------------------------------------------------------


def test_a_clean_photo_with_its_claim_is_verified_and_the_identity_is_masked(harness):
    created = harness.create("user-1")
    assert created["status"] == "awaiting_images"
    assert created["next_action"] == "upload_front"
    assert created["claim"]["document_number"] == masked(CLEAN_NUMBER)
    assert created["attempts_left"] == 5

    response = harness.upload(created["id"], CLEAN)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["decision"] == "accept"
    assert answer["status"] == "verified"
    assert answer["attempts_left"] == 5
    assert answer["next_action"] == "none"
    assert answer["status_url"] == f"/v1/verifications/{created['id']}"

    identity = harness.request("GET", "/v1/subjects/user-1/identity").json()
    fields = LABELS[CLEAN]["fields"]
    assert identity["name"] == fields["name"]
    assert identity["sex"] == fields["sex"]
    assert identity["ethnicity"] == fields["ethnicity"]
    assert "birth_date" not in identity  # with a masked number it would give the number back
    assert identity["document_type"] == "resident_id"
    assert identity["document_number"] == masked(CLEAN_NUMBER) == "1****************1"
    assert identity["document_number_masked"] is True
    assert identity["method"] == "auto"
    assert identity["verification_id"] == created["id"]
    assert identity["verified_at"]

    view = harness.get(created["id"])
    assert [e["to_status"] for e in view["history"]] == ["awaiting_images", "processing", "verified"]
    assert view["decided_at"] is not None
    assert [a["decision"] for a in view["attempts"]] == ["accept"]


def test_the_full_number_is_shown_only_to_a_key_with_identity_full(harness):
    created = harness.create("user-2", key="full")
    assert harness.upload(created["id"], CLEAN, key="full").json()["status"] == "verified"
    full = harness.request("GET", "/v1/subjects/user-2/identity", key="full").json()
    assert full["document_number"] == CLEAN_NUMBER
    assert full["document_number_masked"] is False
    assert full["birth_date"] == LABELS[CLEAN]["fields"]["birth"]
    # the verification itself still shows the claim masked, whoever asks
    assert harness.get(created["id"], key="full")["claim"]["document_number"] == masked(CLEAN_NUMBER)


def test_a_blurred_photo_asks_for_a_retake_and_a_clean_one_then_verifies(harness):
    created = harness.create("user-3")
    first = harness.upload(created["id"], BLURRED).json()
    assert first["decision"] == "retake"
    assert first["status"] == "retake"
    assert first["reasons"] == [{"code": "blurry", "message": "画面模糊，请保持稳定"}]
    assert first["attempts_left"] == 4
    assert first["next_action"] == "upload_front"

    second = harness.upload(created["id"], CLEAN).json()
    assert second["decision"] == "accept"
    assert second["status"] == "verified"
    assert second["attempts_left"] == 4  # the failed attempt still counts for the subject
    view = harness.get(created["id"])
    assert [a["decision"] for a in view["attempts"]] == ["retake", "accept"]
    assert [a["counts_as_failure"] for a in view["attempts"]] == [True, False]


def test_a_claim_that_contradicts_the_card_is_rejected_and_asks_for_the_claim_not_a_photo(harness):
    claim = {"name": LABELS[CLEAN]["claim"]["name"], "document_number": OTHER_VALID_NUMBER}
    created = harness.create("user-4", claim)
    answer = harness.upload(created["id"], CLEAN).json()
    assert answer["decision"] == "reject"
    assert answer["status"] == "retake"
    assert "id_number_mismatch" in [r["code"] for r in answer["reasons"]]
    # issue 13: a mistyped claim is corrected (tests/ocr_service/test_claim_correction.py), not re-photographed
    assert answer["next_action"] == "correct_claim"
    assert answer["attempts_left"] == 5
    assert harness.get(created["id"])["failed_attempts"] == 0
    assert harness.request("GET", "/v1/subjects/user-4/identity").status_code == 404


def test_five_failures_across_verifications_send_the_subject_to_manual_review(harness):
    first = harness.create("user-5")
    for left in (4, 3, 2):
        answer = harness.upload(first["id"], BLURRED).json()
        assert (answer["status"], answer["attempts_left"]) == ("retake", left)
    # failures are counted per subject, not per verification
    second = harness.create("user-5")
    assert second["attempts_left"] == 2
    assert harness.upload(second["id"], BLURRED).json()["attempts_left"] == 1
    fifth = harness.upload(second["id"], BLURRED).json()
    assert fifth["decision"] == "retake"
    assert fifth["status"] == "in_review"
    assert fifth["attempts_left"] == 0
    assert fifth["review_reason"] == "too_many_attempts"
    assert fifth["reasons"][0] == {
        "code": "too_many_attempts",
        "message": "自动识别失败次数过多，已转人工审核，请耐心等待",
    }
    assert fifth["next_action"] == "wait_for_review"

    # in review: no more uploads, and no new verification until the applicant withdraws
    refused = harness.upload(second["id"], CLEAN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "illegal_transition"
    assert refused.json()["error"]["details"]["current_status"] == "in_review"
    pending = harness.request(
        "POST",
        "/v1/verifications",
        json={"subject_id": "user-5", "document_type": "resident_id", "claim": claim_of(CLEAN)},
    )
    assert pending.status_code == 409
    assert pending.json()["error"]["code"] == "verification_pending"

    # 003: 撤回认证后可重新进行"身份证(自动核验)": withdrawing opens a new automatic episode,
    # the count restarts and a clean photo is scanned and verified
    assert harness.request("POST", f"/v1/verifications/{second['id']}/withdraw").status_code == 200
    third = harness.create("user-5")
    assert (third["attempts_left"], third["failed_attempts"]) == (5, 0)
    verified = harness.upload(third["id"], CLEAN).json()
    assert verified["decision"] == "accept"
    assert verified["status"] == "verified"
    assert harness.request("GET", "/v1/subjects/user-5/identity").status_code == 200
    # the history stays: the five failures are still there, in their own verifications
    failures = Attempt.decision.in_(("retake", "reject"))
    assert harness.count(Attempt, Attempt.verification_id.in_((first["id"], second["id"])), failures) == 5


@pytest.mark.parametrize("harness_settings", [{"max_failed_attempts": 2, "max_daily_attempts": 3}])
def test_the_daily_cap_still_stops_scanning_a_subject_that_keeps_withdrawing(harness):
    first = harness.create("user-5b")
    assert harness.upload(first["id"], BLURRED).json()["status"] == "retake"
    assert harness.upload(first["id"], BLURRED).json()["review_reason"] == "too_many_attempts"
    assert harness.request("POST", f"/v1/verifications/{first['id']}/withdraw").status_code == 200

    # a new episode, but only one scan left today
    second = harness.create("user-5b")
    assert second["attempts_left"] == 1
    capped = harness.upload(second["id"], BLURRED).json()
    assert (capped["status"], capped["review_reason"], capped["attempts_left"]) == (
        "in_review",
        "daily_attempts_exhausted",
        0,
    )
    assert capped["reasons"][0] == {
        "code": "daily_attempts_exhausted",
        "message": "今日自动识别次数已达上限，已转人工审核，请耐心等待",
    }
    assert harness.request("POST", f"/v1/verifications/{second['id']}/withdraw").status_code == 200

    # withdrawing again does not buy another scan today: the photo goes to a person unscanned
    third = harness.create("user-5b")
    assert third["attempts_left"] == 0
    routed = harness.upload(third["id"], CLEAN).json()
    assert (routed["status"], routed["decision"], routed["review_reason"]) == (
        "in_review",
        None,
        "daily_attempts_exhausted",
    )
    assert harness.count(Attempt, Attempt.verification_id == third["id"], Attempt.decision.is_not(None)) == 0


def test_a_scan_decided_review_goes_to_the_queue_with_its_reasons(harness):
    recapture = "0022_front_recapture.jpg"
    created = harness.create("user-6", claim_of(recapture))
    answer = harness.upload(created["id"], recapture).json()
    assert answer["decision"] == "review"
    assert answer["status"] == "in_review"
    assert answer["review_reason"] == "scan_needs_review"
    assert [r["code"] for r in answer["reasons"]] == ["recapture_suspected"]
    assert answer["attempts_left"] == 5  # review is not a failure


def test_an_upload_that_is_not_finished_in_time_answers_202_with_a_status_url(harness):
    harness.app.state.settings = harness.settings.model_copy(update={"result_wait_seconds": 0.0})
    created = harness.create("user-7")
    response = harness.upload(created["id"], CLEAN)
    assert response.status_code == 202
    answer = response.json()
    assert answer["attempt_status"] in ("queued", "running")
    assert answer["decision"] is None
    assert response.headers["location"] == answer["status_url"]
    deadline = time.monotonic() + 20
    while (view := harness.get(created["id"]))["status"] == "processing" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view["status"] == "verified"


# --- manual review and withdrawal ---------------------------------------------------------------


def test_manual_review_takes_both_sides_and_the_applicant_can_withdraw_and_verify_automatically(harness):
    created = harness.create("user-8", method="manual")
    front = harness.upload(created["id"], CLEAN).json()
    assert front["status"] == "awaiting_images"
    assert front["decision"] is None
    assert front["next_action"] == "upload_back"
    back = harness.upload(created["id"], "0019_back_clean.jpg", side="back").json()
    assert back["status"] == "in_review"
    assert back["review_reason"] == "manual_method"
    assert back["next_action"] == "wait_for_review"
    assert harness.count(StoredImage, StoredImage.verification_id == created["id"]) == 2

    withdrawn = harness.request("POST", f"/v1/verifications/{created['id']}/withdraw")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    again = harness.request("POST", f"/v1/verifications/{created['id']}/withdraw")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "illegal_transition"
    assert again.json()["error"]["details"]["current_status"] == "withdrawn"
    assert again.json()["error"]["message_zh"]

    redo = harness.create("user-8")
    assert harness.upload(redo["id"], CLEAN).json()["status"] == "verified"


def test_other_documents_go_straight_to_review_with_their_photo(harness):
    created = harness.create(
        "user-9", {"name": "JOHN SMITH", "document_number": "E12345678"}, document_type="foreign_passport"
    )
    answer = harness.upload(created["id"], CLEAN).json()
    assert answer["status"] == "in_review"
    assert answer["review_reason"] == "document_type_manual"
    assert answer["reasons"] == [{"code": "document_type_manual", "message": "该证件类型需人工审核，请耐心等待"}]
    assert harness.count(StoredImage, StoredImage.verification_id == created["id"]) == 1
    assert len(harness.blob_files()) == 1


# Test numbers only: GB 11643 check characters, the permit prefixes of the manual's non-mainland holders.
HK_RESIDENCE_PERMIT_NUMBER = "810000199001011230"
FOREIGN_PERMANENT_RESIDENCE_NUMBER = "911840198505050019"


@pytest.mark.parametrize(
    ("number", "document_type", "reason", "says"),
    [
        (HK_RESIDENCE_PERMIT_NUMBER, "hmt_residence_permit", "residence_permit_number", "港澳台居民居住证"),
        (
            FOREIGN_PERMANENT_RESIDENCE_NUMBER,
            "foreign_permanent_residence",
            "foreign_permanent_residence_number",
            "外国人永久居留身份证",
        ),
    ],
)
def test_a_permit_number_typed_as_a_resident_id_goes_to_manual_review_saying_why(
    harness, number, document_type, reason, says
):
    created = harness.create("user-9a", {"name": "陈大文", "document_number": number})
    assert (created["document_type"], created["method"]) == (document_type, "manual")
    assert created["review_reason"] == reason
    [why] = created["reasons"]
    assert why["code"] == reason
    assert says in why["message"] and "自动核验" in why["message"]
    assert created["next_action"] == "upload_front"

    assert harness.upload(created["id"], CLEAN).json()["next_action"] == "upload_back"
    answer = harness.upload(created["id"], "0019_back_clean.jpg", side="back").json()
    assert (answer["status"], answer["decision"], answer["review_reason"]) == ("in_review", None, reason)
    assert answer["reasons"] == [why]
    # never scanned as a mainland card
    assert harness.count(Attempt, Attempt.verification_id == created["id"], Attempt.decision.is_not(None)) == 0


@pytest.mark.parametrize(
    ("document_type", "number"),
    [
        ("hmt_residence_permit", HK_RESIDENCE_PERMIT_NUMBER),
        ("hmt_residence_permit", "830000198812120042"),
        ("foreign_permanent_residence", FOREIGN_PERMANENT_RESIDENCE_NUMBER),
        ("foreign_permanent_residence", "USA310055080101"),  # the 2004 card: nationality letters and 12 digits
        ("hk_macau_permit", "H12345678"),
        ("taiwan_permit", "12345678"),
        ("foreign_passport", "E12345678"),
        ("military", "南字第2016001号"),
    ],
)
def test_every_document_type_of_the_manual_is_accepted_on_the_manual_route(harness, document_type, number):
    created = harness.create("user-9b", {"name": "陈大文", "document_number": number}, document_type=document_type)
    assert created["document_type"] == document_type
    answer = harness.upload(created["id"], CLEAN).json()
    if answer["status"] != "in_review":  # a two-sided card
        answer = harness.upload(created["id"], "0019_back_clean.jpg", side="back").json()
    assert answer["status"] == "in_review"
    assert answer["decision"] is None


@pytest.mark.parametrize(
    ("document_type", "number", "format_named"),
    [
        ("hmt_residence_permit", CLEAN_NUMBER, "810000"),  # a mainland number
        ("hmt_residence_permit", "810000199001011231", "校验码"),  # wrong check character
        ("foreign_permanent_residence", "811840198505050019", "以9开头"),
        ("foreign_permanent_residence", "E12345678", "以9开头"),
    ],
)
def test_a_malformed_permit_number_is_refused_naming_the_format(harness, document_type, number, format_named):
    response = harness.request(
        "POST",
        "/v1/verifications",
        json={
            "subject_id": "user-9c",
            "document_type": document_type,
            "claim": {"name": "陈大文", "document_number": number},
        },
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert format_named in error["message_zh"]
    assert error["details"]["errors"][0]["loc"] == ["body", "claim", "document_number"]


def test_withdrawing_a_case_that_is_not_in_review_is_an_illegal_transition(harness):
    created = harness.create("user-10")
    response = harness.request("POST", f"/v1/verifications/{created['id']}/withdraw")
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"current_status": "awaiting_images", "action": "withdraw"}


def test_an_automatic_case_takes_no_back_side(harness):
    created = harness.create("user-11")
    response = harness.upload(created["id"], "0019_back_clean.jpg", side="back")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "side_not_requested"
    assert harness.count(StoredImage) == 0


# --- idempotency ----------------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_first_answer_and_never_scans_twice(harness):
    created = harness.create("user-12")
    first = harness.upload(created["id"], BLURRED, idempotency_key="upload-1")
    again = harness.upload(created["id"], BLURRED, idempotency_key="upload-1")
    assert first.status_code == again.status_code == 200
    assert again.json()["attempt_id"] == first.json()["attempt_id"]
    assert again.json()["replayed"] is True and first.json()["replayed"] is False
    assert again.json()["decision"] == first.json()["decision"] == "retake"
    assert harness.count(Attempt, Attempt.verification_id == created["id"]) == 1
    assert harness.count(StoredImage) == 1
    assert len(harness.blob_files()) == 1
    assert harness.get(created["id"])["failed_attempts"] == 1

    # the same key for another verification, or another photo, is a different request
    other = harness.create("user-13")
    elsewhere = harness.upload(other["id"], BLURRED, idempotency_key="upload-1")
    assert elsewhere.status_code == 409
    assert elsewhere.json()["error"]["code"] == "duplicate_request"
    different_photo = harness.upload(created["id"], CLEAN, idempotency_key="upload-1")
    assert different_photo.status_code == 409
    assert different_photo.json()["error"]["code"] == "duplicate_request"
    assert harness.count(StoredImage) == 1
    assert harness.count(IdempotencyRecord) == 1


# --- bad input ------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG declaring width x height pixels in a few hundred kilobytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 200, 200)).save(buffer, "PNG")
    return buffer.getvalue()


BAD_UPLOADS = {
    "empty_file": (b"", 422, "上传的文件为空"),
    "not_an_image": (b"%PDF-1.7 this is a document, not a photo" * 10, 422, "文件不是图片，请上传JPG或PNG照片"),
    "truncated_image": (photo(CLEAN)[:40_000], 422, "图片不完整，请重新上传"),
    "too_many_pixels": (_png_bomb(), 422, "图片尺寸过大，请上传普通照片"),
    "image_too_small": (_png(20, 20), 422, "图片太小，无法识别"),
    "unsupported_format": (b"GIF89a" + b"\x00" * 200, 415, "不支持的图片格式，请上传JPG或PNG照片"),
    # over max_upload_bytes (1 MiB here) but inside the form overhead: refused by the decoder
    "file_too_large": (photo(CLEAN).ljust(1024 * 1024 + 1000, b"\0"), 413, "文件过大，请上传20MB以内的照片"),
}


def test_every_bad_upload_has_its_own_error_and_leaves_nothing_stored(harness):
    created = harness.create("user-14")
    for code, (data, status, message_zh) in BAD_UPLOADS.items():
        response = harness.upload(created["id"], data)
        assert response.status_code == status, (code, response.text)
        error = response.json()["error"]
        assert error["code"] == code
        assert error["message_zh"] == message_zh
        assert error["message"]
        # also the live quality check
        quality = harness.request("POST", "/v1/quality", files={"image": ("f.jpg", data, "image/jpeg")})
        assert (quality.status_code, quality.json()["error"]["code"]) == (status, code)
    assert harness.count(StoredImage) == 0
    assert harness.count(Attempt) == 0
    assert harness.blob_files() == []
    assert harness.get(created["id"])["status"] == "awaiting_images"
    assert harness.count(StatusEvent, StatusEvent.verification_id == created["id"]) == 1


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(harness):
    created = harness.create("user-15")
    response = harness.upload(created["id"], b"\xff\xd8\xff" + bytes(3 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert harness.count(StoredImage) == 0 and harness.blob_files() == []


def test_a_json_body_over_its_own_limit_is_refused_with_413_json_too_large_before_parsing(harness):
    oversized = b'{"subject_id": "user-json", "padding": "' + b"x" * (harness.settings.max_json_bytes + 1) + b'"}'
    for headers in ({"Content-Type": "application/json"}, {"Content-Type": "application/json; charset=utf-8"}):
        response = harness.request("POST", "/v1/verifications", content=oversized, headers=headers)
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "json_too_large"
        assert error["details"]["max_bytes"] == harness.settings.max_json_bytes
        assert "照片" not in error["message_zh"] and "photo" not in error["message"]
    # sent in chunks without a Content-Length: cut off as soon as it passes the limit
    chunks = (oversized[i : i + 65536] for i in range(0, len(oversized), 65536))
    response = harness.request(
        "POST", "/v1/verifications", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "json_too_large")
    assert harness.settings.max_json_bytes == 1024 * 1024  # the default


def test_a_missing_image_or_a_bad_claim_is_a_validation_error_that_does_not_echo_input(harness):
    created = harness.create("user-16")
    response = harness.request("POST", f"/v1/verifications/{created['id']}/images", data={"side": "front"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"

    bad_number = CLEAN_NUMBER[:-1] + ("0" if CLEAN_NUMBER[-1] != "0" else "1")  # wrong check digit
    response = harness.request(
        "POST",
        "/v1/verifications",
        json={"subject_id": "user-16", "claim": {"name": "陶超淼", "document_number": bad_number}},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["message_zh"] == "身份证号码格式不正确，请检查后重新填写"
    assert bad_number not in response.text

    response = harness.request("POST", "/v1/verifications", json={"subject_id": "has spaces", "claim": {}})
    assert response.status_code == 422
    assert all("input" not in problem for problem in response.json()["error"]["details"]["errors"])


# --- access -----------------------------------------------------------------------------------------


def test_keys_are_required_and_one_client_cannot_see_anothers_verifications(harness):
    created = harness.create("user-17")
    anonymous = harness.request("GET", f"/v1/verifications/{created['id']}", key=None)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    stranger = harness.request("GET", f"/v1/verifications/{created['id']}", key="other")
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"
    assert harness.upload(created["id"], CLEAN, key="other").status_code == 404
    assert harness.count(StoredImage) == 0


# --- the quality check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ok", "codes"),
    [
        (CLEAN, True, []),
        (BLURRED, False, ["blurry"]),
        ("0021_none_paper.jpg", False, ["no_card"]),
    ],
)
def test_the_quality_check_answers_with_chinese_prompts_and_stores_nothing(harness, name, ok, codes):
    response = harness.request("POST", "/v1/quality", files={"image": (name, photo(name), "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is ok
    assert [r["code"] for r in body["reasons"]] == codes
    if name == "0021_none_paper.jpg":
        assert body["reasons"][0]["message"] == "未检测到身份证，请将身份证放入框内"
        assert body["corners"] is None
    else:
        assert len(body["corners"]) == 4
        assert body["frame_size"] == [1280, 960]
    assert harness.count(StoredImage) == 0 and harness.count(Verification) == 0


# --- operations ---------------------------------------------------------------------------------------


def test_health_readiness_metrics_and_the_request_id(harness):
    assert harness.request("GET", "/healthz", key=None).json() == {"status": "ok", "checks": {}}
    ready = harness.request("GET", "/readyz", key=None)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "models": "ok"}
    created = harness.create("user-18")
    harness.upload(created["id"], CLEAN)
    metrics = harness.request("GET", "/metrics", key=None).text
    assert 'ocr_http_requests_total{method="POST",route="/v1/verifications",status="201"}' in metrics
    assert 'ocr_scans_total{decision="accept"}' in metrics
    assert "ocr_queue_wait_seconds_count" in metrics
    response = harness.request("GET", "/healthz", key=None, headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_unknown_routes_and_unexpected_errors_use_the_one_error_shape(harness):
    missing = harness.request("GET", "/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "Not Found", "message_zh": "资源不存在", "details": {}}
    }

    def explode() -> None:
        raise RuntimeError(f"boom with {CLEAN_NUMBER}")  # the message must not reach the log

    harness.app.add_api_route("/explode", explode)
    # raise_server_exceptions: the exception must not escape the app (the server would log it)
    response = TestClient(harness.app, raise_server_exceptions=True).get("/explode")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["error"]["message_zh"]
    assert response.headers["x-request-id"]


# --- the OpenAPI document -----------------------------------------------------------------------------


def test_the_committed_openapi_document_matches_the_app(harness):
    from ocr_service.app import openapi_schema

    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == openapi_schema() == harness.app.openapi(), (
        "docs/openapi.json is stale: run `ocr-service openapi > docs/openapi.json`"
    )
    paths = committed["paths"]
    for path in (
        "/v1/quality",
        "/v1/verifications",
        "/v1/verifications/{verification_id}",
        "/v1/verifications/{verification_id}/images",
        "/v1/verifications/{verification_id}/withdraw",
        "/v1/subjects/{subject_id}/identity",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    upload = paths["/v1/verifications/{verification_id}/images"]["post"]
    assert {"200", "202", "409", "413", "415", "422"} <= set(upload["responses"])
    assert committed["components"]["schemas"]["UploadOut"]["examples"]


def test_the_openapi_command_prints_the_document(tmp_path: Path):
    from typer.testing import CliRunner

    from ocr_service.cli import app

    result = CliRunner().invoke(app, ["openapi"], env={"OCR_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["info"]["title"] == "ID-document OCR verification service"


@pytest.mark.parametrize("harness_settings", [{"broker_url": "redis://127.0.0.1:1/0"}])
def test_readiness_fails_with_the_error_shape_when_the_broker_is_down(harness):
    response = harness.request("GET", "/readyz", key=None)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert error["details"]["checks"] == {"database": "ok", "broker": "error: unreachable", "models": "ok"}


def test_the_serve_command_takes_host_port_and_workers():
    from typer.testing import CliRunner

    from ocr_service.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers"):
        assert option in result.output


def test_a_wrong_method_names_every_method_the_path_serves_in_chinese_too(harness):
    # GET and POST /v1/declarations live in different routers; Allow must still name both
    response = harness.request("OPTIONS", "/v1/declarations")
    assert response.status_code == 405
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.json()["error"]["message_zh"] == "不支持该请求方法"
