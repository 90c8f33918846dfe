"""The console's pages and the ``/v1/review`` JSON API over HTTP (SQLite): sign-in, cookie, CSRF, idle timeout.

The claiming and decision rules are tested in ``test_review_service.py`` on both backends;
here only what HTTP adds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocr_service.review import sessions
from ocr_service.review.service import create_reviewer
from tests.ocr_service.api_harness import CLEAN, make_settings, photo, reset_process_singletons

PASSWORD = "correct horse battery"
PASSPORT_NUMBER = "E98765432"


class Console:
    def __init__(self, app, client: TestClient, secrets: dict[str, str]) -> None:
        self.app = app
        self.client = client
        self.secrets = secrets

    def api(self, method: str, url: str, key: str, **kwargs):
        return self.client.request(method, url, headers={"Authorization": f"Bearer {self.secrets[key]}"}, **kwargs)

    def manual_case(self, subject: str = "subject-1") -> str:
        body = {
            "subject_id": subject,
            "document_type": "foreign_passport",
            "method": "manual",
            "claim": {"name": "JANE DOE", "document_number": PASSPORT_NUMBER},
        }
        created = self.api("POST", "/v1/verifications", "client", json=body)
        assert created.status_code == 201, created.text
        verification_id = created.json()["id"]
        uploaded = self.api(
            "POST",
            f"/v1/verifications/{verification_id}/images",
            "client",
            files={"image": ("p.jpg", photo(CLEAN), "image/jpeg")},
            data={"side": "front"},
        )
        assert uploaded.json()["status"] == "in_review", uploaded.text
        return verification_id

    def sign_in(self, username: str = "alice", password: str = PASSWORD):
        page = self.client.get("/review/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return self.client.post(
            "/review/signin",
            data={"username": username, "password": password, "csrf": token},
            follow_redirects=False,
        )

    def csrf(self, path: str = "/review/queue") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.client.get(path).text).group(1)


@pytest.fixture
def console(tmp_path, engine) -> Iterator[Console]:
    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key

    reset_process_singletons()
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}")
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        _key, client_secret = create_api_key(session, "mini-program", ["client"])
        _key, reviewer_secret = create_api_key(session, "review tool", ["reviewer"])
        create_reviewer(session, "alice", PASSWORD, "reviewer")
        create_reviewer(session, "root", PASSWORD, "admin")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Console(app, client, {"client": client_secret, "reviewer": reviewer_secret})
    finally:
        reset_process_singletons()


def test_a_wrong_password_goes_back_to_the_sign_in_page(console):
    response = console.sign_in(password="not the password")
    assert response.status_code == 303 and response.headers["location"] == "/review/signin?error=invalid"
    assert sessions.COOKIE_NAME not in response.cookies


def test_signing_in_sets_an_httponly_samesite_session_cookie_and_opens_the_queue(console):
    response = console.sign_in()
    assert response.status_code == 303 and response.headers["location"] == "/review/queue"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/review" in cookie
    queue = console.client.get("/review/queue")
    assert queue.status_code == 200 and "Take next case" in queue.text


def test_pages_without_a_session_redirect_to_sign_in(console):
    response = console.client.get("/review/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/review/signin"


def test_a_post_without_the_csrf_token_is_refused(console):
    console.sign_in()
    assert console.client.post("/review/claim", data={"csrf": "forged"}).status_code == 403
    assert (
        console.client.post("/review/claim", data={"csrf": console.csrf()}, follow_redirects=False).status_code == 303
    )


def test_an_idle_session_ends(console):
    console.sign_in()
    value = console.client.cookies.get(sessions.COOKIE_NAME)
    key = sessions.session_key(console.app.state.settings)
    current = sessions.decode(key, value, 60)
    stale = sessions.ConsoleSession(current.reviewer_id, current.version, current.csrf, time.time() - 31 * 60)
    console.client.cookies.set(sessions.COOKIE_NAME, sessions.encode(key, stale), path="/review")
    response = console.client.get("/review/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/review/signin"


def test_signing_out_invalidates_the_old_cookie(console):
    console.sign_in()
    old = console.client.cookies.get(sessions.COOKIE_NAME)
    console.client.post("/review/signout", data={"csrf": console.csrf()})
    console.client.cookies.set(sessions.COOKIE_NAME, old, path="/review")
    assert console.client.get("/review/queue", follow_redirects=False).status_code == 303


def test_the_case_page_shows_the_full_claim_number_and_images_are_not_cached(console):
    console.manual_case()
    console.sign_in()
    claimed = console.client.post("/review/claim", data={"csrf": console.csrf()}, follow_redirects=False)
    case_url = claimed.headers["location"]
    page = console.client.get(case_url)
    assert PASSPORT_NUMBER in page.text
    image_url = re.search(r'src="(/review/cases/[^"]+/images/[^"]+)"', page.text).group(1)
    image = console.client.get(image_url)
    assert image.status_code == 200 and image.content == photo(CLEAN)
    assert "no-store" in image.headers["cache-control"]
    # another reviewer (the admin) does not hold the case and cannot see its photos
    console.client.cookies.clear()
    console.sign_in("root")
    assert console.client.get(image_url).status_code == 409


def test_the_json_api_claims_and_approves_with_a_reviewer_key(console):
    verification_id = console.manual_case()
    assert console.api("POST", "/v1/review/cases/claim", "client").status_code == 403
    case = console.api("POST", "/v1/review/cases/claim", "reviewer").json()["case"]
    assert case["verification_id"] == verification_id and case["origin"] == "manual_method"
    detail = console.api("GET", f"/v1/review/cases/{case['id']}", "reviewer").json()
    assert detail["claim"]["document_number"] == PASSPORT_NUMBER
    # nothing confirmed the claim by machine: the reviewer states the identity the passport shows
    assert set(detail["proposed_identity"].values()) == {""}
    fields = {"name": "JANE DOE", "document_number": PASSPORT_NUMBER, "sex": "女"}
    approved = console.api("POST", f"/v1/review/cases/{case['id']}/approve", "reviewer", json={"fields": fields}).json()
    assert approved["verification_status"] == "verified"
    identity = console.api("GET", "/v1/subjects/subject-1/identity", "client").json()
    assert identity["sex"] == "女" and identity["method"] == "manual"
    assert console.api("POST", "/v1/review/cases/claim", "reviewer").json() == {"case": None}


def test_the_reviewers_create_command_reads_the_password_from_stdin(cli_settings):
    from ocr_service.cli import app

    result = CliRunner().invoke(
        app, ["reviewers", "create", "--username", "Bob", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert '"username": "bob"' in result.stdout and '"role": "admin"' in result.stdout
    again = CliRunner().invoke(app, ["reviewers", "create", "--username", "bob", "--password-stdin"], input=PASSWORD)
    assert again.exit_code == 1 and "taken" in again.output


def test_admin_pages_show_accounts_the_intact_audit_chain_and_statistics_to_admins_only(console):
    console.sign_in()
    assert console.client.get("/review/admin/audit").status_code == 403
    console.client.cookies.clear()
    console.sign_in("root")
    created = console.client.post(
        "/review/admin/reviewers",
        data={"csrf": console.csrf(), "username": "carol", "password": PASSWORD, "role": "reviewer"},
    )
    assert created.status_code == 200 and "carol" in created.text
    audit = console.client.get("/review/admin/audit")
    assert "intact" in audit.text and "create_reviewer" in audit.text
    assert "Queue size" in console.client.get("/review/admin/stats").text


def expire_leases(console) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from ocr_service.db import utcnow
    from ocr_service.review.models import ReviewCase

    with console.app.state.db.session_scope() as session:
        session.execute(update(ReviewCase).values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_the_json_api_answers_409_lease_expired_to_a_holder_whose_lease_ran_out(console):
    console.manual_case()
    case = console.api("POST", "/v1/review/cases/claim", "reviewer").json()["case"]
    expire_leases(console)
    fields = {"name": "JANE DOE", "document_number": PASSPORT_NUMBER}
    for action, body in (("approve", {"fields": fields}), ("reject", {"reason": "document_mismatch"})):
        refused = console.api("POST", f"/v1/review/cases/{case['id']}/{action}", "reviewer", json=body)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "lease_expired"
    assert console.api("GET", "/v1/subjects/subject-1/identity", "client").status_code == 404
