"""Capture links over HTTP: created with a client key, opened with the token alone, revocable, audited.

The browser side (the page with a fake camera) is ``test_capture_browser.py``; here the page's
three calls are made directly, on both backends (``harness``).
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from ocr_service.capture.models import CaptureAction, CaptureEvent, CaptureSession
from ocr_service.db import utcnow
from ocr_service.verification.models import Attempt, StoredImage
from tests.ocr_service.api_harness import (
    BLURRED,
    CLEAN,
    harness,
    harness_callback_url,
    harness_settings,
    photo,
)


def new_link(harness, subject: str = "user-1", key: str = "client") -> tuple[str, dict]:
    verification = harness.create(subject, key=key)
    response = harness.request("POST", f"/v1/verifications/{verification['id']}/capture-sessions", key=key)
    assert response.status_code == 201, response.text
    return verification["id"], response.json()


def path_of(link: dict) -> str:
    return re.sub(r"^https?://[^/]+", "", link["url"])


def frame(harness, link: dict, name: str):
    return harness.request(
        "POST", f"{path_of(link)}/quality", key=None, files={"image": ("f.jpg", photo(name), "image/jpeg")}
    )


def upload(harness, link: dict, name: str):
    return harness.request(
        "POST", f"{path_of(link)}/images", key=None, files={"image": ("p.jpg", photo(name), "image/jpeg")}
    )


def events(harness, capture_session_id: str) -> list[tuple[str, str | None]]:
    with harness.database.session_scope() as session:
        rows = session.scalars(
            select(CaptureEvent).where(CaptureEvent.capture_session_id == capture_session_id).order_by(CaptureEvent.id)
        )
        return [(row.action.value, row.outcome) for row in rows]


def test_a_link_opens_a_page_whose_only_script_runs_by_the_responses_nonce(harness):
    verification_id, link = new_link(harness)
    assert link["verification_id"] == verification_id
    token = path_of(link).rsplit("/", 1)[1]
    assert len(token) >= 43 and path_of(link) == f"/capture/{token}"
    page = harness.request("GET", path_of(link), key=None)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy).group(1)
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer" and "no-store" in page.headers["cache-control"]
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts == [f' nonce="{nonce}"']
    assert harness.secrets["client"] not in page.text
    assert 'accept="image/*"' in page.text and "getUserMedia" in page.text


def test_the_token_is_stored_only_as_its_hash(harness):
    _verification_id, link = new_link(harness)
    token = path_of(link).rsplit("/", 1)[1]
    with harness.database.session_scope() as session:
        stored = session.get(CaptureSession, link["id"])
        assert stored.token_hash != token and token not in stored.token_hash
        assert stored.expires_at - stored.created_at == timedelta(minutes=harness.settings.capture_session_minutes)


def test_the_links_quality_check_is_the_live_check_of_the_api(harness):
    _verification_id, link = new_link(harness)
    for name in (CLEAN, BLURRED):
        by_link = frame(harness, link, name)
        by_key = harness.request("POST", "/v1/quality", files={"image": ("f.jpg", photo(name), "image/jpeg")})
        assert by_link.status_code == by_key.status_code == 200
        assert (by_link.json()["ok"], by_link.json()["reasons"]) == (by_key.json()["ok"], by_key.json()["reasons"])
    assert frame(harness, link, BLURRED).json()["reasons"][0]["message"] == "画面模糊，请保持稳定"


def test_a_photo_uploaded_through_the_link_is_scanned_and_the_link_reads_the_result(harness):
    verification_id, link = new_link(harness)
    retake = upload(harness, link, BLURRED)
    assert retake.status_code == 200, retake.text
    assert retake.json()["status"] == "retake" and retake.json()["status_url"] == f"{path_of(link)}/status"
    verified = upload(harness, link, CLEAN)
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    status = harness.request("GET", f"{path_of(link)}/status", key=None).json()
    assert status["status"] == "verified" and set(status) == {
        "status",
        "reasons",
        "review_reason",
        "attempts_left",
        "next_action",
    }
    assert harness.get(verification_id)["status"] == "verified"  # the client sees the same case
    assert [action for action, _ in events(harness, link["id"])] == [
        "created",
        "upload",
        "upload",
        "status",
    ]


def test_only_the_key_that_owns_the_verification_gets_a_link_and_a_key_is_needed(harness):
    verification = harness.create("user-1")
    other = harness.request("POST", f"/v1/verifications/{verification['id']}/capture-sessions", key="other")
    assert other.status_code == 404
    anonymous = harness.request("POST", f"/v1/verifications/{verification['id']}/capture-sessions", key=None)
    assert anonymous.status_code == 401


def test_a_revoked_link_shows_a_chinese_page_and_takes_no_upload(harness):
    verification_id, link = new_link(harness)
    revoke = harness.request("DELETE", f"/v1/verifications/{verification_id}/capture-sessions/{link['id']}")
    assert revoke.status_code == 204
    page = harness.request("GET", path_of(link), key=None)
    assert page.status_code == 410 and "链接已失效" in page.text and "<script" not in page.text
    refused = upload(harness, link, CLEAN)
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "capture_link_revoked"
    assert frame(harness, link, CLEAN).status_code == 410
    assert harness.count(Attempt, Attempt.verification_id == verification_id) == 0
    assert harness.count(StoredImage, StoredImage.verification_id == verification_id) == 0
    assert events(harness, link["id"]) == [
        ("created", None),
        ("revoked", None),
        ("refused", "page:capture_link_revoked"),
        ("refused", "upload:capture_link_revoked"),
        ("refused", "quality:capture_link_revoked"),
    ]


def test_an_expired_link_shows_a_chinese_page_and_takes_no_upload(harness):
    verification_id, link = new_link(harness)
    with harness.database.session_scope() as session:
        session.execute(
            update(CaptureSession)
            .where(CaptureSession.id == link["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    page = harness.request("GET", path_of(link), key=None)
    assert page.status_code == 410 and "链接已过期" in page.text
    refused = upload(harness, link, CLEAN)
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "capture_link_expired"
    assert harness.count(Attempt, Attempt.verification_id == verification_id) == 0


def test_an_unknown_token_is_not_found_and_a_link_dies_with_its_key(harness):
    unknown = harness.request("GET", "/capture/" + "x" * 43, key=None)
    assert unknown.status_code == 404 and "链接无效" in unknown.text
    assert harness.request("GET", "/capture/" + "x" * 500 + "/status", key=None).status_code == 404
    _verification_id, link = new_link(harness)
    from ocr_service.auth import revoke_api_key

    with harness.database.session_scope() as session:
        revoke_api_key(session, harness.key_ids["client"])
    assert harness.request("GET", f"{path_of(link)}/status", key=None).status_code == 410


def test_revoking_an_unknown_link_is_not_found(harness):
    verification_id, _link = new_link(harness)
    missing = harness.request("DELETE", f"/v1/verifications/{verification_id}/capture-sessions/{'0' * 36}")
    assert missing.status_code == 404
    assert CaptureAction.REFUSED.value == "refused"


def test_a_link_asks_for_the_back_when_the_case_needs_it_and_both_sides_go_to_review(harness):
    verification = harness.create("user-1", method="manual")
    response = harness.request("POST", f"/v1/verifications/{verification['id']}/capture-sessions")
    link = response.json()
    status = harness.request("GET", f"{path_of(link)}/status", key=None).json()
    assert (status["status"], status["next_action"]) == ("awaiting_images", "upload_front")
    front = upload(harness, link, CLEAN)
    assert (front.json()["status"], front.json()["next_action"]) == ("awaiting_images", "upload_back")
    back = harness.request(
        "POST",
        f"{path_of(link)}/images",
        key=None,
        files={"image": ("b.jpg", photo("0019_back_clean.jpg"), "image/jpeg")},
        data={"side": "back"},
    )
    assert back.status_code == 200, back.text
    assert (back.json()["status"], back.json()["next_action"]) == ("in_review", "wait_for_review")


def test_a_link_checks_at_most_its_frames_per_minute(harness):
    _verification_id, link = new_link(harness)
    harness.app.state.settings = harness.settings.model_copy(update={"capture_frames_per_minute": 2})
    answers = [frame(harness, link, CLEAN).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
