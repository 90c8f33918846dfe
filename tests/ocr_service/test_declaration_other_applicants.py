"""Issue 12 item 3: military and HK/Macau/Taiwan applicants declare without a verified identity.

The manual (003, 其他身份人员): 部队考生、港澳台考生 cannot pass the platform's real-name check and
declare their probation directly. Over HTTP on SQLite and PostgreSQL: such a declaration is
created from what they type, marked for identity review, and the unit cannot approve it before
it has checked their documents.
"""

from __future__ import annotations

from ocr_service.declaration import instructions
from ocr_service.declaration.models import DeclarationKind
from tests.ocr_service.api_harness import harness, harness_callback_url, harness_settings  # noqa: F401
from tests.ocr_service.declaration_fixtures import PDF_BYTES, UNIT_NAME, probation_form
from tests.ocr_service.test_declaration_api import admin_secret, as_key, upload

PROBATION = "physician_probation"
MILITARY = {"name": "李卫国", "document_type": "military", "document_number": "军字第2024001号", "sex": "男"}
TAIWAN = {"name": "陈美玲", "document_type": "taiwan_permit", "document_number": "01234567"}


def declare(harness, subject_id: str, kind: str = PROBATION, **extra):  # noqa: F811
    return harness.request("POST", "/v1/declarations", json={"subject_id": subject_id, "kind": kind, **extra})


def field_errors(response) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json()["error"]["details"]["errors"]]


def test_a_military_applicant_without_a_verified_identity_may_declare_for_identity_review(harness):  # noqa: F811
    created = declare(harness, "soldier-1", applicant_category="military", applicant=MILITARY)
    assert created.status_code == 201, created.text
    declaration = created.json()
    assert declaration["applicant_category"] == "military"
    assert declaration["identity_review"] == "pending"
    applicant = declaration["applicant"]
    assert (applicant["name"], applicant["sex"], applicant["document_type"]) == ("李卫国", "男", "military")
    assert applicant["verification_id"] is None
    assert "2024001" not in applicant["id_number_masked"]


def test_an_hk_macau_taiwan_applicant_declares_with_a_permit_of_their_group_only(harness):  # noqa: F811
    created = declare(harness, "tw-1", applicant_category="hk_macau_taiwan", applicant=TAIWAN)
    assert created.status_code == 201, created.text
    assert created.json()["identity_review"] == "pending"
    wrong = declare(
        harness, "tw-2", applicant_category="hk_macau_taiwan", applicant={**TAIWAN, "document_type": "military"}
    )
    assert wrong.status_code == 422
    assert field_errors(wrong) == [("applicant.document_type", "document_not_for_category")]
    assert "港澳台考生" in wrong.json()["error"]["details"]["errors"][0]["message_zh"]
    resident = declare(
        harness, "tw-3", applicant_category="hk_macau_taiwan", applicant={**TAIWAN, "document_type": "resident_id"}
    )
    assert resident.status_code == 422


def test_everyone_else_still_needs_a_verified_identity(harness):  # noqa: F811
    refused = declare(harness, "nobody")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "identity_not_verified")
    assert "部队考生、港澳台考生" in refused.json()["error"]["message_zh"]
    # the manual's direct route is the probation declaration only
    tcm = declare(harness, "soldier-1", kind="tcm_expertise", applicant_category="military", applicant=MILITARY)
    assert tcm.status_code == 422 and field_errors(tcm) == [("applicant_category", "category_not_for_kind")]
    nothing_typed = declare(harness, "soldier-1", applicant_category="military")
    assert nothing_typed.status_code == 422 and field_errors(nothing_typed) == [("applicant", "required")]


def test_the_unit_checks_the_identity_before_it_can_approve(harness):  # noqa: F811
    admin = admin_secret(harness)
    unit = harness.request(
        "POST",
        "/v1/declarations/admin/work-units",
        key=None,
        headers=as_key(admin),
        json={"name": UNIT_NAME, "confirmation_code": "K7M2P9XQ4R"},
    ).json()
    bound = harness.request(
        "PUT",
        "/v1/declarations/work-unit-binding",
        json={"subject_id": "soldier-1", "work_unit_id": unit["id"], "confirmation_code": "K7M2P9XQ4R"},
    )
    assert bound.status_code == 200, bound.text
    declaration = declare(harness, "soldier-1", applicant_category="military", applicant=MILITARY).json()
    form = probation_form()
    for slot in ("military_education_proof", "military_probation_assessment"):
        form["uploads"][slot] = upload(harness, declaration["id"], PDF_BYTES, f"{slot}.pdf")
    saved = harness.request("PUT", f"/v1/declarations/{declaration['id']}/form", json=form)
    assert saved.status_code == 200, saved.text
    harness.request(
        "POST",
        f"/v1/declarations/{declaration['id']}/acknowledge-instructions",
        json={"version": instructions.version(DeclarationKind.PHYSICIAN_PROBATION)},
    )
    confirmed = harness.request("POST", f"/v1/declarations/{declaration['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    submitted = harness.request("POST", f"/v1/declarations/{declaration['id']}/submit")
    assert submitted.json()["status"] == "submitted", submitted.text

    unit_key = as_key(unit["reviewer_key"])
    queue = harness.request("GET", "/v1/declarations/review", key=None, headers=unit_key).json()
    assert [(d["id"], d["identity_review"]) for d in queue] == [(declaration["id"], "pending")]
    early = harness.request(
        "POST", f"/v1/declarations/review/{declaration['id']}/approve", key=None, headers=unit_key, json={}
    )
    assert (early.status_code, early.json()["error"]["code"]) == (409, "identity_review_pending")
    assert "核验" in early.json()["error"]["message_zh"]
    checked = harness.request(
        "POST",
        f"/v1/declarations/review/{declaration['id']}/confirm-identity",
        key=None,
        headers=unit_key,
        json={"reason": "军官证原件已核验"},
    )
    assert checked.status_code == 200 and checked.json()["identity_review"] == "confirmed", checked.text
    event = checked.json()["events"][-1]
    assert (event["action"], event["reason"], event["actor"]) == (
        "confirm_identity",
        "军官证原件已核验",
        f"unit:{unit['id']}",
    )
    again = harness.request(
        "POST", f"/v1/declarations/review/{declaration['id']}/confirm-identity", key=None, headers=unit_key, json={}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "no_identity_review")
    approved = harness.request(
        "POST", f"/v1/declarations/review/{declaration['id']}/approve", key=None, headers=unit_key, json={}
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text


_ROWS_AT_0012 = (
    "INSERT INTO api_keys (id, name, key_prefix, key_hash, scopes, created_at)"
    " VALUES ('k1', 'old app', 'ocr_kkkk', :hash, 'client', :now)",
    "INSERT INTO verifications (id, client_key_id, subject_id, document_type, method, status, claim_name,"
    " claim_number_enc, claim_number_index, created_at, updated_at, decision_reasons)"
    " VALUES ('v1', 'k1', 'subject-1', 'resident_id', 'auto', 'verified', :blob, :blob, :hash, :now, :now, '[]')",
    "INSERT INTO verified_identities (id, client_key_id, subject_id, verification_id, name, document_type,"
    " number_enc, number_index, method, verified_at, flagged)"
    " VALUES ('i1', 'k1', 'subject-1', 'v1', :blob, 'resident_id', :blob, :hash, 'auto', :now, false)",
    "INSERT INTO declarations (id, number, kind, status, client_key_id, subject_id, identity_id, verification_id,"
    " applicant_name, document_type, number_enc, flagged, created_at, updated_at)"
    " VALUES ('d1', 'ZC1', 'tcm_expertise', 'submitted', 'k1', 'subject-1', 'i1', 'v1', :blob, 'resident_id',"
    " :blob, false, :now, :now)",
    "INSERT INTO declaration_events (declaration_id, to_status, action, actor, at)"
    " VALUES ('d1', 'draft', 'create', 'key:k1', :now), ('d1', 'submitted', 'submit', 'key:k1', :now)",
)


def test_migration_0013_keeps_existing_declarations_and_their_history(database_url):
    """SQLite drops the NOT NULL of identity_id without copying the table (a copy would cascade)."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from ocr_service.db import Database, alembic_config

    database = Database(database_url)
    try:
        with database.engine.connect() as connection:
            command.upgrade(alembic_config(connection), "0012_attempt_episodes")
            values = {"hash": "0" * 64, "blob": b"x", "now": datetime.now(UTC).replace(tzinfo=None)}
            for statement in _ROWS_AT_0012:
                connection.execute(text(statement), values)
            connection.commit()
        database.upgrade()
        with database.engine.connect() as connection:
            rows = connection.execute(text("SELECT id, project_id, identity_id FROM declarations")).all()
            assert [tuple(row) for row in rows] == [("d1", None, "i1")]
            assert connection.execute(text("SELECT count(*) FROM declaration_events")).scalar_one() == 2
            # a declaration without a verified identity now fits
            connection.execute(
                text(
                    "INSERT INTO declarations (id, number, kind, status, client_key_id, subject_id, applicant_name,"
                    " document_type, number_enc, flagged, created_at, updated_at, applicant_category,"
                    " identity_review) VALUES ('d2', 'SY1', 'physician_probation', 'draft', 'k1', 'soldier-1',"
                    " :blob, 'military', :blob, false, :now, :now, 'military', 'pending')"
                ),
                values,
            )
            connection.commit()
    finally:
        database.dispose()
