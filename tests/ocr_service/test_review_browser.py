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
        uv.should_exit = True
        thread.join(10)
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
    return verification_id


def test_a_reviewer_approves_one_case_and_rejects_another_in_the_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, secrets = server
    # not skipped when missing: scripts/test.sh installs it, and a silent skip would hide the gap
    assert CHROMIUM.exists(), "needs Debian's chromium: apt-get install chromium"
    shots = DOCS if os.environ.get("OCR_UPDATE_SCREENSHOTS") == "1" else tmp_path
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secrets['client']}"}, timeout=30) as api:
        first = manual_id_card_case(api, "applicant-1")
        second = manual_id_card_case(api, "applicant-2")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 820})
                page.goto(f"{base}/review/")
                page.fill("#username", "alice")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                expect(page.locator("#count-open")).to_have_text("2")
                page.screenshot(path=str(shots / "review-queue.png"))
                small_png(shots / "review-queue.png")

                page.click("#take-next")
                expect(page.locator("#claim-number")).to_have_text(claim_of(CLEAN)["document_number"])
                image = page.locator("img.doc-image").first
                expect(image).to_be_visible()
                page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
                page.screenshot(path=str(shots / "review-case.png"))
                small_png(shots / "review-case.png")
                page.click("#approve")
                expect(page.locator("#count-open")).to_have_text("1")

                identity = api.get("/v1/subjects/applicant-1/identity")
                assert identity.status_code == 200, identity.text
                assert identity.json()["verification_id"] == first
                assert api.get(f"/v1/verifications/{first}").json()["status"] == "verified"

                page.click("#take-next")
                page.select_option("#reject-reason", "document_mismatch")
                page.click("#reject")
                expect(page.locator("#count-open")).to_have_text("0")
            finally:
                browser.close()

        rejected = api.get(f"/v1/verifications/{second}").json()
        assert rejected["status"] == "rejected"
        assert rejected["reasons"] == [
            {"code": "document_mismatch", "message": "证件信息与填写的身份信息不一致，审核未通过"}
        ]
