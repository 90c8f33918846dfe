"""The verification state machine: the allowed moves, 409 for the rest, history, and racing requests.

Runs on SQLite and PostgreSQL (``service_runtime`` takes the ``database`` fixture); no scans.
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from ocr_service.errors import ApiError
from ocr_service.verification import service
from ocr_service.verification.models import ImageSide, StatusEvent, Verification, VerificationStatus
from ocr_service.verification.schemas import VerificationCreate
from tests.ocr_service.api_harness import CLEAN, claim_of, photo, service_runtime

S = VerificationStatus

# docs/service-design.md, "State machine": the design and the code must agree.
DESIGNED = {
    (S.AWAITING_IMAGES, S.PROCESSING),
    (S.PROCESSING, S.VERIFIED),
    (S.PROCESSING, S.RETAKE),
    (S.PROCESSING, S.IN_REVIEW),
    (S.RETAKE, S.PROCESSING),
    (S.RETAKE, S.IN_REVIEW),
    (S.AWAITING_IMAGES, S.IN_REVIEW),
    (S.IN_REVIEW, S.WITHDRAWN),
    (S.PROCESSING, S.WITHDRAWN),  # a scan held up by an outage need not hold the applicant (issue 13)
    (S.IN_REVIEW, S.VERIFIED),
    (S.IN_REVIEW, S.REJECTED),
    (S.IN_REVIEW, S.RETAKE),  # a reviewer asks for new images (issue 4)
    (S.VERIFIED, S.REJECTED),  # a reviewer rejects an identity flagged by re-verification (issue 4)
}


def new_case(runtime, session, subject: str = "subject-1", **fields) -> Verification:
    client = runtime.client_key(session)
    body = {"subject_id": subject, "claim": {"name": "陶超淼", "document_number": claim_of(CLEAN)["document_number"]}}
    body.update(fields)
    return service.create_verification(session, client, VerificationCreate(**body))


def force_status(session, verification: Verification, status: VerificationStatus) -> None:
    verification.status = status
    session.commit()


def test_the_allowed_transitions_are_exactly_the_designed_ones():
    assert set(service.ALLOWED_TRANSITIONS) == DESIGNED


def test_a_transition_moves_the_case_and_writes_its_history(service_runtime):
    with service_runtime.session() as session:
        case = new_case(service_runtime, session)
        service._transition(session, case, S.PROCESSING, action="upload", actor="test")
        session.commit()
        events = session.scalars(select(StatusEvent).where(StatusEvent.verification_id == case.id)).all()
        assert [(e.from_status, e.to_status) for e in events] == [
            (None, S.AWAITING_IMAGES),
            (S.AWAITING_IMAGES, S.PROCESSING),
        ]
        assert session.scalar(select(Verification.status).where(Verification.id == case.id)) == S.PROCESSING


def test_every_other_move_is_an_illegal_transition_naming_the_current_status(service_runtime):
    illegal = sorted(set(itertools.product(S, S)) - DESIGNED)
    assert len(illegal) == len(S) ** 2 - len(DESIGNED)
    with service_runtime.session() as session:
        case = new_case(service_runtime, session)
        for current, target in illegal:
            force_status(session, case, current)
            with pytest.raises(ApiError) as caught:
                service._transition(session, case, target, action="test", actor="test")
            assert caught.value.status == 409, (current, target)
            assert caught.value.code == "illegal_transition"
            assert caught.value.details["current_status"] == current.value
            session.rollback()
            assert session.scalar(select(Verification.status).where(Verification.id == case.id)) == current


def test_of_two_racing_requests_only_the_first_moves_the_case(service_runtime):
    with service_runtime.session() as setup:
        case = new_case(service_runtime, setup)
        force_status(setup, case, S.IN_REVIEW)
        case_id = case.id
    with service_runtime.session() as first, service_runtime.session() as second:
        one = first.get(Verification, case_id)
        two = second.get(Verification, case_id)
        assert one.status == two.status == S.IN_REVIEW  # both read "in review"
        service._transition(first, one, S.WITHDRAWN, action="withdraw", actor="a")
        first.commit()
        with pytest.raises(ApiError) as caught:
            service._transition(second, two, S.VERIFIED, action="approve", actor="b")
        assert caught.value.details["current_status"] == "withdrawn"
        second.rollback()
    with service_runtime.session() as check:
        events = check.scalars(select(StatusEvent.to_status).where(StatusEvent.verification_id == case_id)).all()
        assert events == [S.AWAITING_IMAGES, S.WITHDRAWN]


@pytest.mark.parametrize("status", [S.PROCESSING, S.IN_REVIEW, S.VERIFIED, S.REJECTED, S.WITHDRAWN])
def test_a_case_takes_photos_only_while_waiting_for_them(service_runtime, status):
    with service_runtime.session() as session:
        case = new_case(service_runtime, session)
        force_status(session, case, status)
        with pytest.raises(ApiError) as caught:
            service.submit_image(
                session,
                service_runtime.client_key(session),
                case.id,
                ImageSide.FRONT,
                photo(CLEAN),
                None,
                service_runtime.settings,
            )
        assert (caught.value.code, caught.value.details["current_status"]) == ("illegal_transition", status.value)
