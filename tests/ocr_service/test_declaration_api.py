"""The declaration API end to end over HTTP, on SQLite and PostgreSQL: a sample photo verifies the
identity, both kinds of declaration are filled in, submitted, reviewed, and the notice PDF is read back."""

from __future__ import annotations

import io

from pypdf import PdfReader

from ocr_service.auth import create_api_key
from tests.ocr_service.api_harness import CLEAN, LABELS, harness, harness_callback_url, harness_settings  # noqa: F401
from tests.ocr_service.declaration_fixtures import (
    PDF_BYTES,
    UNIT_NAME,
    acknowledge_instructions,
    png_bytes,
    practice_form,
    probation_form,
)

CLEAN_NAME = LABELS[CLEAN]["claim"]["name"]
CLEAN_NUMBER = LABELS[CLEAN]["claim"]["id_number"]


def admin_secret(harness) -> str:  # noqa: F811
    with harness.database.session_scope() as session:
        _key, secret = create_api_key(session, "exam office", ["admin"])
    return secret


def as_key(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def verify_identity(harness, subject_id: str) -> None:  # noqa: F811
    created = harness.create(subject_id)
    answer = harness.upload(created["id"], CLEAN)
    assert answer.status_code == 200 and answer.json()["status"] == "verified", answer.text


def upload(harness, declaration_id: str, data: bytes, name: str) -> str:  # noqa: F811
    response = harness.request(
        "POST", f"/v1/declarations/{declaration_id}/attachments", files={"file": (name, data, "application/pdf")}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_both_kinds_are_declared_reviewed_and_the_notice_names_the_applicant(harness):  # noqa: F811
    admin = admin_secret(harness)
    refused = harness.request("POST", "/v1/declarations", json={"subject_id": "user-1", "kind": "tcm_expertise"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "identity_not_verified")
    verify_identity(harness, "user-1")

    # TCM expertise: create, upload, fill in, submit, approve, print
    created = harness.request("POST", "/v1/declarations", json={"subject_id": "user-1", "kind": "tcm_expertise"})
    assert created.status_code == 201, created.text
    tcm = created.json()
    acknowledge_instructions(harness, tcm)
    assert tcm["applicant"]["name"] == CLEAN_NAME and tcm["status"] == "draft"
    assert tcm["applicant"]["id_number_masked"] == CLEAN_NUMBER[0] + "*" * 16 + CLEAN_NUMBER[-1]
    doc = upload(harness, tcm["id"], PDF_BYTES, "证书.pdf")
    form = practice_form(doc)
    form["teachers"][1]["id_number"] = form["teachers"][1]["id_number"][:-1] + "0"
    bad = harness.request("PUT", f"/v1/declarations/{tcm['id']}/form", json=form)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["field"] == "teachers[1].id_number"
    assert bad.json()["error"]["details"]["errors"][0]["message_zh"]
    saved = harness.request("PUT", f"/v1/declarations/{tcm['id']}/form", json=practice_form(doc))
    assert saved.status_code == 200, saved.text
    assert saved.json()["form"]["teachers"][0]["id_number"].count("*") == 16
    submitted = harness.request("POST", f"/v1/declarations/{tcm['id']}/submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted", submitted.text
    approved = harness.request(
        "POST", f"/v1/declarations/review/{tcm['id']}/approve", key=None, json={}, headers=as_key(admin)
    )
    assert approved.json()["status"] == "approved", approved.text

    notice = harness.request("GET", f"/v1/declarations/{tcm['id']}/notice.pdf")
    assert notice.status_code == 200 and notice.headers["content-type"] == "application/pdf"
    assert notice.headers["content-disposition"].startswith("attachment")
    text = PdfReader(io.BytesIO(notice.content)).pages[0].extract_text()
    assert CLEAN_NAME in text and tcm["number"] in text and "湖北省武汉市江岸区" in text
    assert CLEAN_NUMBER not in text and CLEAN_NUMBER[0] + "*" * 16 + CLEAN_NUMBER[-1] in text
    check = harness.request("GET", f"/v1/declarations/verify/{submitted.json()['verify_code']}")
    assert check.json()["number"] == tcm["number"] and check.json()["valid"] is True

    # physician probation: register a unit, bind, declare, confirm, submit, the unit returns then approves
    unit = harness.request(
        "POST",
        "/v1/declarations/admin/work-units",
        key=None,
        headers=as_key(admin),
        json={"name": UNIT_NAME, "confirmation_code": "K7M2P9XQ4R"},
    )
    assert unit.status_code == 201, unit.text
    found = harness.request("GET", "/v1/declarations/work-units", params={"name": "江岸区"}).json()["units"]
    assert [u["name"] for u in found] == [UNIT_NAME]
    wrong = harness.request(
        "PUT",
        "/v1/declarations/work-unit-binding",
        json={"subject_id": "user-1", "work_unit_id": found[0]["id"], "confirmation_code": "1"},
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "wrong_confirmation_code")
    bound = harness.request(
        "PUT",
        "/v1/declarations/work-unit-binding",
        json={"subject_id": "user-1", "work_unit_id": found[0]["id"], "confirmation_code": "K7M2P9XQ4R"},
    )
    assert bound.status_code == 200, bound.text
    created = harness.request("POST", "/v1/declarations", json={"subject_id": "user-1", "kind": "physician_probation"})
    probation = created.json()
    acknowledge_instructions(harness, probation)
    form = probation_form()
    form["fresh_graduate"] = True
    form["supporting_files"] = [upload(harness, probation["id"], png_bytes(), "work.png")]
    assert harness.request("PUT", f"/v1/declarations/{probation['id']}/form", json=form).status_code == 200
    missing = harness.request("POST", f"/v1/declarations/{probation['id']}/confirm")
    assert missing.status_code == 422
    assert [e["code"] for e in missing.json()["error"]["details"]["errors"]] == ["missing_upload"]
    form["uploads"]["commitment_letter"] = upload(harness, probation["id"], PDF_BYTES, "letter.pdf")
    assert harness.request("PUT", f"/v1/declarations/{probation['id']}/form", json=form).status_code == 200
    early = harness.request("POST", f"/v1/declarations/{probation['id']}/submit")
    assert (early.status_code, early.json()["error"]["code"]) == (409, "not_confirmed")
    assert harness.request("POST", f"/v1/declarations/{probation['id']}/confirm").status_code == 200
    assert harness.request("POST", f"/v1/declarations/{probation['id']}/submit").json()["status"] == "submitted"

    unit_key = as_key(unit.json()["reviewer_key"])
    queue = harness.request("GET", "/v1/declarations/review", key=None, headers=unit_key).json()
    assert [d["number"] for d in queue] == [probation["number"]]  # not the TCM one: another unit's business
    attachment = queue[0]["attachments"][0]
    download = harness.request(
        "GET", f"/v1/declarations/review/{probation['id']}/attachments/{attachment['id']}", key=None, headers=unit_key
    )
    assert download.content == png_bytes()
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment")
    returned = harness.request(
        "POST",
        f"/v1/declarations/review/{probation['id']}/return",
        key=None,
        headers=unit_key,
        json={"reason": "承诺书未签字"},
    )
    assert returned.json()["status"] == "returned"
    again = harness.request(
        "POST", f"/v1/declarations/review/{probation['id']}/approve", key=None, headers=unit_key, json={}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "illegal_transition")
    assert harness.request("POST", f"/v1/declarations/{probation['id']}/confirm").status_code == 200
    assert harness.request("POST", f"/v1/declarations/{probation['id']}/submit").status_code == 200
    approved = harness.request(
        "POST", f"/v1/declarations/review/{probation['id']}/approve", key=None, headers=unit_key, json={}
    )
    assert approved.json()["status"] == "approved"
    progress = harness.request("GET", f"/v1/declarations/{probation['id']}").json()
    assert [e["to_status"] for e in progress["events"]] == ["draft", "submitted", "returned", "submitted", "approved"]
    assert progress["events"][2]["reason"] == "承诺书未签字" and progress["editable"] is False
    pdf = harness.request("GET", f"/v1/declarations/{probation['id']}/notice.pdf").content
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert CLEAN_NAME in text and probation["number"] in text


def test_the_declaration_review_routes_answer_only_unit_reviewer_and_admin_keys(harness):  # noqa: F811
    with harness.database.session_scope() as session:
        identity_reviewer = create_api_key(session, "review tool", ["reviewer", "identity:full"])[1]
        unit_reviewer = create_api_key(session, "a unit", ["unit_reviewer"])[1]
    admin = admin_secret(harness)
    some_id = "00000000-0000-4000-8000-000000000000"
    routes = [
        ("GET", "/v1/declarations/review"),
        ("GET", f"/v1/declarations/review/{some_id}"),
        ("GET", f"/v1/declarations/review/{some_id}/attachments/{some_id}"),
        ("POST", f"/v1/declarations/review/{some_id}/approve"),
    ]
    for method, path in routes:
        for secret in (harness.secrets["client"], harness.secrets["full"], identity_reviewer):
            response = harness.request(method, path, key=None, headers=as_key(secret), json={})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        for secret in (unit_reviewer, admin):
            response = harness.request(method, path, key=None, headers=as_key(secret), json={})
            assert response.status_code in (200, 404), (method, path, response.text)


def test_a_unit_gets_a_generated_code_and_guessing_it_under_many_subject_ids_is_locked_out(harness):  # noqa: F811
    admin = as_key(admin_secret(harness))
    weak = harness.request(
        "POST",
        "/v1/declarations/admin/work-units",
        key=None,
        headers=admin,
        json={"name": UNIT_NAME, "confirmation_code": "246810"},
    )
    assert (weak.status_code, weak.json()["error"]["code"]) == (422, "weak_confirmation_code")
    assert weak.json()["error"]["message_zh"].startswith("单位确认码须至少8位")
    created = harness.request(
        "POST", "/v1/declarations/admin/work-units", key=None, headers=admin, json={"name": UNIT_NAME}
    )
    assert created.status_code == 201, created.text
    code = created.json()["confirmation_code"]
    assert len(code) == 10 and not set(code) & set("0O1IL")
    unit_id = created.json()["id"]
    limit = harness.settings.unit_code_max_failures_per_unit
    for i in range(limit):
        wrong = harness.request(
            "PUT",
            "/v1/declarations/work-unit-binding",
            json={"subject_id": f"guess-{i}", "work_unit_id": unit_id, "confirmation_code": "AAAAAAAAAA"},
        )
        assert wrong.status_code == 422, wrong.text
    locked = harness.request(
        "PUT",
        "/v1/declarations/work-unit-binding",
        json={"subject_id": "applicant", "work_unit_id": unit_id, "confirmation_code": code.lower()},
    )
    assert (locked.status_code, locked.json()["error"]["code"]) == (429, "too_many_bind_attempts")
    assert locked.json()["error"]["details"]["scope"] == "unit"
    assert int(locked.headers["Retry-After"]) == harness.settings.unit_code_lockout_seconds
    assert "分钟后再试" in locked.json()["error"]["message_zh"]


def test_the_applicant_as_their_own_recommender_and_a_province_as_region_are_refused(harness):  # noqa: F811
    """Issue 12, items 4, 5 and 10 over HTTP: the applicant's own number is checked at submission."""
    verify_identity(harness, "user-self")
    created = harness.request("POST", "/v1/declarations", json={"subject_id": "user-self", "kind": "tcm_expertise"})
    assert created.status_code == 201, created.text
    tcm = created.json()
    acknowledge_instructions(harness, tcm)
    doc = upload(harness, tcm["id"], PDF_BYTES, "证书.pdf")

    form = practice_form(doc)
    form["region_code"] = "420000"  # 湖北省: a province, not a 区县
    province = harness.request("PUT", f"/v1/declarations/{tcm['id']}/form", json=form)
    assert province.status_code == 422
    assert [(e["field"], e["code"]) for e in province.json()["error"]["details"]["errors"]] == [
        ("region_code", "region_not_hubei_county")
    ]

    form = practice_form(doc)
    form["teachers"][1]["id_number"] = CLEAN_NUMBER.lower()
    saved = harness.request("PUT", f"/v1/declarations/{tcm['id']}/form", json=form)
    assert saved.status_code == 200, saved.text
    refused = harness.request("POST", f"/v1/declarations/{tcm['id']}/submit")
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["error"]["details"]["errors"]
    assert (error["field"], error["code"]) == ("teachers[1].id_number", "teacher_is_applicant")
    assert error["message_zh"].startswith(f"推荐医师 {form['teachers'][1]['name']}：")
