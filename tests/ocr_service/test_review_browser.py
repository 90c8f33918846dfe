"""The console in a real browser: Playwright driving Debian's Chromium against a running server.

A reviewer signs in, takes the next case, sees the photo, approves, and the client API shows
the identity verified; then a second case is rejected with a reason the mini-program shows.
With ``OCR_UPDATE_SCREENSHOTS=1`` the queue and case pages are saved to ``docs/`` (the README
shows them); otherwise the screenshots go to the test's temporary directory.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocr_service.review.service import create_reviewer
from tests.ocr_service.api_harness import CLEAN, claim_of, make_settings, photo, reset_process_singletons

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "correct horse battery"
BACK = "0019_back_clean.jpg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path, engine) -> Iterator[tuple[str, dict[str, str]]]:
    """The real app under uvicorn on a free port; yields (base URL, API key secrets)."""
    import uvicorn

    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key

    reset_process_singletons()
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", log_json=True)
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        _key, client_secret = create_api_key(session, "mini-program", ["client"])
        create_reviewer(session, "alice", PASSWORD, "reviewer")
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", {"client": client_secret}
    finally:
        from ocr_service.queue import dispatch

        uv.should_exit = True
        thread.join(10)
        dispatch.drain(60)
        reset_process_singletons()


def small_png(path: Path) -> None:
    """A 128-colour palette PNG: the committed screenshots stay small."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=128).save(path, optimize=True)


def manual_id_card_case(api: httpx.Client, subject: str) -> str:
    """A resident ID card sent to manual review with both sides photographed."""
    body = {"subject_id": subject, "document_type": "resident_id", "method": "manual", "claim": claim_of(CLEAN)}
    verification_id = api.post("/v1/verifications", json=body).json()["id"]
    for side, name in (("front", CLEAN), ("back", BACK)):
        response = api.post(
            f"/v1/verifications/{verification_id}/images",
            files={"image": (name, photo(name), "image/jpeg")},
            data={"side": side},
        )
        assert response.status_code == 200, response.text
    assert api.get(f"/v1/verifications/{verification_id}").json()["status"] == "in_review"
    # the portrait side is scanned for the reviewer in the background: open the case once it is read
    deadline = time.monotonic() + 60
    url = f"/v1/verifications/{verification_id}"
    while any(a["status"] in ("queued", "running") for a in api.get(url).json()["attempts"]):
        assert time.monotonic() < deadline, "the scan for the reviewer did not finish"
        time.sleep(0.1)
    return verification_id


BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    # not skipped when missing: scripts/test.sh installs it, and a silent skip would hide the gap
    assert CHROMIUM.exists(), "needs Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def api(server) -> Iterator[httpx.Client]:
    base, secrets = server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secrets['client']}"}, timeout=30) as client:
        yield client


class Counted:
    """The page, counting the clicks and key presses a test makes (the figures in the issue's note)."""

    def __init__(self, page) -> None:
        self.page = page
        self.clicks = 0
        self.keys = 0

    def click(self, selector: str) -> None:
        self.clicks += 1
        self.page.click(selector)

    def press(self, key: str) -> None:
        self.keys += 1
        self.page.keyboard.press(key)


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/review/")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def shoot(page, shots: Path, name: str) -> None:
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(shots / name))
    small_png(shots / name)


def test_a_reviewer_approves_by_keyboard_with_a_confirmation_and_moves_on_to_the_next_case(
    server, api, browser, tmp_path
):
    from playwright.sync_api import expect

    base, _secrets = server
    shots = DOCS if os.environ.get("OCR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    first = manual_id_card_case(api, "applicant-1")
    second = manual_id_card_case(api, "applicant-2")
    claim = claim_of(CLEAN)
    page = browser.new_page(viewport=DESKTOP)
    sign_in(page, base)
    expect(page.locator("#count-claimable")).to_have_text("2")
    shoot(page, shots, "review-queue.png")

    counted = Counted(page)
    counted.press("n")  # take the next case
    expect(page.locator("#claim-number")).to_have_text(claim["document_number"])
    expect(page.locator("img.doc-image").first).to_be_visible()
    # the manual case's portrait photo was scanned and the read confirms the claim: the claim is proposed
    # (one click on "use the claim" states it regardless)
    expect(page.locator("#f-name")).to_have_value(claim["name"])
    expect(page.locator("img.doc-image").first).to_have_attribute("data-showing", "card")
    shoot(page, shots, "review-case.png")
    counted.click("#use-claim")
    counted.press("a")
    expect(page.locator("#approve-dialog")).to_be_visible()
    expect(page.locator("#confirm-name")).to_have_text(claim["name"])
    expect(page.locator("#confirm-document_number")).to_have_text(claim["document_number"])
    counted.press("Enter")
    # auto-advance: the next case is open, the first one verified
    expect(page.locator(".flash")).to_contain_text("上一个案件已处理")
    print(f"per approval: {counted.clicks} click(s), {counted.keys} key press(es) (take next, approve, confirm)")
    assert (counted.clicks, counted.keys) == (1, 3)
    identity = api.get("/v1/subjects/applicant-1/identity")
    assert identity.status_code == 200, identity.text
    assert identity.json()["verification_id"] == first and identity.json()["name"] == claim["name"]

    page.keyboard.press("r")
    page.select_option("#reject-reason", "document_mismatch")
    page.click("#reject")
    expect(page.locator("#empty")).to_contain_text("当前没有待审核的案件")
    expect(page.locator("#count-claimable")).to_have_text("0")
    rejected = api.get(f"/v1/verifications/{second}").json()
    assert rejected["status"] == "rejected"
    assert rejected["reasons"] == [
        {"code": "document_mismatch", "message": "证件信息与填写的身份信息不一致，审核未通过"}
    ]


def test_enter_in_a_correction_field_approves_nothing(server, api, browser):
    from playwright.sync_api import expect

    base, _secrets = server
    verification_id = manual_id_card_case(api, "applicant-1")
    page = browser.new_page(viewport=DESKTOP)
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    sign_in(page, base)
    page.click("#take-next")
    expect(page.locator("#f-name")).to_be_visible()
    page.fill("#f-name", claim_of(CLEAN)["name"])
    page.fill("#f-document_number", claim_of(CLEAN)["document_number"])
    page.press("#f-document_number", "Enter")
    page.press("#f-name", "Enter")
    # a round trip through the page after the key presses: a submission would have been sent by now
    page.click("#approve")
    expect(page.locator("#approve-dialog")).to_be_visible()
    assert not [url for url in posts if url.endswith("/approve")]
    assert api.get(f"/v1/verifications/{verification_id}").json()["status"] == "in_review"


def test_the_case_page_fits_a_phone_keeps_the_decisions_in_view_and_pans_zooms_and_rotates(
    server, api, browser, tmp_path
):
    from playwright.sync_api import expect

    base, _secrets = server
    shots = DOCS if os.environ.get("OCR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    manual_id_card_case(api, "applicant-1")
    page = browser.new_page(viewport=PHONE)
    sign_in(page, base)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, shots, "review-queue-phone.png")
    page.click("#take-next")
    expect(page.locator("#claim-number")).to_be_visible()
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, shots, "review-case-phone.png")
    # the decision buttons stay on screen wherever the page is scrolled
    for y in (0, 10_000):
        page.evaluate(f"window.scrollTo(0, {y})")
        box = page.locator("#approve").bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
    viewer = page.locator("[data-viewer]").first
    page.keyboard.press("+")
    page.keyboard.press("+")
    expect(viewer).to_have_attribute("data-scale", "1.563")
    page.keyboard.press("[")
    expect(viewer).to_have_attribute("data-angle", "270")
    page.keyboard.press("]")
    page.keyboard.press("]")
    expect(viewer).to_have_attribute("data-angle", "90")
    viewer.scroll_into_view_if_needed()
    box = viewer.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 60, box["y"] + box["height"] / 2 + 30, steps=4)
    page.mouse.up()
    expect(viewer).to_have_attribute("data-x", "-60")
    expect(viewer).to_have_attribute("data-y", "30")
