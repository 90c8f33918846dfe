"""Issue 12 item 9 over HTTP: Chinese status labels next to every status code, the 申报须知 step
that must be acknowledged before confirming or submitting, and units asking to be registered."""

from __future__ import annotations

from ocr_service.auth import create_api_key
from ocr_service.status_labels import DECLARATION_STATUS, REVIEW_CASE_STATUS, VERIFICATION_STATUS
from tests.ocr_service.api_harness import CLEAN, harness, harness_callback_url, harness_settings  # noqa: F401
from tests.ocr_service.declaration_fixtures import PDF_BYTES, practice_form, probation_form


def key_of(harness, scopes: list[str]) -> dict[str, str]:  # noqa: F811
    with harness.database.session_scope() as session:
        _key, secret = create_api_key(session, "+".join(scopes), scopes)
    return {"Authorization": f"Bearer {secret}"}


def verified(harness, subject_id: str) -> dict:  # noqa: F811
    created = harness.create(subject_id)
    answer = harness.upload(created["id"], CLEAN)
    assert answer.status_code == 200, answer.text
    return answer.json()


def tcm_ready_to_submit(harness, subject_id: str) -> dict:  # noqa: F811
    verified(harness, subject_id)
    tcm = harness.request("POST", "/v1/declarations", json={"subject_id": subject_id, "kind": "tcm_expertise"}).json()
    doc = harness.request(
        "POST", f"/v1/declarations/{tcm['id']}/attachments", files={"file": ("证书.pdf", PDF_BYTES, "application/pdf")}
    ).json()["id"]
    saved = harness.request("PUT", f"/v1/declarations/{tcm['id']}/form", json=practice_form(doc))
    assert saved.status_code == 200, saved.text
    return saved.json()


def test_verification_answers_carry_the_chinese_label_of_every_status_and_decision(harness):  # noqa: F811
    created = harness.create("label-1")
    assert (created["status"], created["status_label"]) == ("awaiting_images", "待认证")
    answer = harness.upload(created["id"], CLEAN).json()
    assert (answer["status"], answer["status_label"]) == ("verified", "认证成功")
    assert answer["decision_label"] == "通过" and answer["attempt_status_label"] == "已完成"
    case = harness.get(created["id"])
    assert case["status_label"] == "认证成功"
    assert case["attempts"][0]["status_label"] == "已完成" and case["attempts"][0]["decision_label"] == "通过"
    assert [event["to_status_label"] for event in case["history"]][-1] == "认证成功"
    assert set(VERIFICATION_STATUS) == {
        "awaiting_images",
        "processing",
        "retake",
        "in_review",
        "verified",
        "rejected",
        "withdrawn",
    }


def test_review_cases_and_declarations_carry_their_status_labels(harness):  # noqa: F811
    manual = harness.create("label-2", method="manual")
    harness.upload(manual["id"], CLEAN)
    harness.upload(manual["id"], CLEAN, side="back")
    assert harness.get(manual["id"])["status_label"] == "待认证（人工审核中）"
    queue = harness.request("GET", "/v1/review/cases", key=None, headers=key_of(harness, ["reviewer"])).json()
    assert queue["cases"] and all(c["status_label"] == REVIEW_CASE_STATUS[c["status"]] for c in queue["cases"])

    tcm = tcm_ready_to_submit(harness, "label-3")
    assert (tcm["status"], tcm["status_label"]) == ("draft", "草稿")
    assert tcm["events"][0]["to_status_label"] == "草稿" and tcm["events"][0]["from_status_label"] is None
    listed = harness.request("GET", "/v1/declarations", params={"subject_id": "label-3"}).json()
    assert all(d["status_label"] == DECLARATION_STATUS[d["status"]] for d in listed)


def test_a_declaration_cannot_be_confirmed_or_submitted_before_the_instructions_are_acknowledged(harness):  # noqa: F811
    tcm = tcm_ready_to_submit(harness, "ack-1")
    assert tcm["instructions_acknowledged_at"] is None
    refused = harness.request("POST", f"/v1/declarations/{tcm['id']}/submit")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "instructions_not_acknowledged")
    assert "申报须知" in refused.json()["error"]["message_zh"]

    instructions = harness.request("GET", "/v1/declarations/instructions", params={"kind": "tcm_expertise"})
    assert instructions.status_code == 200, instructions.text
    body = instructions.json()
    assert body["title"] == "申报须知" and body["version"] and len(body["items"]) >= 3
    stale = harness.request(
        "POST", f"/v1/declarations/{tcm['id']}/acknowledge-instructions", json={"version": "not-this-one"}
    )
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "instructions_version_changed")
    acked = harness.request(
        "POST", f"/v1/declarations/{tcm['id']}/acknowledge-instructions", json={"version": body["version"]}
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["instructions_acknowledged_at"] and acked.json()["instructions_version"] == body["version"]
    assert [event["to_status"] for event in acked.json()["events"]] == ["draft"]  # not a transition
    submitted = harness.request("POST", f"/v1/declarations/{tcm['id']}/submit")
    assert submitted.status_code == 200 and submitted.json()["status_label"] == "已提交，待审核", submitted.text


def test_probation_confirm_needs_the_acknowledgement_too(harness):  # noqa: F811
    verified(harness, "ack-2")
    probation = harness.request(
        "POST", "/v1/declarations", json={"subject_id": "ack-2", "kind": "physician_probation"}
    ).json()
    harness.request("PUT", f"/v1/declarations/{probation['id']}/form", json=probation_form())
    refused = harness.request("POST", f"/v1/declarations/{probation['id']}/confirm")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "instructions_not_acknowledged")


def test_an_empty_unit_search_points_to_self_registration(harness):  # noqa: F811
    found = harness.request("GET", "/v1/declarations/work-units", params={"name": "不存在的医院"})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["units"] == []
    assert "申请单位注册" in body["hint_zh"] and body["register_request_path"] == "/v1/declarations/work-unit-requests"


def test_a_unit_asks_to_be_registered_and_an_admin_approves_or_rejects(harness):  # noqa: F811
    admin = key_of(harness, ["admin"])
    asked = harness.request(
        "POST",
        "/v1/declarations/work-unit-requests",
        json={
            "subject_id": "unit-1",
            "name": "武汉市江岸区新建社区卫生服务中心",
            "contact_name": "王芳",
            "contact_phone": "13800000000",
            "note": "试用期负责人",
        },
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["status"], request["status_label"]) == ("pending", "待审核")
    again = harness.request(
        "POST",
        "/v1/declarations/work-unit-requests",
        json={
            "subject_id": "unit-2",
            "name": "武汉市江岸区新建社区卫生服务中心",
            "contact_name": "李四",
            "contact_phone": "13900000000",
        },
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "work_unit_request_pending")
    assert harness.request("GET", "/v1/declarations/admin/work-unit-requests").status_code == 403

    listed = harness.request(
        "GET", "/v1/declarations/admin/work-unit-requests", key=None, headers=admin, params={"status": "pending"}
    ).json()
    assert [r["id"] for r in listed] == [request["id"]] and listed[0]["contact_phone"] == "13800000000"
    approved = harness.request(
        "POST", f"/v1/declarations/admin/work-unit-requests/{request['id']}/approve", key=None, headers=admin, json={}
    )
    assert approved.status_code == 200, approved.text
    result = approved.json()
    assert (
        result["request"]["status_label"] == "已通过，单位已注册"
        and len(result["work_unit"]["confirmation_code"]) == 10
    )
    assert result["work_unit"]["reviewer_key"] and result["request"]["reviewed_at"]
    found = harness.request("GET", "/v1/declarations/work-units", params={"name": "新建社区"}).json()
    assert [u["id"] for u in found["units"]] == [result["work_unit"]["id"]] and found["hint_zh"] is None
    seen = harness.request("GET", f"/v1/declarations/work-unit-requests/{request['id']}").json()
    assert seen["status"] == "approved" and seen["work_unit_id"] == result["work_unit"]["id"]
    twice = harness.request(
        "POST", f"/v1/declarations/admin/work-unit-requests/{request['id']}/approve", key=None, headers=admin, json={}
    )
    assert twice.status_code == 409

    other = harness.request(
        "POST",
        "/v1/declarations/work-unit-requests",
        json={"subject_id": "unit-3", "name": "某某诊所", "contact_name": "赵六", "contact_phone": "13700000000"},
    ).json()
    no_reason = harness.request(
        "POST", f"/v1/declarations/admin/work-unit-requests/{other['id']}/reject", key=None, headers=admin, json={}
    )
    assert no_reason.status_code == 422
    rejected = harness.request(
        "POST",
        f"/v1/declarations/admin/work-unit-requests/{other['id']}/reject",
        key=None,
        headers=admin,
        json={"reason": "单位名称不完整"},
    ).json()
    assert (rejected["status_label"], rejected["review_reason"]) == ("未通过", "单位名称不完整")
    assert harness.request("GET", f"/v1/declarations/work-unit-requests/{other['id']}", key="other").status_code == 404
