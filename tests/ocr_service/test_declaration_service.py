"""ocr_service.declaration.service on SQLite and PostgreSQL: identity, state machine, units, attachments, flags."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ocr_service.crypto import get_cipher
from ocr_service.declaration import service
from ocr_service.declaration.models import DeclarationKind, DeclarationStatus, UnitBinding
from ocr_service.errors import ApiError
from ocr_service.storage import get_blob_store
from ocr_service.verification.models import VerifiedIdentity
from ocr_service.verification.service import _identity_aad
from tests.ocr_service.api_harness import service_runtime  # noqa: F401 (fixture)
from tests.ocr_service.conftest import add_verification
from tests.ocr_service.declaration_fixtures import PDF_BYTES, UNIT_NAME, png_bytes, practice_form, probation_form

NUMBER = "420102199003074512"


def verified(session, client, subject_id="subject-1", document_type="resident_id", flagged=False) -> VerifiedIdentity:
    verification = add_verification(session, client, subject_id=subject_id)
    identity = VerifiedIdentity(
        client_key_id=client.id,
        subject_id=subject_id,
        verification_id=verification.id,
        name="王小明",
        sex="男",
        ethnicity="汉",
        document_type=document_type,
        number_enc=b"",
        number_index="0" * 64,
        method="auto",
        flagged=flagged,
        flag_reason="number verified for another subject" if flagged else None,
    )
    identity.number_enc = get_cipher().encrypt_text(NUMBER, _identity_aad(identity.id))
    session.add(identity)
    session.commit()
    return identity


@pytest.fixture
def ctx(service_runtime):  # noqa: F811
    session = service_runtime.session()
    client = service_runtime.client_key(session)
    yield session, client, service_runtime.settings
    session.close()


def tcm_ready(session, client, settings, subject_id="subject-1"):
    declaration = service.create_declaration(session, client, subject_id, DeclarationKind.TCM_EXPERTISE)
    doc = service.add_attachment(session, client, declaration.id, PDF_BYTES, "a.pdf", settings, get_blob_store())
    return service.save_form(session, client, declaration.id, practice_form(doc.id))


def bound_probation(session, client, subject_id="subject-1"):
    unit, _secret = service.register_work_unit(session, UNIT_NAME, "246810")
    service.bind_work_unit(session, client, subject_id, unit.id, "246810")
    declaration = service.create_declaration(session, client, subject_id, DeclarationKind.PHYSICIAN_PROBATION)
    return unit, service.save_form(session, client, declaration.id, probation_form())


def test_a_declaration_needs_a_verified_identity(ctx):
    session, client, _ = ctx
    with pytest.raises(ApiError) as error:
        service.create_declaration(session, client, "nobody", DeclarationKind.TCM_EXPERTISE)
    assert (error.value.status, error.value.code) == (409, "identity_not_verified")


def test_applicant_fields_are_copied_from_the_verified_identity(ctx):
    session, client, _ = ctx
    identity = verified(session, client)
    declaration = service.create_declaration(session, client, "subject-1", DeclarationKind.TCM_EXPERTISE)
    assert (declaration.applicant_name, declaration.applicant_sex, declaration.applicant_ethnicity) == (
        "王小明",
        "男",
        "汉",
    )
    assert declaration.verification_id == identity.verification_id
    assert service.applicant_number(declaration) == NUMBER and NUMBER.encode() not in declaration.number_enc
    view = service.declaration_view(declaration)
    assert view.applicant.id_number_masked == "420102********4512"


def test_submit_review_and_return_follow_the_state_machine_and_are_recorded(ctx):
    session, client, settings = ctx
    verified(session, client)
    declaration = tcm_ready(session, client, settings)
    service.submit(session, client, declaration.id)
    with pytest.raises(ApiError) as error:
        service.submit(session, client, declaration.id)
    assert (error.value.status, error.value.code) == (409, "illegal_transition")
    admin = client
    admin.scopes = "client,admin"
    service.review_action(session, admin, declaration.id, service.Action.START_REVIEW)
    with pytest.raises(ApiError) as error:
        service.withdraw(session, client, declaration.id)  # too late: review has started
    assert error.value.code == "illegal_transition"
    with pytest.raises(ApiError) as error:
        service.review_action(session, admin, declaration.id, service.Action.RETURN, "")
    assert error.value.details["errors"][0]["field"] == "reason"
    service.review_action(session, admin, declaration.id, service.Action.RETURN, "推荐医师材料不清晰")
    service.submit(session, client, declaration.id)
    service.review_action(session, admin, declaration.id, service.Action.APPROVE)
    events = [(e.from_status, e.to_status, e.actor.split(":")[0]) for e in declaration.events]
    assert events == [
        (None, "draft", "key"),
        ("draft", "submitted", "key"),
        ("submitted", "under_review", "admin"),
        ("under_review", "returned", "admin"),
        ("returned", "submitted", "key"),
        ("submitted", "approved", "admin"),
    ]
    assert declaration.events[3].reason == "推荐医师材料不清晰" and declaration.events[3].at is not None


def test_an_approved_declaration_is_read_only_until_the_unit_allows_modification(ctx):
    session, client, _ = ctx
    verified(session, client)
    unit, declaration = bound_probation(session, client)
    service.confirm(session, client, declaration.id)
    service.submit(session, client, declaration.id)
    unit_key = session.get(type(client), unit.reviewer_key_id)
    service.review_action(session, unit_key, declaration.id, service.Action.APPROVE)
    with pytest.raises(ApiError) as error:
        service.save_form(session, client, declaration.id, probation_form())
    assert (error.value.status, error.value.code) == (409, "declaration_not_editable")
    with pytest.raises(ApiError) as error:
        service.withdraw(session, client, declaration.id)
    assert error.value.code == "illegal_transition"
    service.review_action(session, unit_key, declaration.id, service.Action.ALLOW_MODIFICATION, "更正学历")
    service.save_form(session, client, declaration.id, probation_form())
    with pytest.raises(ApiError) as error:
        service.submit(session, client, declaration.id)  # the edited form must be confirmed again
    assert error.value.code == "not_confirmed"
    service.confirm(session, client, declaration.id)
    assert service.submit(session, client, declaration.id).status is DeclarationStatus.SUBMITTED


def test_the_applicant_may_withdraw_and_edit_before_review(ctx):
    session, client, settings = ctx
    verified(session, client)
    declaration = tcm_ready(session, client, settings)
    service.submit(session, client, declaration.id)
    assert service.withdraw(session, client, declaration.id).status is DeclarationStatus.WITHDRAWN
    raw = practice_form(declaration.attachments[0].id)
    raw["narratives"]["practice_history"] = "行医二十五年"
    service.save_form(session, client, declaration.id, raw)
    assert service.submit(session, client, declaration.id).status is DeclarationStatus.SUBMITTED


def test_another_units_reviewer_cannot_see_the_declaration(ctx):
    session, client, _ = ctx
    verified(session, client)
    _unit, declaration = bound_probation(session, client)
    service.confirm(session, client, declaration.id)
    service.submit(session, client, declaration.id)
    other, _ = service.register_work_unit(session, "另一家医院", "135790")
    other_key = session.get(type(client), other.reviewer_key_id)
    with pytest.raises(ApiError) as error:
        service.review_action(session, other_key, declaration.id, service.Action.APPROVE)
    assert error.value.status == 404


def test_a_wrong_confirmation_code_is_refused_and_rate_limited(ctx):
    session, client, _ = ctx
    unit, _ = service.register_work_unit(session, UNIT_NAME, "246810")
    assert "246810" not in unit.confirmation_code_hash
    for _ in range(service.BIND_MAX_FAILURES):
        with pytest.raises(ApiError) as error:
            service.bind_work_unit(session, client, "subject-1", unit.id, "000000")
        assert (error.value.code, error.value.details["errors"][0]["field"]) == (
            "wrong_confirmation_code",
            "confirmation_code",
        )
    with pytest.raises(ApiError) as error:
        service.bind_work_unit(session, client, "subject-1", unit.id, "246810")  # even the right code, for now
    assert (error.value.status, error.value.code) == (429, "too_many_bind_attempts")
    service.bind_work_unit(session, client, "subject-2", unit.id, "246810")  # per subject


def test_units_are_found_by_name_and_a_subject_can_unbind_and_rebind(ctx):
    session, client, _ = ctx
    first, _ = service.register_work_unit(session, UNIT_NAME, "246810")
    second, _ = service.register_work_unit(session, "武汉市第一医院", "135790")
    assert [u.name for u in service.search_work_units(session, "江岸")] == [UNIT_NAME]
    service.bind_work_unit(session, client, "subject-1", first.id, "246810")
    service.unbind_work_unit(session, client, "subject-1")
    assert service.get_binding(session, client, "subject-1") is None
    service.bind_work_unit(session, client, "subject-1", second.id, "135790")
    service.bind_work_unit(session, client, "subject-1", first.id, "246810")
    bindings = session.scalars(select(UnitBinding)).all()
    assert [(b.subject_id, b.work_unit_id) for b in bindings] == [("subject-1", first.id)]
    with pytest.raises(ApiError) as error:
        service.register_work_unit(session, UNIT_NAME, "999999")
    assert error.value.code == "work_unit_exists"


def test_flagging_an_identity_flags_its_open_declarations_for_the_reviewer(ctx):
    session, client, settings = ctx
    verified(session, client)
    declaration = tcm_ready(session, client, settings)
    approved = tcm_ready(session, client, settings)
    service.submit(session, client, approved.id)
    client.scopes = "client,admin"
    service.review_action(session, client, approved.id, service.Action.APPROVE)
    assert service.flag_declarations_for_identity(session, "subject-1", client.id, "re-verification failed") == 1
    session.commit()
    view = service.declaration_view(service.get_for_review(session, client, declaration.id), for_reviewer=True)
    assert (view.flagged, view.flag_reason) == (True, "re-verification failed")
    assert service.get_for_review(session, client, approved.id).flagged is False


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"<html><script>alert(1)</script></html>", "unsupported_attachment_type", 415),
        (b"GIF89a....", "unsupported_attachment_type", 415),
        (b"", "empty_attachment", 422),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged_attachment", 422),
        (b"%PDF-1.4 truncated", "damaged_attachment", 422),
    ],
)
def test_attachments_must_be_real_pdf_jpeg_or_png(ctx, data, code, status):
    session, client, settings = ctx
    verified(session, client)
    declaration = service.create_declaration(session, client, "subject-1", DeclarationKind.TCM_EXPERTISE)
    with pytest.raises(ApiError) as error:
        service.add_attachment(session, client, declaration.id, data, "x.pdf", settings, get_blob_store())
    assert (error.value.code, error.value.status) == (code, status)
    assert error.value.details["errors"][0]["field"] == "file"


def test_an_attachment_over_the_size_limit_is_refused_and_an_accepted_one_is_stored_encrypted(ctx):
    session, client, settings = ctx
    verified(session, client)
    declaration = service.create_declaration(session, client, "subject-1", DeclarationKind.TCM_EXPERTISE)
    small = settings.model_copy(update={"declaration_max_attachment_bytes": 100})
    with pytest.raises(ApiError) as error:
        service.add_attachment(session, client, declaration.id, png_bytes(), "p.png", small, get_blob_store())
    assert (error.value.code, error.value.status) == ("attachment_too_large", 413)
    stored = service.add_attachment(
        session, client, declaration.id, png_bytes(), "证书.png", settings, get_blob_store()
    )
    assert stored.content_type == "image/png" and stored.filename == "证书.png"
    raw = get_blob_store().path(stored.blob_id).read_bytes()
    assert b"PNG" not in raw[:16]
    assert service.read_attachment(declaration, stored.id, get_blob_store())[1] == png_bytes()
