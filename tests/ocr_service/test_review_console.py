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
        _key, admin_secret = create_api_key(session, "exam office", ["admin"])
        create_reviewer(session, "alice", PASSWORD, "reviewer")
        create_reviewer(session, "root", PASSWORD, "admin")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Console(app, client, {"client": client_secret, "reviewer": reviewer_secret, "admin": admin_secret})
    finally:
        from ocr_service.queue import dispatch

        dispatch.drain(60)  # passport zones are read in the background
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
    assert queue.status_code == 200 and "领取下一个" in queue.text


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
    assert detail["multiple_identities"] is False
    assert detail["identities"] == [
        {"name": "JANE DOE", "document_number": PASSPORT_NUMBER, "is_claim": True, "reads": 0}
    ]
    fields = {"name": "JANE DOE", "document_number": PASSPORT_NUMBER, "sex": "女"}
    approved = console.api("POST", f"/v1/review/cases/{case['id']}/approve", "reviewer", json={"fields": fields}).json()
    assert approved["verification_status"] == "verified"
    identity = console.api("GET", "/v1/subjects/subject-1/identity", "client").json()
    assert identity["sex"] == "女" and identity["method"] == "manual"
    assert console.api("POST", "/v1/review/cases/claim", "reviewer").json() == {"case": None}


def test_a_work_unit_key_reviews_its_declarations_but_gets_403_on_every_identity_review_route(console):
    unit = console.api(
        "POST",
        "/v1/declarations/admin/work-units",
        "admin",
        json={"name": "江岸区人民医院", "confirmation_code": "K7M2P9XQ4R"},
    )
    assert unit.status_code == 201, unit.text
    console.secrets["unit"] = unit.json()["reviewer_key"]
    console.manual_case()
    case = console.api("POST", "/v1/review/cases/claim", "reviewer").json()["case"]
    image_id = console.api("GET", f"/v1/review/cases/{case['id']}", "reviewer").json()["images"][0]["id"]
    fields = {"name": "JANE DOE", "document_number": PASSPORT_NUMBER, "sex": "女"}
    refused = [
        console.api("GET", "/v1/review/cases", "unit"),
        console.api("POST", "/v1/review/cases/claim", "unit"),
        console.api("GET", f"/v1/review/cases/{case['id']}", "unit"),
        console.api("GET", f"/v1/review/cases/{case['id']}/images/{image_id}", "unit"),
        console.api("POST", f"/v1/review/cases/{case['id']}/approve", "unit", json={"fields": fields}),
    ]
    for answer in refused:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "forbidden"
        assert answer.json()["error"]["details"] == {"missing_scopes": ["reviewer"]}
    # the unit's own declaration review still answers (nothing submitted to it yet)
    own = console.api("GET", "/v1/declarations/review", "unit")
    assert own.status_code == 200 and own.json() == []


@pytest.mark.parametrize(
    ("method", "url", "field", "allowed"),
    [
        ("GET", "/v1/review/cases?origin=null", "origin", "scan_review"),
        ("GET", "/v1/review/cases?document_type=x", "document_type", "resident_id"),
        ("POST", "/v1/review/cases/claim?document_type=x", "document_type", "resident_id"),
        ("POST", "/v1/review/cases/claim?origin=xyz", "origin", "manual_method"),
    ],
)
def test_an_unknown_filter_value_gets_422_naming_the_field_and_the_allowed_values(console, method, url, field, allowed):
    answer = console.api(method, url, "reviewer")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message_zh"] and allowed in error["message_zh"]


def test_the_queue_page_ignores_an_unknown_filter_value_and_says_so_in_chinese(console):
    console.manual_case()
    console.sign_in()
    for query in ("origin=xyz", "document_type=x", "origin=null&document_type=resident_id"):
        page = console.client.get(f"/review/queue?{query}")
        assert page.status_code == 200, query
        assert "筛选条件无效，已忽略" in page.text, query
    # a forged filter on "take next" is ignored too: the case is claimed rather than a 500
    taken = console.client.post(
        "/review/claim", data={"csrf": console.csrf(), "origin": "xyz", "document_type": "x"}, follow_redirects=False
    )
    assert taken.status_code == 303 and taken.headers["location"].startswith("/review/cases/")


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
    assert "完好" in audit.text and "创建账号" in audit.text
    assert "队列长度" in console.client.get("/review/admin/stats").text


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


# --- issue 10: the console a reviewer works in --------------------------------------------------------------


def visible_text(html: str) -> str:
    """What a reader sees: no scripts, styles, tags or attribute values."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def cell(html: str, element_id: str) -> str:
    """The text of the element with this id (tags inside it removed)."""
    match = re.search(r'id="' + element_id + r'"[^>]*>(.*?)</t[dh]>', html, flags=re.S)
    assert match, element_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def claim_in_console(console) -> str:
    """Signed in as alice, the next case claimed: its page URL."""
    claimed = console.client.post("/review/claim", data={"csrf": console.csrf()}, follow_redirects=False)
    assert claimed.status_code == 303
    return claimed.headers["location"]


def approve_form(console, case_url: str, **fields) -> dict[str, str]:
    return {"csrf": console.csrf(case_url), "name": "JANE DOE", "document_number": PASSPORT_NUMBER, **fields}


def add_override(console, verification_id: str) -> None:
    from ocr_service.review.service import open_case

    with console.app.state.db.session_scope() as session:
        open_case(session, verification_id, "scan_review", ["name_mismatch"])


def test_an_approval_without_the_confirmation_step_is_refused_and_verifies_no_one(console):
    verification_id = console.manual_case()
    console.sign_in()
    case_url = claim_in_console(console)
    refused = console.client.post(f"{case_url}/approve", data=approve_form(console, case_url), follow_redirects=False)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    assert "请先核对" in refused.text and f'href="{case_url}"' in refused.text
    assert console.api("GET", f"/v1/verifications/{verification_id}", "client").json()["status"] == "in_review"
    confirmed = console.client.post(
        f"{case_url}/approve", data=approve_form(console, case_url, confirmed="1"), follow_redirects=False
    )
    assert confirmed.status_code == 303
    assert console.api("GET", f"/v1/verifications/{verification_id}", "client").json()["status"] == "verified"


def test_the_second_reviewer_sees_the_values_the_approval_will_write_next_to_the_claim(console):
    verification_id = console.manual_case()
    add_override(console, verification_id)
    console.sign_in()
    case_url = claim_in_console(console)
    form = approve_form(console, case_url, name="JANE Q DOE", confirmed="1")
    assert console.client.post(f"{case_url}/approve", data=form, follow_redirects=False).status_code == 303
    console.client.cookies.clear()
    console.sign_in("root")
    page = console.client.get(case_url)
    assert cell(page.text, "pending-name") == "JANE Q DOE"
    assert '<mark class="diff">Q </mark>' in page.text  # what differs from the claim is marked
    assert cell(page.text, "pending-document_number") == PASSPORT_NUMBER
    assert cell(page.text, "claim-name") == "JANE DOE"


def test_a_lost_lease_answers_a_chinese_page_with_a_way_back(console):
    console.manual_case()
    console.sign_in()
    case_url = claim_in_console(console)
    form = approve_form(console, case_url, confirmed="1")
    expire_leases(console)
    page = console.client.post(f"{case_url}/approve", data=form, follow_redirects=False)
    assert page.status_code == 409 and page.headers["content-type"].startswith("text/html")
    assert "领取已超时" in page.text and 'href="/review/queue"' in page.text


def test_confirming_ones_own_approval_answers_a_chinese_page(console):
    verification_id = console.manual_case()
    add_override(console, verification_id)
    console.sign_in()
    case_url = claim_in_console(console)
    console.client.post(f"{case_url}/approve", data=approve_form(console, case_url, confirmed="1"))
    page = console.client.post(f"{case_url}/confirm", data={"csrf": console.csrf()}, follow_redirects=False)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "需由另一名审核员复核" in page.text and 'href="/review/queue"' in page.text


def test_a_forbidden_page_and_a_reject_without_comment_answer_chinese_pages(console):
    console.manual_case()
    console.sign_in()
    forbidden = console.client.get("/review/admin/audit")
    assert forbidden.status_code == 403 and "无权访问" in forbidden.text and 'href="/review/queue"' in forbidden.text
    case_url = claim_in_console(console)
    page = console.client.post(
        f"{case_url}/reject", data={"csrf": console.csrf(case_url), "reason": "other", "comment": " "}
    )
    assert page.status_code == 422 and "请填写驳回说明" in page.text and f'href="{case_url}"' in page.text


def test_a_decision_after_signing_out_in_another_tab_goes_to_sign_in_and_says_it_was_not_saved(console):
    verification_id = console.manual_case()
    console.sign_in()
    case_url = claim_in_console(console)
    form = approve_form(console, case_url, confirmed="1")
    old_cookie = console.client.cookies.get(sessions.COOKIE_NAME)
    console.client.post("/review/signout", data={"csrf": console.csrf()})  # the other tab
    console.client.cookies.set(sessions.COOKIE_NAME, old_cookie, path="/review")
    answer = console.client.post(f"{case_url}/approve", data=form, follow_redirects=False)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/review/signin?error=signed_out")
    signin = console.client.get(location)
    assert "已退出登录" in signin.text and "未保存" in signin.text
    assert console.api("GET", f"/v1/verifications/{verification_id}", "client").json()["status"] == "in_review"
    # signing in again returns to the case, not to the queue
    token = re.search(r'name="csrf" value="([^"]+)"', signin.text).group(1)
    back = console.client.post(
        "/review/signin",
        data={"username": "alice", "password": PASSWORD, "csrf": token, "next": case_url},
        follow_redirects=False,
    )
    assert back.headers["location"] == case_url


def test_counters_count_expired_leases_as_claimable(console):
    console.manual_case("s1")
    console.manual_case("s2")
    console.api("POST", "/v1/review/cases/claim", "reviewer")
    console.api("POST", "/v1/review/cases/claim", "reviewer")
    console.sign_in()
    queue = console.client.get("/review/queue").text
    assert re.search(r'id="count-claimable"[^>]*>\s*0<', queue) and re.search(r'id="count-claimed"[^>]*>\s*2<', queue)
    expire_leases(console)
    queue = console.client.get("/review/queue").text
    assert re.search(r'id="count-claimable"[^>]*>\s*2<', queue) and re.search(r'id="count-claimed"[^>]*>\s*0<', queue)


def test_a_filter_matching_nothing_says_so_and_keeps_the_filter(console):
    console.manual_case()
    console.sign_in()
    answer = console.client.post(
        "/review/claim", data={"csrf": console.csrf(), "document_type": "resident_id"}, follow_redirects=False
    )
    assert "document_type=resident_id" in answer.headers["location"]
    page = console.client.get(answer.headers["location"]).text
    assert "没有符合筛选条件的案件" in page and "当前没有待审核的案件" not in page


def test_release_then_take_next_gives_another_case(console):
    console.manual_case("s1")
    console.manual_case("s2")
    console.sign_in()
    first = claim_in_console(console)
    console.client.post(f"{first}/release", data={"csrf": console.csrf(first)})
    assert claim_in_console(console) != first


def test_pages_speak_chinese_with_local_times_and_named_actors(console):
    console.manual_case()
    console.sign_in()
    queue = visible_text(console.client.get("/review/queue").text)
    case_page = console.client.get(claim_in_console(console)).text
    text_ = visible_text(case_page)
    for code in ("manual_method", "foreign_passport", "in_review", "awaiting_images", "claimed", "front"):
        assert code not in queue and code not in text_, code
    assert "key:" not in text_ and "mini-program" in text_  # the client's name, not its key id
    assert "UTC" not in text_ and "北京时间" in text_
    from ocr_service.review.models import ReviewCase

    with console.app.state.db.session_scope() as session:
        created = session.scalars(__import__("sqlalchemy").select(ReviewCase.created_at)).one()
    from zoneinfo import ZoneInfo

    assert created.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M") in text_


def test_the_case_page_shows_the_straightened_card_by_default_with_the_raw_photo_one_click_away(console):
    import cv2
    import numpy as np

    from tests.ocr_service.api_harness import claim_of

    # typed with one wrong character: each scan reads the card and rejects (the first only asks for the
    # claim, the applicant insists); the last failed attempt goes to a person
    claim = claim_of(CLEAN)
    claim["name"] = claim["name"][:-1] + ("甲" if claim["name"][-1] != "甲" else "乙")
    created = console.api("POST", "/v1/verifications", "client", json={"subject_id": "s-card", "claim": claim})
    verification_id = created.json()["id"]
    for _ in range(console.app.state.settings.max_failed_attempts + 1):
        uploaded = console.api(
            "POST",
            f"/v1/verifications/{verification_id}/images",
            "client",
            files={"image": ("p.jpg", photo(CLEAN), "image/jpeg")},
            data={"side": "front"},
        )
        if uploaded.json()["status"] != "retake":
            break
    assert uploaded.json()["status"] == "in_review", uploaded.text
    console.sign_in()
    case_url = console.client.post("/review/claim", data={"csrf": console.csrf()}, follow_redirects=False).headers[
        "location"
    ]
    page = console.client.get(case_url)
    # the claim-vs-read row names the outcome in Chinese, not the pipeline's codes
    shown = visible_text(page.text)
    assert re.search(r"姓名：(一致|近似|不一致)；号码：(一致|不一致)", shown), shown
    assert "exact" not in shown and "mismatch" not in shown
    card_url = re.search(r'class="doc-image"[^>]*src="(/review/cases/[^"]+/images/[^"/]+/card)"', page.text).group(1)
    raw_url = card_url.removesuffix("/card")
    assert f'data-raw-src="{raw_url}"' in page.text and "查看原图" in page.text
    card = console.client.get(card_url)
    assert card.status_code == 200 and card.headers["content-type"] == "image/jpeg"
    assert "no-store" in card.headers["cache-control"]
    decoded = cv2.imdecode(np.frombuffer(card.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (540, 856)
    assert console.client.get(raw_url).content == photo(CLEAN)
    # every view of the card is audited like a view of the photo; another reviewer sees neither
    console.client.cookies.clear()
    console.sign_in("root")
    assert console.client.get(card_url).status_code == 409
    audit = console.client.get("/review/admin/audit").text
    assert audit.count("view_image") >= 2 or audit.count("查看") >= 2


def test_a_photo_without_a_found_card_is_shown_as_uploaded(console):
    console.manual_case()
    console.sign_in()
    case_url = console.client.post("/review/claim", data={"csrf": console.csrf()}, follow_redirects=False).headers[
        "location"
    ]
    page = console.client.get(case_url)
    assert "data-card-src" not in page.text and 'data-act="toggle-raw" title' not in page.text
    image_id = re.search(r'src="/review/cases/[^"]+/images/([^"/]+)"', page.text).group(1)
    assert console.client.get(f"{case_url}/images/{image_id}/card").status_code == 404


def test_an_admin_assigns_a_waiting_case_to_a_named_reviewer_from_the_queue_and_over_the_json_api(console):
    from ocr_service.auth import create_api_key

    older = console.manual_case("subject-1")
    assigned = console.manual_case("subject-2")
    console.sign_in("root")
    queue = console.client.get("/review/queue").text
    assert len(re.findall(r'action="/review/cases/[0-9a-f-]+/assign"', queue)) == 2  # a form per waiting case
    rows = console.api("GET", "/v1/review/cases", "reviewer").json()["cases"]
    case_id = next(c["id"] for c in rows if c["verification_id"] == assigned)
    answer = console.client.post(
        f"/review/cases/{case_id}/assign", data={"csrf": console.csrf(), "reviewer": "alice"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/review/queue?done=assigned"
    queue = console.client.get("/review/queue?done=assigned").text
    assert "已指派" in queue and "指派给 审核员 alice" in queue
    # the assignee's "take next" gives the newer, assigned case first
    console.client.cookies.clear()
    console.sign_in("alice")
    queue = console.client.get("/review/queue").text
    assert f"/review/cases/{case_id}/assign" not in queue  # reviewers see the assignment, not the form
    claimed = console.client.post("/review/claim", data={"csrf": console.csrf()}, follow_redirects=False)
    assert claimed.headers["location"] == f"/review/cases/{case_id}"
    # a reviewer cannot assign; the JSON API takes an admin key
    refused = console.client.post(f"/review/cases/{case_id}/assign", data={"csrf": console.csrf(), "reviewer": ""})
    assert refused.status_code == 403 and "无权访问" in refused.text
    with console.app.state.db.session_scope() as session:
        _key, console.secrets["admin"] = create_api_key(session, "ops", ["admin"])
    other = next(c["id"] for c in rows if c["verification_id"] == older)
    assert (
        console.api("POST", f"/v1/review/cases/{other}/assign", "reviewer", json={"reviewer": "root"}).status_code
        == 403
    )
    given = console.api("POST", f"/v1/review/cases/{other}/assign", "admin", json={"reviewer": "root"})
    assert given.status_code == 200 and given.json()["assigned_to"] == "reviewer:root"
    taken = console.api("POST", "/v1/review/cases/claim", "reviewer").json()
    assert taken["case"] is None  # the reviewer key may not claim a case kept for root
    held = console.api("POST", f"/v1/review/cases/{case_id}/assign", "admin", json={"reviewer": "root"})
    assert held.status_code == 409 and held.json()["error"]["code"] == "case_not_waiting"
    console.client.cookies.clear()
    console.sign_in("root")
    audit = console.client.get("/review/admin/audit").text
    assert audit.count("指派") >= 2


def assert_console_security_headers(response) -> str:
    """The headers every console page carries; returns the page's script nonce."""
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    return re.search(r"'nonce-([^']+)'", policy).group(1)


def test_every_console_page_forbids_framing_and_runs_only_its_own_nonced_script(console):
    signin = console.client.get("/review/signin")
    assert_console_security_headers(signin)
    console.manual_case()
    console.sign_in()
    assert_console_security_headers(console.client.get("/review/queue"))
    first = console.client.get(claim_in_console(console))
    nonce = assert_console_security_headers(first)
    scripts = re.findall(r"<script([^>]*)>", first.text)
    assert scripts and all(f'nonce="{nonce}"' in attributes for attributes in scripts)
    queue = console.client.get("/review/queue")
    queue_nonce = assert_console_security_headers(queue)
    assert queue_nonce != nonce  # fresh per response
    assert all(f'nonce="{queue_nonce}"' in attributes for attributes in re.findall(r"<script([^>]*)>", queue.text))
    assert_console_security_headers(console.client.get("/review/no-such-page"))
