"""The hosted capture page in a real browser with a real video stream.

Chromium's fake camera plays a ``.y4m`` made at test time from the sample photos
(``samples.video``): a dark card, then a clean one. The page must show the dark frame's hint,
take the photo by itself once the card is good, and the verification ends ``verified``. With a
blurred card on camera and the shutter pressed twice, the case goes to review
(``too_many_attempts``, the server allows 2 failures here). A revoked link stops the page
and an expired one opens a page saying so; neither uploads anything.

With ``OCR_UPDATE_SCREENSHOTS=1`` the 390×844 screenshots go to ``docs/`` (capture-*.png);
otherwise to the test's temporary directory. Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from samples.video import camera_stream
from tests.conftest import SAMPLE_SET
from tests.ocr_service.api_harness import CLEAN, claim_of, make_settings, reset_process_singletons
from tests.ocr_service.test_review_browser import BROWSER_ARGS, CHROMIUM, DOCS, PHONE, free_port, small_png

DARK = "0028_front_low_light.jpg"  # live check: too_dark (光线太暗)
BLURRED = "0023_front_blur.jpg"  # live check and scan: blurry (retake)
MAX_FAILED = 2


@pytest.fixture
def server(tmp_path, engine) -> Iterator[tuple[str, str, object]]:
    """The real app under uvicorn on a free port; yields (base URL, client secret, database)."""
    import uvicorn

    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key

    reset_process_singletons()
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", log_json=True, max_failed_attempts=MAX_FAILED
    )
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        _key, secret = create_api_key(session, "mini-program", ["client"])
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", secret, app.state.db
    finally:
        from ocr_service.queue import dispatch

        uv.should_exit = True
        thread.join(10)
        dispatch.drain(60)
        reset_process_singletons()


@pytest.fixture
def api(server) -> Iterator[httpx.Client]:
    base, secret, _db = server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as client:
        yield client


@pytest.fixture
def phone_with_camera(tmp_path) -> Iterator[Callable]:
    """Opens a 390×844 page in a Chromium whose camera plays the given scenes ((photo, frames) at 5 fps)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "needs Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = []

        @contextmanager
        def open_page(name: str, scenes: list[tuple[str, int]]):
            stream = camera_stream(tmp_path / f"{name}.y4m", [(SAMPLE_SET / photo, n) for photo, n in scenes])
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    *BROWSER_ARGS,
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={stream}",
                ],
            )
            launched.append(browser)
            context = browser.new_context(viewport=PHONE, permissions=["camera"], locale="zh-CN")
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                yield page, errors
            finally:
                browser.close()

        yield open_page


def new_link(api: httpx.Client, subject: str) -> tuple[str, dict]:
    body = {"subject_id": subject, "document_type": "resident_id", "method": "auto", "claim": claim_of(CLEAN)}
    verification_id = api.post("/v1/verifications", json=body).json()["id"]
    link = api.post(f"/v1/verifications/{verification_id}/capture-sessions")
    assert link.status_code == 201, link.text
    return verification_id, link.json()


def shoot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / name))
    small_png(shots / name)


def stats(page) -> dict:
    return page.evaluate("() => window.captureStats")


def report(label: str, figures: dict) -> None:
    times = figures["hintTimes"]
    span = (times[-1] - times[0]) / 1000 if len(times) > 1 else 0
    rate = (len(times) - 1) / span if span else 0
    upload = (
        figures["resultMs"] - figures["uploadStartedMs"] if figures["resultMs"] and figures["uploadStartedMs"] else None
    )
    round_trip = statistics.median(figures["checkMs"]) if figures["checkMs"] else None
    print(
        f"\n[{label}] first hint {figures['firstHintMs']:.0f} ms after navigation start; "
        f"{rate:.1f} hints/s over {span:.1f} s; live-check round trip median "
        f"{round_trip:.0f} ms; upload to result {upload:.0f} ms"
        if upload
        else ""
    )


def test_the_page_shows_the_dark_frames_hint_takes_the_good_card_by_itself_and_the_case_is_verified(
    server, api, phone_with_camera, tmp_path
):
    from playwright.sync_api import expect

    _base, _secret, _db = server
    shots = DOCS if os.environ.get("OCR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    verification_id, link = new_link(api, "applicant-1")
    with phone_with_camera("dark-then-clean", [(DARK, 15), (CLEAN, 40)]) as (page, errors):
        page.goto(link["url"])
        expect(page.locator("#hint")).to_have_text("光线太暗，请到明亮处拍摄", timeout=10_000)
        shoot(page, shots, "capture-hint.png")
        expect(page.locator("#result")).to_have_attribute("data-status", "verified", timeout=60_000)
        expect(page.locator("#result-title")).to_have_text("认证成功")
        figures = stats(page)
        assert figures["captured"] == "auto" and figures["uploads"] == 1
        assert "光线太暗，请到明亮处拍摄" in figures["hintLog"]
        assert figures["hintLog"][-1] == "拍摄中，请保持不动"
        shoot(page, shots, "capture-verified.png")
        assert errors == [], errors
    report("verified", figures)
    assert api.get(f"/v1/verifications/{verification_id}").json()["status"] == "verified"
    assert api.get("/v1/subjects/applicant-1/identity").json()["verification_id"] == verification_id


def test_two_failed_shots_with_the_shutter_send_the_case_to_review(server, api, phone_with_camera, tmp_path):
    from playwright.sync_api import expect

    shots = DOCS if os.environ.get("OCR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    verification_id, link = new_link(api, "applicant-2")
    with phone_with_camera("blurred", [(BLURRED, 10)]) as (page, errors):
        page.goto(link["url"])
        expect(page.locator("#hint")).to_have_text("画面模糊，请保持稳定", timeout=10_000)
        page.get_by_role("button", name="拍照").click()
        expect(page.locator("#result")).to_have_attribute("data-status", "retake", timeout=60_000)
        expect(page.locator("#result-body")).to_contain_text("画面模糊，请保持稳定")
        expect(page.locator("#result-body")).to_contain_text(f"还可自动识别 {MAX_FAILED - 1} 次")
        expect(page.locator("#result")).to_be_focused()
        shoot(page, shots, "capture-retake.png")
        page.get_by_role("button", name="重新拍摄").click()
        expect(page.locator("#hint")).to_have_text("画面模糊，请保持稳定", timeout=10_000)
        page.get_by_role("button", name="拍照").click()
        expect(page.locator("#result")).to_have_attribute("data-status", "in_review", timeout=60_000)
        expect(page.locator("#result-body")).to_contain_text("自动识别失败次数过多，已转人工审核")
        shoot(page, shots, "capture-review.png")
        figures = stats(page)
        assert figures["captured"] == "manual" and figures["uploads"] == 2
        assert errors == [], errors
    report("review", figures)
    case = api.get(f"/v1/verifications/{verification_id}").json()
    assert (case["status"], case["review_reason"]) == ("in_review", "too_many_attempts")


def test_a_link_revoked_while_open_stops_the_page_and_an_expired_one_says_so_and_nothing_is_uploaded(
    server, api, phone_with_camera, tmp_path
):
    from playwright.sync_api import expect

    from ocr_service.capture.models import CaptureSession
    from ocr_service.db import utcnow

    _base, _secret, database = server
    shots = DOCS if os.environ.get("OCR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    revoked_id, revoked = new_link(api, "applicant-3")
    expired_id, expired = new_link(api, "applicant-4")
    with database.session_scope() as session:
        session.execute(
            update(CaptureSession)
            .where(CaptureSession.id == expired["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with phone_with_camera("blurred", [(BLURRED, 10)]) as (page, errors):
        page.goto(revoked["url"])
        expect(page.locator("#hint")).to_have_text("画面模糊，请保持稳定", timeout=10_000)
        gone = api.delete(f"/v1/verifications/{revoked_id}/capture-sessions/{revoked['id']}")
        assert gone.status_code == 204
        expect(page.locator("#result-title")).to_have_text("拍摄链接不可用", timeout=10_000)
        expect(page.locator("#result-body")).to_contain_text("链接已失效")
        expect(page.get_by_role("button", name="拍照")).to_be_hidden()

        response = page.goto(expired["url"])
        assert response.status == 410
        expect(page.locator("#link-error")).to_have_text("链接已过期，请返回应用重新打开拍摄页面")
        shoot(page, shots, "capture-link-expired.png")
        assert not [e for e in errors if "410" not in e], errors
    for verification_id in (revoked_id, expired_id):
        case = api.get(f"/v1/verifications/{verification_id}").json()
        assert (case["status"], case["attempts"]) == ("awaiting_images", [])


@pytest.fixture
def phone_without_camera() -> Iterator:
    """A 360-px-wide page in a Chromium with no camera at all (and none allowed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            yield browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN").new_page()
        finally:
            browser.close()


def test_without_a_camera_the_page_offers_the_album_and_a_photo_from_it_is_verified(server, api, phone_without_camera):
    from playwright.sync_api import expect

    page = phone_without_camera
    verification_id, link = new_link(api, "applicant-5")
    page.goto(link["url"])
    expect(page.locator("#hint")).to_have_text("无法使用相机，请从相册选择身份证照片", timeout=10_000)
    expect(page.get_by_label("从相册选择身份证照片")).to_be_focused()
    # nothing wider than the narrowest phone the page is made for
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    page.get_by_label("从相册选择身份证照片").set_input_files(str(SAMPLE_SET / CLEAN))
    expect(page.locator("#result")).to_have_attribute("data-status", "verified", timeout=60_000)
    assert stats(page)["captured"] == "album"
    assert api.get(f"/v1/verifications/{verification_id}").json()["status"] == "verified"
