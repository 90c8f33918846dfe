"""The review queue without HTTP: cases opening, atomic claims, leases, decisions, four-eyes, the audit chain.

Runs on SQLite and PostgreSQL (``service_runtime`` takes the ``database`` fixture).
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ocr_service.db import utcnow
from ocr_service.errors import ApiError
from ocr_service.review import service as review
from ocr_service.review.models import AuditEntry, CaseOrigin, CaseStatus, ReviewCase
from ocr_service.verification import service
from ocr_service.verification.models import (
    DocumentType,
    ImageSide,
    Method,
    Verification,
    VerificationStatus,
    VerifiedIdentity,
)
from ocr_service.verification.schemas import VerificationCreate
from tests.ocr_service.api_harness import CLEAN, claim_of, photo, service_runtime
from tests.ocr_service.conftest import add_verification

PASSPORT_NUMBER = "E12345678"
# what a reviewer types from the passport photo (nothing is pre-filled without a confirming read)
PASSPORT_IDENTITY = {"name": "JOHN SMITH", "document_number": PASSPORT_NUMBER}
ROOT = Path(__file__).resolve().parents[2]


def manual_passport_case(runtime, subject: str = "subject-1") -> str:
    """A foreign passport sent to manual review with one photo: the verification id."""
    with runtime.session() as session:
        client = runtime.client_key(session)
        body = VerificationCreate(
            subject_id=subject,
            document_type=DocumentType.FOREIGN_PASSPORT,
            method=Method.MANUAL,
            claim={"name": "JOHN SMITH", "document_number": PASSPORT_NUMBER},
        )
        verification = service.create_verification(session, client, body)
        service.submit_image(session, client, verification.id, ImageSide.FRONT, photo(CLEAN), None, runtime.settings)
        return verification.id


def case_of(runtime, verification_id: str) -> ReviewCase:
    with runtime.session() as session:
        return session.scalars(select(ReviewCase).where(ReviewCase.verification_id == verification_id)).one()


def bare_cases(runtime, count: int) -> list[str]:
    """Cases on verifications written directly (no photos): for claiming tests."""
    with runtime.session() as session:
        client = runtime.client_key(session)
        ids = []
        for i in range(count):
            verification = add_verification(session, client, f"subject-{i}", status=VerificationStatus.IN_REVIEW)
            ids.append(review.open_case(session, verification.id, "manual_method", ["manual_method"]).id)
            session.commit()
        return ids


# --- opening cases ----------------------------------------------------------------------------------


def test_a_verification_entering_review_gets_a_case_with_its_origin_and_reasons(service_runtime):
    verification_id = manual_passport_case(service_runtime)
    case = case_of(service_runtime, verification_id)
    assert case.status == CaseStatus.OPEN
    assert case.origin == CaseOrigin.MANUAL_METHOD
    assert case.reasons == ["manual_method"]


def test_opening_a_case_twice_merges_the_reasons_into_the_waiting_one(service_runtime):
    verification_id = manual_passport_case(service_runtime)
    with service_runtime.session() as session:
        again = review.open_case(session, verification_id, origin="reverification_failed", reasons=["name_mismatch"])
        session.commit()
        assert again.reasons == ["manual_method", "name_mismatch"]
        assert len(session.scalars(select(ReviewCase)).all()) == 1


def test_withdrawing_the_verification_closes_its_case(service_runtime):
    verification_id = manual_passport_case(service_runtime)
    with service_runtime.session() as session:
        service.withdraw(session, service_runtime.client_key(session), verification_id, service_runtime.settings)
    case = case_of(service_runtime, verification_id)
    assert (case.status, case.decision) == (CaseStatus.DECIDED, "withdrawn")


# --- claiming ------------------------------------------------------------------------------------------


def test_twenty_reviewers_claiming_at_once_never_get_the_same_case(service_runtime):
    case_ids = bare_cases(service_runtime, 8)
    barrier = threading.Barrier(20)
    claimed: list[str | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def take(i: int) -> None:
        try:
            with service_runtime.session() as session:
                barrier.wait()
                case = review.claim_next_case(session, f"reviewer:r{i}", settings=service_runtime.settings)
                with lock:
                    claimed.append(case.id if case else None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    won = [case_id for case_id in claimed if case_id]
    assert sorted(won) == sorted(case_ids)  # every case claimed exactly once
    assert claimed.count(None) == 12
    with service_runtime.session() as session:
        holders = session.scalars(select(ReviewCase.claimed_by)).all()
        assert len(set(holders)) == 8
        claims = session.scalars(select(AuditEntry).where(AuditEntry.action == "claim")).all()
        assert len(claims) == 8
        assert review.verify_audit_chain(session).ok


def test_the_oldest_case_is_claimed_first(service_runtime):
    first, second = bare_cases(service_runtime, 2)
    with service_runtime.session() as session:
        assert review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings).id == first
        assert review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings).id == second
        assert review.claim_next_case(session, "reviewer:c", settings=service_runtime.settings) is None


def test_a_case_whose_lease_ran_out_can_be_claimed_by_another_reviewer(service_runtime):
    (case_id,) = bare_cases(service_runtime, 1)
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        assert review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings) is None
        session.execute(
            text("UPDATE review_cases SET lease_expires_at = :t"),
            {"t": (utcnow() - timedelta(seconds=1)).replace(tzinfo=None)},
        )
        session.commit()
        taken = review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings)
        assert taken is not None and taken.id == case_id and taken.claimed_by == "reviewer:b"
        with pytest.raises(ApiError) as refused:
            review.release_case(session, case_id, "reviewer:a")
        assert refused.value.code == "lease_expired"  # the former holder learns why


def test_renewing_the_lease_keeps_the_case_and_releasing_returns_it_to_the_queue(service_runtime):
    (case_id,) = bare_cases(service_runtime, 1)
    with service_runtime.session() as session:
        case = review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        before = case.lease_expires_at
        assert review.renew_lease(session, case_id, "reviewer:a", service_runtime.settings).lease_expires_at >= before
        review.release_case(session, case_id, "reviewer:a")
        assert session.get(ReviewCase, case_id).status == CaseStatus.RELEASED
        assert review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings).id == case_id


# --- decisions -------------------------------------------------------------------------------------------


def claimed_passport_case(runtime, reviewer: str = "reviewer:a", subject: str = "subject-1") -> tuple[str, str]:
    verification_id = manual_passport_case(runtime, subject)
    with runtime.session() as session:
        case = review.claim_next_case(session, reviewer, settings=runtime.settings)
        return verification_id, case.id


def test_approving_verifies_the_subject_with_the_reviewers_correction_recorded(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        outcome = review.approve_case(
            session,
            case_id,
            "reviewer:a",
            {"name": "JOHN A SMITH", "document_number": PASSPORT_NUMBER, "birth_date": "1980-02-03"},
            service_runtime.settings,
        )
        assert (outcome.status, outcome.verification_status) == ("decided", "verified")
        identity = session.scalars(select(VerifiedIdentity)).one()
        assert identity.name == "JOHN A SMITH"
        assert identity.birth_date.isoformat() == "1980-02-03"
        assert identity.method == Method.MANUAL
        view = service.get_identity(session, service_runtime.client_key(session), "subject-1", full_number=True)
        assert view.document_number == PASSPORT_NUMBER
        corrections = session.scalars(select(AuditEntry).where(AuditEntry.action == "correction")).all()
        assert {c.details["field"] for c in corrections} == {"name", "birth_date"}


def test_rejecting_carries_the_reason_text_the_mini_program_shows(service_runtime):
    verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        review.reject_case(session, case_id, "reviewer:a", "document_mismatch")
        verification = session.get(Verification, verification_id)
        out = service.verification_view(session, verification, service_runtime.settings)
        assert out.status == VerificationStatus.REJECTED
        assert [(r.code, r.message) for r in out.reasons] == [
            ("document_mismatch", "证件信息与填写的身份信息不一致，审核未通过")
        ]


def test_rejecting_for_another_reason_needs_a_comment_and_unknown_reasons_are_refused(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        for reason, comment in (("other", ""), ("because", None)):
            with pytest.raises(ApiError) as refused:
                review.reject_case(session, case_id, "reviewer:a", reason, comment)
            assert refused.value.status == 422
        review.reject_case(session, case_id, "reviewer:a", "other", "photo of a photocopy")
        assert session.get(ReviewCase, case_id).decision_comment == "photo of a photocopy"


def test_requesting_new_images_sends_the_applicant_back_to_retake(service_runtime):
    verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        review.retake_case(session, case_id, "reviewer:a", "new_images_unclear")
        verification = session.get(Verification, verification_id)
        assert verification.status == VerificationStatus.RETAKE
        assert verification.decision_reasons == ["new_images_unclear"]


def test_only_the_holder_can_decide_a_case(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session, pytest.raises(ApiError) as refused:
        review.approve_case(session, case_id, "reviewer:b", {}, service_runtime.settings)
    assert refused.value.code == "case_not_held"


def test_an_approval_overriding_a_failed_check_needs_a_second_reviewer(service_runtime):
    verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        review.open_case(session, verification_id, "scan_review", ["id_number_mismatch"])
        session.commit()
        outcome = review.approve_case(session, case_id, "reviewer:a", PASSPORT_IDENTITY, service_runtime.settings)
        assert outcome.status == "awaiting_confirmation"
        assert session.get(Verification, verification_id).status == VerificationStatus.IN_REVIEW
        assert review.claim_next_case(session, "reviewer:c", settings=service_runtime.settings) is None
        with pytest.raises(ApiError) as refused:
            review.confirm_approval(session, case_id, "reviewer:a")
        assert refused.value.code == "second_reviewer_required"
        confirmed = review.confirm_approval(session, case_id, "reviewer:b")
        assert (confirmed.status, confirmed.verification_status) == ("decided", "verified")
        assert session.get(ReviewCase, case_id).confirmed_by == "reviewer:b"
        number = service.get_identity(session, service_runtime.client_key(session), "subject-1", full_number=True)
        assert number.document_number == PASSPORT_NUMBER


def test_with_four_eyes_off_one_reviewer_approves_an_override_alone(service_runtime):
    verification_id, case_id = claimed_passport_case(service_runtime)
    settings = service_runtime.settings.model_copy(update={"review_four_eyes": False})
    with service_runtime.session() as session:
        review.open_case(session, verification_id, "scan_review", ["name_mismatch"])
        session.commit()
        assert review.approve_case(session, case_id, "reviewer:a", PASSPORT_IDENTITY, settings).status == "decided"


def test_a_reverification_case_rejected_removes_the_verified_identity(service_runtime):
    verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        review.approve_case(session, case_id, "reviewer:a", PASSPORT_IDENTITY, service_runtime.settings)
        flagged = review.open_case(session, verification_id, origin="reverification_failed", reasons=["name_mismatch"])
        session.commit()
        assert flagged.id != case_id and flagged.origin == CaseOrigin.REVERIFICATION_FAILED
        review.claim_next_case(session, "reviewer:a", settings=replace_settings(service_runtime, four_eyes=False))
        review.reject_case(session, flagged.id, "reviewer:a", "suspected_forgery")
        assert session.get(Verification, verification_id).status == VerificationStatus.REJECTED
        assert session.scalars(select(VerifiedIdentity)).all() == []


def replace_settings(runtime, four_eyes: bool):
    return runtime.settings.model_copy(update={"review_four_eyes": four_eyes})


# --- the audit log -------------------------------------------------------------------------------------------


def test_every_action_is_in_the_audit_chain_and_the_chain_verifies(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        image = review.case_view(session, case_id, "reviewer:a").images[0]
        data, content_type = review.view_image(session, case_id, image.id, "reviewer:a")
        assert data == photo(CLEAN) and content_type == "image/jpeg"
        review.release_case(session, case_id, "reviewer:a")
        review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings)
        review.reject_case(session, case_id, "reviewer:b", "expired_document")
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["claim", "view_image", "release", "claim", "reject"]
        report = review.verify_audit_chain(session)
        assert report.ok and report.entries == 5


def test_editing_an_audit_entry_breaks_the_chain_at_that_entry(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        review.release_case(session, case_id, "reviewer:a")
        review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings)
        second = session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()[1]
        session.execute(text("UPDATE review_audit_log SET actor = 'reviewer:nobody' WHERE id = :id"), {"id": second})
        session.commit()
        report = review.verify_audit_chain(session)
        assert not report.ok and report.first_bad_id == second


def test_removing_an_audit_entry_breaks_the_chain_after_it(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        review.release_case(session, case_id, "reviewer:a")
        review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings)
        ids = session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
        session.execute(text("DELETE FROM review_audit_log WHERE id = :id"), {"id": ids[1]})
        session.commit()
        report = review.verify_audit_chain(session)
        assert not report.ok and report.first_bad_id == ids[2]


def test_no_code_path_updates_or_deletes_audit_entries():
    forbidden = re.compile(
        r"update\(\s*AuditEntry|delete\(\s*AuditEntry|(UPDATE|DELETE\s+FROM)\s+review_audit_log|"
        r"session\.delete\(\s*(entry|audit)",
        re.IGNORECASE,
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "ocr_service").rglob("*.py")
        if "migrations" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if forbidden.search(line)
    ]
    assert offenders == []
    # the guard really matches the statements it is meant to find
    assert forbidden.search("session.execute(update(AuditEntry).values(actor='x'))")
    assert forbidden.search('text("DELETE FROM review_audit_log")')


# --- statistics -----------------------------------------------------------------------------------------------


def test_queue_statistics_count_waiting_cases_and_decisions_per_reviewer(service_runtime):
    bare_cases(service_runtime, 3)
    _verification_id, case_id = claimed_passport_case(service_runtime, subject="subject-x")
    with service_runtime.session() as session:
        review.reject_case(session, case_id, "reviewer:a", "wrong_document_type")
        stats = review.queue_statistics(session)
        assert stats.size == 3
        assert stats.age_p50_seconds is not None and stats.age_p95_seconds >= stats.age_p50_seconds
        assert [(actor, n) for _day, actor, n in stats.decisions_per_reviewer_per_day] == [("reviewer:a", 1)]
        view = review.queue_view(session, origin="manual_method", sort="newest")
        assert len(view.rows) == 3 and view.rows[0].age <= view.rows[-1].age


# --- identity safety (issue 10, problem 1) ----------------------------------------------------------------


def scanned_case(runtime, claim: dict[str, str], photos: list[str], subject: str = "subject-1") -> str:
    """An automatic resident-ID verification whose photos the real pipeline scans until it is in review.

    The attempt limit is the number of photos, so the last failed attempt sends it to review. A
    verification's first claim mismatch is free (it asks for the claim), so when the claim differs
    from a card the applicant insists: the last photo is sent once more, and that one counts.
    """
    from ocr_service import config

    settings = runtime.settings.model_copy(update={"max_failed_attempts": len(photos)})
    config.set_settings(settings)
    with runtime.session() as session:
        client = runtime.client_key(session)
        verification = service.create_verification(session, client, VerificationCreate(subject_id=subject, claim=claim))
        for name in [*photos, photos[-1]]:
            ticket = service.submit_image(
                session, client, verification.id, ImageSide.FRONT, photo(name), None, settings
            )
            service.process_attempt(ticket.attempt_id)
            session.expire_all()
            if session.get(Verification, verification.id).status == VerificationStatus.IN_REVIEW:
                break
        assert session.get(Verification, verification.id).status == VerificationStatus.IN_REVIEW
        return verification.id


def claim_from(label_file: str, **override) -> dict[str, str]:
    from tests.ocr_service.api_harness import claim_of

    return {**claim_of(label_file), **override}


def test_attempts_showing_other_people_flag_multiple_identities_and_prefill_nothing(service_runtime):
    # the case: 向琳 typed, the failed attempts photographed other people's cards
    claim = claim_from("0027_front_too_small.jpg")
    verification_id = scanned_case(service_runtime, claim, ["0016_front_low_light.jpg", "0003_front_clean.jpg"])
    case = case_of(service_runtime, verification_id)
    assert "multiple_identities" in case.reasons
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        view = review.case_view(session, case.id, "reviewer:a")
        assert set(view.proposed.values()) == {""}
        assert view.multiple_identities
        names = {identity.name for identity in view.identities}
        assert names == {"向琳", "唐龙亮", "钱龙宁"}
        claimed = [identity for identity in view.identities if identity.is_claim]
        assert [i.number for i in claimed] == [claim["document_number"]]
        # other people's numbers are shown masked
        assert all("*" in i.number for i in view.identities if not i.is_claim)
        # approving the untouched form verifies no one
        with pytest.raises(ApiError) as refused:
            review.approve_case(session, case.id, "reviewer:a", {}, service_runtime.settings)
        assert refused.value.status == 422
        assert session.scalars(select(VerifiedIdentity)).all() == []


def test_a_read_differing_from_the_claim_in_one_character_prefills_nothing(service_runtime):
    # typed 陶超森, the card reads 陶超淼 (same number): neither name is proposed
    claim = claim_from(CLEAN, name="陶超森")
    verification_id = scanned_case(service_runtime, claim, [CLEAN])
    case = case_of(service_runtime, verification_id)
    assert "multiple_identities" not in case.reasons
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        view = review.case_view(session, case.id, "reviewer:a")
        assert set(view.proposed.values()) == {""}
        assert not view.multiple_identities


def recorded_read_case(runtime, claim: dict[str, str], read: dict[str, str]) -> str:
    """A verification in review whose one scan read ``read`` (written as the scan writes it): the case id."""
    from ocr_service.crypto import get_cipher
    from ocr_service.verification.models import Attempt, AttemptStatus, StoredImage
    from pipelines.reasons import Decision

    with runtime.session() as session:
        client = runtime.client_key(session)
        verification = service.create_verification(session, client, VerificationCreate(subject_id="s", claim=claim))
        image = StoredImage(
            verification_id=verification.id, blob_id=None, sha256="f" * 64, content_type="image/jpeg", size_bytes=1
        )
        attempt = Attempt(
            verification_id=verification.id,
            image_id=image.id,
            side=ImageSide.FRONT,
            status=AttemptStatus.DONE,
            decision=Decision.REVIEW,
            reasons=["recapture_suspected"],
            result={"fields": {k: v for k, v in read.items() if k != "id_number"}, "confidence": {}},
        )
        attempt.read_number_enc = get_cipher().encrypt_text(
            read["id_number"], b"attempts.read_number:" + attempt.id.encode()
        )
        session.add_all([image, attempt])
        verification.status = VerificationStatus.IN_REVIEW
        case = review.open_case(session, verification.id, "scan_review", ["recapture_suspected"])
        session.commit()
        return case.id


def test_a_read_confirming_the_claim_proposes_the_claim_with_what_the_card_adds(service_runtime):
    claim = claim_from("0022_front_recapture.jpg")
    read = {"name": claim["name"], "id_number": claim["document_number"], "sex": "女", "ethnicity": "汉"}
    case_id = recorded_read_case(service_runtime, claim, read)
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        view = review.case_view(session, case_id, "reviewer:a")
        assert view.proposed["name"] == claim["name"]
        assert view.proposed["document_number"] == claim["document_number"]
        assert (view.proposed["sex"], view.proposed["ethnicity"]) == ("女", "汉")
        assert view.proposed["birth_date"] == "1998-02-13"  # from the number when the read has none


def test_a_misread_name_proposes_nothing(service_runtime):
    # the recapture sample reads 点婷娜 for 卢婷娜: the misread is not proposed, and neither is the claim
    claim = claim_from("0022_front_recapture.jpg")
    read = {"name": "点婷娜", "id_number": claim["document_number"], "sex": "女"}
    case_id = recorded_read_case(service_runtime, claim, read)
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        view = review.case_view(session, case_id, "reviewer:a")
        assert set(view.proposed.values()) == {""}
        assert not view.multiple_identities


def test_a_manual_case_without_a_machine_read_prefills_nothing_and_the_reviewer_states_the_identity(service_runtime):
    _verification_id, case_id = claimed_passport_case(service_runtime)
    with service_runtime.session() as session:
        view = review.case_view(session, case_id, "reviewer:a")
        assert set(view.proposed.values()) == {""}
        with pytest.raises(ApiError):
            review.approve_case(session, case_id, "reviewer:a", {}, service_runtime.settings)
        outcome = review.approve_case(
            session,
            case_id,
            "reviewer:a",
            {"name": "JOHN SMITH", "document_number": PASSPORT_NUMBER},
            service_runtime.settings,
        )
        assert outcome.verification_status == "verified"


def test_the_second_reviewer_sees_the_exact_identity_the_approval_will_write(service_runtime):
    claim = claim_from("0027_front_too_small.jpg")
    verification_id = scanned_case(service_runtime, claim, ["0016_front_low_light.jpg", "0003_front_clean.jpg"])
    case = case_of(service_runtime, verification_id)
    typed = {"name": claim["name"], "document_number": claim["document_number"], "sex": "女"}
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        outcome = review.approve_case(session, case.id, "reviewer:a", typed, service_runtime.settings)
        # approving over other people's cards is an override: a second reviewer must look
        assert outcome.status == "awaiting_confirmation"
        view = review.case_view(session, case.id, "reviewer:b")
        assert view.pending is not None
        assert view.pending["name"] == claim["name"]
        assert view.pending["document_number"] == claim["document_number"]
        assert (view.pending["sex"], view.pending["birth_date"]) == ("女", "1969-03-30")


# --- decisions bound to the lease (issue 10, problem 3) -------------------------------------------------------


def expire_leases(session) -> None:
    session.execute(
        text("UPDATE review_cases SET lease_expires_at = :t WHERE status = 'claimed'"),
        {"t": (utcnow() - timedelta(seconds=1)).replace(tzinfo=None)},
    )
    session.commit()


def test_a_holder_whose_lease_ran_out_cannot_decide_release_or_renew(service_runtime):
    (case_id,) = bare_cases(service_runtime, 1)
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        expire_leases(session)
        attempts = (
            lambda: review.reject_case(session, case_id, "reviewer:a", "document_mismatch"),
            lambda: review.retake_case(session, case_id, "reviewer:a", "new_images_unclear"),
            lambda: review.approve_case(session, case_id, "reviewer:a", {}, service_runtime.settings),
            lambda: review.release_case(session, case_id, "reviewer:a"),
            lambda: review.renew_lease(session, case_id, "reviewer:a", service_runtime.settings),
        )
        for attempt in attempts:
            with pytest.raises(ApiError) as refused:
                attempt()
            assert (refused.value.status, refused.value.code) == (409, "lease_expired")
        # another reviewer claims it: the old holder is still told their lease ran out
        assert review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings).id == case_id
        with pytest.raises(ApiError) as refused:
            review.reject_case(session, case_id, "reviewer:a", "document_mismatch")
        assert refused.value.code == "lease_expired"
        assert session.get(ReviewCase, case_id).status == CaseStatus.CLAIMED


def test_reviewers_whose_lease_ran_out_decide_nothing_while_new_reviewers_claim(service_runtime):
    """The issue's race: 10 expired holders deciding while 10 new reviewers claim the same cases."""
    case_ids = bare_cases(service_runtime, 10)
    with service_runtime.session() as session:
        old_cases = {}
        for i in range(10):
            old_cases[f"reviewer:old{i}"] = review.claim_next_case(
                session, f"reviewer:old{i}", settings=service_runtime.settings
            ).id
        expire_leases(session)
    barrier = threading.Barrier(20)
    outcomes: list[tuple[str, str]] = []  # (actor, "decided" | error code)
    lock = threading.Lock()

    def record(actor: str, outcome: str) -> None:
        with lock:
            outcomes.append((actor, outcome))

    def old_holder(actor: str) -> None:
        with service_runtime.session() as session:
            barrier.wait()
            try:
                review.reject_case(session, old_cases[actor], actor, "document_mismatch")
                record(actor, "decided")
            except ApiError as exc:
                record(actor, exc.code)

    def new_reviewer(actor: str) -> None:
        with service_runtime.session() as session:
            barrier.wait()
            case = review.claim_next_case(session, actor, settings=service_runtime.settings)
            if case is None:
                record(actor, "nothing_to_claim")
                return
            try:
                review.reject_case(session, case.id, actor, "document_mismatch")
                record(actor, "decided")
            except ApiError as exc:
                record(actor, exc.code)

    threads = [threading.Thread(target=old_holder, args=(actor,)) for actor in old_cases]
    threads += [threading.Thread(target=new_reviewer, args=(f"reviewer:new{i}",)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    old = [outcome for actor, outcome in outcomes if ":old" in actor]
    new = [outcome for actor, outcome in outcomes if ":new" in actor]
    print(f"lease race: expired holders {sorted(Counter(old).items())}, new claimers {sorted(Counter(new).items())}")
    assert old == ["lease_expired"] * 10
    # PostgreSQL's SKIP LOCKED passes by a row an expired holder has locked for its (refused) decision
    assert set(new) <= {"decided", "nothing_to_claim"} and new.count("decided") >= 1
    with service_runtime.session() as session:
        cases = session.scalars(select(ReviewCase).where(ReviewCase.id.in_(case_ids))).all()
        assert sum(1 for case in cases if case.decided_by and ":old" in case.decided_by) == 0
        assert sum(1 for case in cases if case.status == CaseStatus.DECIDED) == new.count("decided")
        # every decided case was decided by the reviewer whose claim came last
        for case in (case for case in cases if case.status == CaseStatus.DECIDED):
            last_claim = session.scalars(
                select(AuditEntry.actor)
                .where(AuditEntry.case_id == case.id, AuditEntry.action == "claim")
                .order_by(AuditEntry.id.desc())
                .limit(1)
            ).one()
            assert last_claim == case.decided_by
        assert review.verify_audit_chain(session).ok


def test_a_released_case_is_not_handed_straight_back_to_the_reviewer_who_released_it(service_runtime):
    first, second = bare_cases(service_runtime, 2)
    with service_runtime.session() as session:
        assert review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings).id == first
        review.release_case(session, first, "reviewer:a")
        assert review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings).id == second
        review.release_case(session, second, "reviewer:a")
        assert review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings) is None
        # another reviewer gets it at once
        assert review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings).id == first


def test_queue_counts_call_cases_with_an_expired_lease_claimable(service_runtime):
    bare_cases(service_runtime, 3)
    with service_runtime.session() as session:
        review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        review.claim_next_case(session, "reviewer:b", settings=service_runtime.settings)
        assert (review.queue_view(session).claimable, review.queue_view(session).claimed) == (1, 2)
        expire_leases(session)
        assert (review.queue_view(session).claimable, review.queue_view(session).claimed) == (3, 0)


# --- machine help on manual cases (issue 10, problem 9) ---------------------------------------------------------


def test_a_passport_zone_is_read_once_at_upload_and_the_case_page_only_shows_what_was_stored(
    service_runtime, monkeypatch
):
    from ocr_service.verification import mrz
    from ocr_service.verification.models import Attempt, AttemptStatus

    reads: list[int] = []
    specimen = mrz.parse_icao(
        ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
    )

    def fake_ocr_read(image_bytes: bytes):  # the OCR run is what costs seconds; its count is the point
        reads.append(len(image_bytes))
        return specimen

    monkeypatch.setattr(mrz, "read_mrz", fake_ocr_read)
    with service_runtime.session() as session:
        client = service_runtime.client_key(session)
        body = VerificationCreate(
            subject_id="subject-1",
            document_type=DocumentType.FOREIGN_PASSPORT,
            method=Method.MANUAL,
            claim={"name": "ANNA MARIA ERIKSSON", "document_number": "L898902C3"},
        )
        verification = service.create_verification(session, client, body)
        ticket = service.submit_image(
            session, client, verification.id, ImageSide.FRONT, photo(CLEAN), None, service_runtime.settings
        )
    assert ticket.reads_mrz and not ticket.needs_scan
    service.process_attempt(ticket.attempt_id)
    service.process_attempt(ticket.attempt_id)  # a redelivery reads nothing again
    assert len(reads) == 1
    with service_runtime.session() as session:
        attempt = session.get(Attempt, ticket.attempt_id)
        assert attempt.status == AttemptStatus.DONE and attempt.decision is None
        assert attempt.result["mrz"]["fields"]["document_number"] == "L898902C3"
        case = review.claim_next_case(session, "reviewer:a", settings=service_runtime.settings)
        for _ in range(3):  # page views
            zones = review.read_case_mrz(session, case.id, "reviewer:a")
            assert [zone["valid"] for zone in zones] == [True]
    assert len(reads) == 1


# --- new photos after "request new images" (issue 10, problem 9) -------------------------------------------


def test_a_photo_sent_after_a_reviewer_asked_for_new_images_is_scanned_and_the_reviewer_sees_the_read(
    service_runtime,
):
    from ocr_service.verification.models import Attempt, AttemptStatus

    claim = claim_from(CLEAN)
    claim["name"] = claim["name"][:-1] + ("甲" if claim["name"][-1] != "甲" else "乙")
    verification_id = scanned_case(service_runtime, claim, [CLEAN])  # attempts used up: in review
    settings = service_runtime.settings.model_copy(update={"max_failed_attempts": 1})
    with service_runtime.session() as session:
        case = review.claim_next_case(session, "reviewer:a", settings=settings)
        review.retake_case(session, case.id, "reviewer:a", "new_images_unclear")
        client = service_runtime.client_key(session)
        failed_before = service.failed_attempts(session, client.id, "subject-1")
        ticket = service.submit_image(session, client, verification_id, ImageSide.FRONT, photo(CLEAN), None, settings)
    # the attempts are used up, so the photo goes straight back to a person, and is scanned for them
    assert ticket.scans_for_review and not ticket.needs_scan
    service.process_attempt(ticket.attempt_id)
    with service_runtime.session() as session:
        verification = session.get(Verification, verification_id)
        assert verification.status == VerificationStatus.IN_REVIEW
        attempt = session.get(Attempt, ticket.attempt_id)
        assert attempt.status == AttemptStatus.DONE and attempt.result["card"]["corners"]
        # the scan decided nothing: no failed attempt more, the case did not move
        assert attempt.decision is None
        assert service.failed_attempts(session, service_runtime.client_key_id, "subject-1") == failed_before
        case = review.claim_next_case(session, "reviewer:b", settings=settings)
        assert case is not None and case.verification_id == verification_id
        view = review.case_view(session, case.id, "reviewer:b")
        latest = view.attempts[-1]
        assert latest.fields.get("name") == claim_of(CLEAN)["name"]
        assert latest.read_number == claim_of(CLEAN)["document_number"]
        assert latest.decision == "reject" and "name_mismatch" in [code for code, _ in latest.reasons]
        assert [image.has_card for image in view.images] == [True, True, True]  # insisted once, then retook


# --- assignment to a named reviewer (issue 10) ---------------------------------------------------------------


def reviewers(runtime, *names: str) -> None:
    with runtime.session() as session:
        for name in names:
            review.create_reviewer(session, name, "long enough password", "admin" if name == "root" else "reviewer")
        session.commit()


def test_an_assigned_case_goes_to_its_reviewer_first_and_to_no_one_else_while_the_assignment_holds(service_runtime):
    reviewers(service_runtime, "root", "bob", "carol")
    ids = bare_cases(service_runtime, 4)
    settings = service_runtime.settings
    with service_runtime.session() as session:
        assigned = review.assign_case(session, ids[2], "bob", "reviewer:root", settings)
        assert assigned.assigned_to == "reviewer:bob" and assigned.assigned_until > utcnow()
        # bob's "take next" gives the case assigned to him before the older ones
        assert review.claim_next_case(session, "reviewer:bob", settings=settings).id == ids[2]
        review.assign_case(session, ids[3], "Bob", "reviewer:root", settings)
        taken = [review.claim_next_case(session, "reviewer:carol", settings=settings) for _ in range(3)]
        assert [c.id if c else None for c in taken] == [ids[0], ids[1], None]
        entries = [e for e in review.audit_entries(session) if e.action == "assign"]
        assert {(e.case_id, e.actor, e.details["reviewer"]) for e in entries} == {
            (ids[2], "reviewer:root", "bob"),
            (ids[3], "reviewer:root", "bob"),
        }
        assert review.verify_audit_chain(session).ok


def test_an_assignment_that_ran_out_or_was_ended_leaves_the_case_to_everyone(service_runtime):
    reviewers(service_runtime, "root", "bob")
    ids = bare_cases(service_runtime, 2)
    settings = service_runtime.settings
    with service_runtime.session() as session:
        review.assign_case(session, ids[0], "bob", "reviewer:root", settings)
        review.assign_case(session, ids[1], "bob", "reviewer:root", settings)
        session.get(ReviewCase, ids[0]).assigned_until = utcnow() - timedelta(seconds=1)
        session.commit()
        first = review.claim_next_case(session, "reviewer:carol", settings=settings)
        assert first.id == ids[0] and first.assigned_to is None
        assert review.claim_next_case(session, "reviewer:carol", settings=settings) is None
        review.assign_case(session, ids[1], None, "reviewer:root", settings)
        assert review.claim_next_case(session, "reviewer:carol", settings=settings).id == ids[1]
        assert [e.action for e in review.audit_entries(session, case_id=ids[1])][:2] == ["claim", "unassign"]


def test_only_a_waiting_case_can_be_assigned_and_only_to_an_active_reviewer(service_runtime):
    reviewers(service_runtime, "root", "bob")
    ids = bare_cases(service_runtime, 1)
    settings = service_runtime.settings
    with service_runtime.session() as session:
        with pytest.raises(ApiError) as unknown:
            review.assign_case(session, ids[0], "nobody", "reviewer:root", settings)
        assert (unknown.value.status, unknown.value.code) == (404, "reviewer_not_found")
        review.claim_next_case(session, "reviewer:carol", settings=settings)
        with pytest.raises(ApiError) as held:
            review.assign_case(session, ids[0], "bob", "reviewer:root", settings)
        assert (held.value.status, held.value.code) == (409, "case_not_waiting")
        assert session.get(ReviewCase, ids[0]).assigned_to is None
