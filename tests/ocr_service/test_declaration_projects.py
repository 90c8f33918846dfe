"""Issue 12 item 6: exam projects, one declaration per subject and project, the declaration window.

Over HTTP on SQLite and PostgreSQL: an admin creates projects (kind, year, title, window), the
applicant declares to one, a second declaration to the same project is refused, and submitting
outside the window answers 409 with the window in Beijing time.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from ocr_service.declaration import instructions
from ocr_service.declaration.models import DeclarationKind
from tests.ocr_service.api_harness import harness, harness_callback_url, harness_settings  # noqa: F401
from tests.ocr_service.declaration_fixtures import PDF_BYTES, practice_form
from tests.ocr_service.test_declaration_api import admin_secret, as_key, upload, verify_identity

TCM = "tcm_expertise"


def iso(moment: datetime) -> str:
    return moment.isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def create_project(harness, admin: str, code: str, *, kind: str = TCM, year: int = 2026, **window):  # noqa: F811
    body = {
        "code": code,
        "kind": kind,
        "year": year,
        "title": f"{year}年湖北省中医医术确有专长人员医师资格考核（{code}）",
        "opens_at": iso(window.get("opens_at", now() - timedelta(days=1))),
        "closes_at": iso(window.get("closes_at", now() + timedelta(days=30))),
    }
    response = harness.request("POST", "/v1/declarations/admin/projects", key=None, headers=as_key(admin), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def declare(harness, subject_id: str, kind: str = TCM, **extra):  # noqa: F811
    return harness.request("POST", "/v1/declarations", json={"subject_id": subject_id, "kind": kind, **extra})


def test_a_second_tcm_declaration_for_the_same_subject_and_year_is_refused(harness):  # noqa: F811
    verify_identity(harness, "user-1")
    first = declare(harness, "user-1")
    assert first.status_code == 201, first.text
    second = declare(harness, "user-1")
    assert second.status_code == 409, second.text
    # no project set up: the current year's default project, open all year, was seeded
    assert first.json()["project"]["code"].startswith("tcm_expertise-")
    error = second.json()["error"]
    assert error["code"] == "declaration_exists"
    assert error["details"]["declaration_id"] == first.json()["id"]
    assert first.json()["number"] in error["message_zh"] and "每个项目只能申报一次" in error["message_zh"]
    listed = harness.request("GET", "/v1/declarations", params={"subject_id": "user-1"}).json()
    assert [d["id"] for d in listed] == [first.json()["id"]]


def test_the_same_subject_may_declare_to_another_project_and_another_kind(harness):  # noqa: F811
    admin = admin_secret(harness)
    verify_identity(harness, "user-1")
    create_project(harness, admin, "tcm-2026")
    create_project(harness, admin, "tcm-2027", year=2027)
    first = declare(harness, "user-1", project_code="tcm-2026")
    other = declare(harness, "user-1", project_code="tcm-2027")
    assert (first.status_code, other.status_code) == (201, 201), other.text
    assert other.json()["project"]["title"] == "2027年湖北省中医医术确有专长人员医师资格考核（tcm-2027）"
    # two projects open and none named: the applicant must choose
    unnamed = declare(harness, "user-1")
    assert unnamed.status_code == 422
    assert unnamed.json()["error"]["details"]["errors"][0]["code"] == "project_required"
    probation = declare(harness, "user-1", kind="physician_probation")
    assert probation.status_code == 201, probation.text
    mismatch = declare(harness, "user-1", kind="physician_probation", project_code="tcm-2026")
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["details"]["errors"][0]["field"] == "project_code"
    unknown = declare(harness, "user-1", project_code="no-such-project")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "project_not_found")


def test_submitting_outside_the_window_is_refused_with_the_dates_in_beijing_time(harness):  # noqa: F811
    admin = admin_secret(harness)
    verify_identity(harness, "user-1")
    create_project(harness, admin, "tcm-2026")
    draft = declare(harness, "user-1", project_code="tcm-2026").json()
    doc = upload(harness, draft["id"], PDF_BYTES, "证书.pdf")
    assert harness.request("PUT", f"/v1/declarations/{draft['id']}/form", json=practice_form(doc)).status_code == 200

    # the office closes the window (2026-03-01 08:00 to 2026-03-31 17:00 Beijing = 00:00 and 09:00 UTC)
    closed = harness.request(
        "PATCH",
        "/v1/declarations/admin/projects/tcm-2026",
        key=None,
        headers=as_key(admin),
        json={"opens_at": "2026-03-01T00:00:00Z", "closes_at": "2026-03-31T09:00:00Z"},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["window_zh"] == "2026年03月01日 08:00至2026年03月31日 17:00（北京时间）"
    refused = harness.request("POST", f"/v1/declarations/{draft['id']}/submit")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "declaration_window_closed"
    assert "2026年03月01日 08:00至2026年03月31日 17:00（北京时间）" in error["message_zh"]
    assert "已结束" in error["message_zh"]
    assert harness.request("GET", f"/v1/declarations/{draft['id']}").json()["status"] == "draft"

    # not yet open: a draft may wait, its submission may not
    later = now() + timedelta(days=10)
    reopened = harness.request(
        "PATCH",
        "/v1/declarations/admin/projects/tcm-2026",
        key=None,
        headers=as_key(admin),
        json={"opens_at": iso(later), "closes_at": iso(later + timedelta(days=5))},
    )
    assert reopened.status_code == 200 and reopened.json()["open_now"] is False
    early = harness.request("POST", f"/v1/declarations/{draft['id']}/submit")
    assert (early.status_code, early.json()["error"]["code"]) == (409, "declaration_window_not_open")
    assert "尚未开始" in early.json()["error"]["message_zh"]

    # inside the window it goes through, and the notice names the project
    harness.request(
        "PATCH",
        "/v1/declarations/admin/projects/tcm-2026",
        key=None,
        headers=as_key(admin),
        json={"opens_at": iso(now() - timedelta(days=1)), "closes_at": iso(now() + timedelta(days=1))},
    )
    acknowledged = harness.request(
        "POST",
        f"/v1/declarations/{draft['id']}/acknowledge-instructions",
        json={"version": instructions.version(DeclarationKind.TCM_EXPERTISE)},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    submitted = harness.request("POST", f"/v1/declarations/{draft['id']}/submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted", submitted.text
    notice = harness.request("GET", f"/v1/declarations/{draft['id']}/notice.pdf")
    text = PdfReader(io.BytesIO(notice.content)).pages[0].extract_text()
    assert "（tcm-2026）" in text


def test_no_declaration_is_created_for_a_closed_project(harness):  # noqa: F811
    admin = admin_secret(harness)
    verify_identity(harness, "user-1")
    create_project(
        harness,
        admin,
        "tcm-2020",
        year=2020,
        opens_at=datetime(2020, 3, 1, tzinfo=UTC),
        closes_at=datetime(2020, 4, 1, tzinfo=UTC),
    )
    refused = declare(harness, "user-1", project_code="tcm-2020")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "declaration_window_closed")
    assert "2020年03月01日 08:00至2020年04月01日 08:00（北京时间）" in refused.json()["error"]["message_zh"]


@pytest.mark.parametrize("harness_settings", [{"declaration_default_projects": False}])
def test_without_default_projects_a_kind_with_no_open_project_cannot_be_declared(harness):  # noqa: F811
    verify_identity(harness, "user-1")
    refused = declare(harness, "user-1")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "no_open_project")
    assert refused.json()["error"]["message_zh"] == "当前没有开放申报的项目"


def test_projects_are_created_by_an_admin_and_listed_to_applicants(harness):  # noqa: F811
    admin = admin_secret(harness)
    created = create_project(harness, admin, "tcm-2026")
    assert created["open_now"] is True and created["kind"] == TCM
    duplicate = harness.request(
        "POST",
        "/v1/declarations/admin/projects",
        key=None,
        headers=as_key(admin),
        json={**{k: created[k] for k in ("code", "kind", "year", "title", "opens_at", "closes_at")}},
    )
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "project_exists")
    empty = harness.request(
        "POST",
        "/v1/declarations/admin/projects",
        key=None,
        headers=as_key(admin),
        json={**created, "code": "x", "closes_at": created["opens_at"]},
    )
    assert empty.status_code == 422 and empty.json()["error"]["details"]["errors"][0]["field"] == "closes_at"
    forbidden = harness.request("POST", "/v1/declarations/admin/projects", json=created)
    assert forbidden.status_code == 403
    listed = harness.request("GET", "/v1/declarations/projects", params={"kind": TCM})
    assert [p["code"] for p in listed.json()] == ["tcm-2026"]
