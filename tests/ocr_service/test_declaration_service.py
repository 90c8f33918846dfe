"""ocr_service.declaration.service on SQLite and PostgreSQL: identity, state machine, units, attachments, flags."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from ocr_service.auth import Scope, create_api_key
from ocr_service.crypto import get_cipher
from ocr_service.db import utcnow
from ocr_service.declaration import instructions, service
from ocr_service.declaration.models import DeclarationKind, DeclarationStatus, UnitBinding
from ocr_service.errors import ApiError
from ocr_service.storage import get_blob_store
from ocr_service.verification.models import VerifiedIdentity
from ocr_service.verification.service import _identity_aad
from tests.ocr_service.api_harness import service_runtime  # noqa: F401 (fixture)
from tests.ocr_service.conftest import add_verification
from tests.ocr_service.declaration_fixtures import PDF_BYTES, UNIT_NAME, png_bytes, practice_form, probation_form

NUMBER = "420102199003074512"
# work-unit confirmation codes: 10 characters of the unambiguous alphabet
UNIT_CODE = "K7M2P9XQ4R"
OTHER_CODE = "H3N8W5T6YC"


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


def acknowledge(session, client, declaration):
    """The applicant acknowledges the 申报须知 (needed before confirm and submit)."""
    service.acknowledge_instructions(session, client, declaration.id, instructions.version(declaration.kind))


def tcm_ready(session, client, settings, subject_id="subject-1", project_code=None):
    declaration = service.create_declaration(
        session, client, subject_id, DeclarationKind.TCM_EXPERTISE, project_code=project_code
    )
    acknowledge(session, client, declaration)
    doc = service.add_attachment(session, client, declaration.id, PDF_BYTES, "a.pdf", settings, get_blob_store())
    return service.save_form(session, client, declaration.id, practice_form(doc.id))


def bound_probation(session, client, subject_id="subject-1"):
    unit, _secret = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    service.bind_work_unit(session, client, subject_id, unit.id, UNIT_CODE)
    declaration = service.create_declaration(session, client, subject_id, DeclarationKind.PHYSICIAN_PROBATION)
    acknowledge(session, client, declaration)
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
    assert view.applicant.id_number_masked == "4****************2"


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
    other, _ = service.register_work_unit(session, "另一家医院", OTHER_CODE)
    other_key = session.get(type(client), other.reviewer_key_id)
    with pytest.raises(ApiError) as error:
        service.review_action(session, other_key, declaration.id, service.Action.APPROVE)
    assert error.value.status == 404


def test_a_wrong_confirmation_code_is_refused_and_rate_limited(ctx):
    session, client, settings = ctx
    unit, _ = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    assert UNIT_CODE not in unit.confirmation_code_hash
    for _ in range(settings.unit_code_max_failures_per_subject):
        with pytest.raises(ApiError) as error:
            service.bind_work_unit(session, client, "subject-1", unit.id, "AAAAAAAAAA")
        assert (error.value.code, error.value.details["errors"][0]["field"]) == (
            "wrong_confirmation_code",
            "confirmation_code",
        )
    with pytest.raises(ApiError) as error:
        service.bind_work_unit(session, client, "subject-1", unit.id, UNIT_CODE)  # even the right code, for now
    assert (error.value.status, error.value.code) == (429, "too_many_bind_attempts")
    assert error.value.details["scope"] == "subject"
    assert int(error.value.headers["Retry-After"]) == settings.unit_code_lockout_seconds
    assert "分钟后再试" in error.value.message_zh
    service.bind_work_unit(session, client, "subject-2", unit.id, UNIT_CODE)  # the unit is not locked yet


def _limits(settings, **limits):
    """Settings with the given unit-code limits (the rest as configured)."""
    return settings.model_copy(update={f"unit_code_{name}": value for name, value in limits.items()})


class _Clock:
    """Stands in for ``service.utcnow`` so lockouts can expire without waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _fail(session, client, subject_id, unit_id, settings, code="AAAAAAAAAA") -> ApiError:
    with pytest.raises(ApiError) as error:
        service.bind_work_unit(session, client, subject_id, unit_id, code, settings=settings)
    return error.value


def test_failures_under_many_subject_ids_lock_the_unit_for_everyone(ctx, service_runtime):  # noqa: F811
    session, client, settings = ctx
    settings = _limits(settings, max_failures_per_subject=5, max_failures_per_unit=8, max_failures_per_client=1000)
    unit, _ = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    for i in range(8):  # the attack of finding 6: a fresh subject id for every guess
        assert _fail(session, client, f"guess-{i}", unit.id, settings).code == "wrong_confirmation_code"
    locked = _fail(session, client, "guess-99", unit.id, settings, code=UNIT_CODE)
    assert (locked.status, locked.code, locked.details["scope"]) == (429, "too_many_bind_attempts", "unit")
    assert int(locked.headers["Retry-After"]) == settings.unit_code_lockout_seconds
    # the lock is the unit's: another client key with the right code waits too
    other_client, _ = create_api_key(session, "another app", [Scope.CLIENT])
    session.commit()
    assert _fail(session, other_client, "someone", unit.id, settings, code=UNIT_CODE).details["scope"] == "unit"
    # other units are not affected
    other, _ = service.register_work_unit(session, "另一家医院", OTHER_CODE)
    service.bind_work_unit(session, client, "guess-100", other.id, OTHER_CODE, settings=settings)


def test_failures_across_units_lock_the_client_key(ctx):
    session, client, settings = ctx
    settings = _limits(settings, max_failures_per_subject=100, max_failures_per_unit=100, max_failures_per_client=4)
    units = [service.register_work_unit(session, f"医院{i}", UNIT_CODE)[0] for i in range(3)]
    for i in range(4):
        assert _fail(session, client, f"s{i}", units[i % 3].id, settings).code == "wrong_confirmation_code"
    locked = _fail(session, client, "fresh", units[2].id, settings, code=UNIT_CODE)
    assert (locked.status, locked.details["scope"]) == (429, "client")
    other_client, _ = create_api_key(session, "another app", [Scope.CLIENT])
    session.commit()
    service.bind_work_unit(session, other_client, "fresh", units[2].id, UNIT_CODE, settings=settings)


def test_each_further_lockout_lasts_twice_as_long_up_to_the_maximum(ctx, monkeypatch):
    session, client, settings = ctx
    settings = _limits(settings, max_failures_per_subject=2, lockout_seconds=60, lockout_max_seconds=200)
    clock = _Clock()
    monkeypatch.setattr(service, "utcnow", clock)
    unit, _ = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    waits = []
    for _round in range(4):
        _fail(session, client, "subject-1", unit.id, settings)
        _fail(session, client, "subject-1", unit.id, settings)
        locked = _fail(session, client, "subject-1", unit.id, settings, code=UNIT_CODE)
        assert locked.status == 429
        waits.append(int(locked.headers["Retry-After"]))
        clock.advance(waits[-1] - 1)
        assert _fail(session, client, "subject-1", unit.id, settings, code=UNIT_CODE).status == 429
        clock.advance(1)
    assert waits == [60, 120, 200, 200]
    assert service.bind_work_unit(session, client, "subject-1", unit.id, UNIT_CODE, settings=settings).work_unit_id


def test_a_success_does_not_wipe_other_callers_failures_on_the_unit(ctx):
    session, client, settings = ctx
    settings = _limits(settings, max_failures_per_subject=5, max_failures_per_unit=3, max_failures_per_client=1000)
    unit, _ = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    _fail(session, client, "attacker-1", unit.id, settings)
    _fail(session, client, "attacker-2", unit.id, settings)
    service.bind_work_unit(session, client, "applicant", unit.id, UNIT_CODE, settings=settings)
    assert _fail(session, client, "attacker-3", unit.id, settings).code == "wrong_confirmation_code"
    assert _fail(session, client, "attacker-4", unit.id, settings, code=UNIT_CODE).details["scope"] == "unit"


def test_generated_codes_are_ten_characters_of_an_unambiguous_alphabet():
    codes = {service.new_confirmation_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 10
        assert set(code) <= set(service.CONFIRMATION_CODE_ALPHABET)
    assert not set("0O1IL") & set(service.CONFIRMATION_CODE_ALPHABET)


@pytest.mark.parametrize(
    "code", ["246810", "K7M2P9X", "K7M2P9XQ0R", "K7M2P9XQIR", "K7M2P9XQ R", "K7M2P9XQ-R", "中文确认码一二三四"]
)
def test_a_chosen_code_that_is_short_or_has_ambiguous_characters_is_refused(ctx, code):
    session, _client, _ = ctx
    with pytest.raises(ApiError) as error:
        service.register_work_unit(session, UNIT_NAME, code)
    assert (error.value.status, error.value.code) == (422, "weak_confirmation_code")
    assert error.value.details["errors"][0]["field"] == "confirmation_code"
    assert error.value.details["min_length"] == 8
    assert error.value.details["alphabet"] == service.CONFIRMATION_CODE_ALPHABET
    assert service.search_work_units(session, UNIT_NAME) == []


def test_codes_compare_without_regard_to_case_or_surrounding_spaces(ctx):
    session, client, _ = ctx
    unit, _ = service.register_work_unit(session, UNIT_NAME, "k7m2p9xq4r")
    service.bind_work_unit(session, client, "subject-1", unit.id, UNIT_CODE)
    service.bind_work_unit(session, client, "subject-2", unit.id, " k7M2p9Xq4r ")


def test_units_are_found_by_name_and_a_subject_can_unbind_and_rebind(ctx):
    session, client, _ = ctx
    first, _ = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    second, _ = service.register_work_unit(session, "武汉市第一医院", OTHER_CODE)
    assert [u.name for u in service.search_work_units(session, "江岸")] == [UNIT_NAME]
    service.bind_work_unit(session, client, "subject-1", first.id, UNIT_CODE)
    service.unbind_work_unit(session, client, "subject-1")
    assert service.get_binding(session, client, "subject-1") is None
    service.bind_work_unit(session, client, "subject-1", second.id, OTHER_CODE)
    service.bind_work_unit(session, client, "subject-1", first.id, UNIT_CODE)
    bindings = session.scalars(select(UnitBinding)).all()
    assert [(b.subject_id, b.work_unit_id) for b in bindings] == [("subject-1", first.id)]
    with pytest.raises(ApiError) as error:
        service.register_work_unit(session, UNIT_NAME, "ZZZZZZZZZZ")
    assert error.value.code == "work_unit_exists"


def test_flagging_an_identity_flags_its_open_declarations_for_the_reviewer(ctx):
    session, client, settings = ctx
    verified(session, client)
    declaration = tcm_ready(session, client, settings)
    # one declaration per project: the approved one belongs to next year's exam
    now = utcnow()
    service.create_project(
        session, "tcm-next", DeclarationKind.TCM_EXPERTISE, now.year + 1, "下一年度考核", now, now + timedelta(days=30)
    )
    approved = tcm_ready(session, client, settings, project_code="tcm-next")
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


def test_concurrent_guesses_from_many_sessions_get_exactly_the_units_budget(ctx, service_runtime):  # noqa: F811
    session, _client, settings = ctx
    settings = _limits(settings, max_failures_per_subject=5, max_failures_per_unit=6, max_failures_per_client=1000)
    unit, _ = service.register_work_unit(session, UNIT_NAME, UNIT_CODE)
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess(i: int) -> None:  # one API process's request: its own session
        own = service_runtime.session()
        try:
            barrier.wait()
            own_client = service_runtime.client_key(own)
            try:
                service.bind_work_unit(own, own_client, f"guess-{i}", unit.id, "AAAAAAAAAA", settings=settings)
            except ApiError as error:
                with lock:
                    outcomes.append(error.code)
        finally:
            own.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["too_many_bind_attempts"] * 10 + ["wrong_confirmation_code"] * 6
