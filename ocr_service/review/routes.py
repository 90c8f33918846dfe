"""The review queue as JSON under ``/v1/review/...``: the console's operations for other tools.

Thin: parse, call ``review.service``, return a schema. Callers use API keys with the
``reviewer`` scope (``admin`` for the audit chain check); the acting reviewer is the key
(``key:<id>`` in claims and the audit log). Case details show the claimed number in full:
reviewers need it to compare with the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, computed_field

from ocr_service.auth import AdminKey, ReviewerKey
from ocr_service.db import SessionDep
from ocr_service.review import service
from ocr_service.review.models import CaseOrigin, ReviewCase
from ocr_service.status_labels import REVIEW_CASE_STATUS, VERIFICATION_STATUS, label
from ocr_service.verification.models import DocumentType

router = APIRouter(prefix="/v1/review", tags=["review"])


def _actor(key) -> str:
    return f"key:{key.id}"


class CaseOut(BaseModel):
    id: str
    verification_id: str
    origin: str
    reasons: list[str]
    status: str
    claimed_by: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    decision: str | None = None
    decision_reason: str | None = None
    assigned_to: str | None = Field(None, description="reviewer:<username> an admin assigned the case to")
    assigned_until: datetime | None = Field(None, description="until then only the assignee may claim the case")

    @computed_field(description="The case's status in Chinese (待领取, 审核中, ...).")
    @property
    def status_label(self) -> str:
        return label(REVIEW_CASE_STATUS, self.status)

    @classmethod
    def of(cls, case: ReviewCase) -> CaseOut:
        return cls(
            id=case.id,
            verification_id=case.verification_id,
            origin=case.origin.value,
            reasons=list(case.reasons or []),
            status=case.status.value,
            claimed_by=case.claimed_by,
            lease_expires_at=case.lease_expires_at,
            created_at=case.created_at,
            decision=case.decision,
            decision_reason=case.decision_reason,
            assigned_to=case.assigned_to,
            assigned_until=case.assigned_until,
        )


class QueueOut(BaseModel):
    counts: dict[str, int]
    oldest_age_seconds: float | None
    cases: list[CaseOut]


class ClaimOut(BaseModel):
    case: CaseOut | None = Field(description="null when nothing is waiting")


class CaseDetailOut(BaseModel):
    case: CaseOut
    document_type: str
    method: str
    verification_status: str
    claim: dict[str, str]
    images: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    proposed_identity: dict[str, str] = Field(
        description="pre-filled only from a read matching the claim in name and number; else all empty"
    )
    multiple_identities: bool = Field(description="the photos show cards of people other than the claimed one")
    identities: list[dict[str, Any]] = Field(description="every person seen: the claim (number in full), others masked")
    pending_identity: dict[str, str] | None = Field(
        None, description="awaiting confirmation: exactly what the approval will write"
    )
    overridden_checks: list[str]
    four_eyes: bool

    @computed_field
    @property
    def verification_status_label(self) -> str:
        return label(VERIFICATION_STATUS, self.verification_status)


class ApproveIn(BaseModel):
    fields: dict[str, str] = Field(default_factory=dict, description="corrections: name, document_number, sex, ...")


class RejectIn(BaseModel):
    reason: str = Field(examples=["document_mismatch"])
    comment: str | None = None


class RetakeIn(BaseModel):
    reason: str = Field(examples=["new_images_unclear"])


class AssignIn(BaseModel):
    reviewer: str | None = Field(description="the reviewer's username; null ends the assignment", examples=["alice"])


class DecisionOut(BaseModel):
    case: CaseOut
    verification_status: str

    @computed_field
    @property
    def verification_status_label(self) -> str:
        return label(VERIFICATION_STATUS, self.verification_status)


class StatsOut(BaseModel):
    size: int
    age_p50_seconds: float | None
    age_p95_seconds: float | None
    decisions_per_reviewer_per_day: list[dict[str, Any]]


class AuditChainOut(BaseModel):
    ok: bool
    entries: int
    first_bad_id: int | None
    problem: str | None


@router.get("/cases", response_model=QueueOut, summary="The queue: waiting cases, oldest first by default")
def list_cases(
    key: ReviewerKey,
    session: SessionDep,
    origin: CaseOrigin | None = None,
    document_type: DocumentType | None = None,
    sort: Annotated[str, Query(pattern="^(oldest|newest|origin|document_type)$")] = "oldest",
) -> QueueOut:
    view = service.queue_view(session, origin, document_type, sort)
    return QueueOut(
        counts=view.counts,
        oldest_age_seconds=view.oldest_age.total_seconds() if view.oldest_age else None,
        cases=[CaseOut.of(row.case) for row in view.rows],
    )


@router.post("/cases/claim", response_model=ClaimOut, summary="Claim the oldest waiting case with a lease")
def claim(
    request: Request,
    key: ReviewerKey,
    session: SessionDep,
    origin: CaseOrigin | None = None,
    document_type: DocumentType | None = None,
) -> ClaimOut:
    case = service.claim_next_case(
        session, _actor(key), settings=request.app.state.settings, origin=origin, document_type=document_type
    )
    return ClaimOut(case=CaseOut.of(case) if case else None)


@router.get("/cases/{case_id}", response_model=CaseDetailOut, summary="A held case: claim, OCR, checks, history")
def get_case(request: Request, case_id: str, key: ReviewerKey, session: SessionDep) -> CaseDetailOut:
    view = service.case_view(session, case_id, _actor(key))
    return CaseDetailOut(
        case=CaseOut.of(view.case),
        document_type=view.verification.document_type.value,
        method=view.verification.method.value,
        verification_status=view.verification.status.value,
        claim={"name": view.claim_name, "document_number": view.claim_number},
        images=[{"id": i.id, "side": i.side, "purged": i.purged} for i in view.images],
        attempts=[
            {
                "created_at": a.created_at.isoformat(),
                "side": a.side,
                "decision": a.decision,
                "reasons": [code for code, _ in a.reasons],
                "fields": a.fields,
                "confidence": a.confidence,
                "read_number": a.read_number,
            }
            for a in view.attempts
        ],
        proposed_identity=view.proposed,
        multiple_identities=view.multiple_identities,
        identities=[
            {"name": i.name, "document_number": i.number, "is_claim": i.is_claim, "reads": i.reads}
            for i in view.identities
        ],
        pending_identity=view.pending,
        overridden_checks=view.overridden_checks,
        four_eyes=bool(view.overridden_checks) and request.app.state.settings.review_four_eyes,
    )


@router.get("/cases/{case_id}/images/{image_id}", summary="A photo of the case, decrypted (audited, not cached)")
def get_image(case_id: str, image_id: str, key: ReviewerKey, session: SessionDep) -> Response:
    data, content_type = service.view_image(session, case_id, image_id, _actor(key))
    return Response(data, media_type=content_type, headers={"Cache-Control": "no-store, private"})


@router.get("/cases/{case_id}/mrz", summary="Machine-readable zones read from the photos, with check digits")
def get_mrz(case_id: str, key: ReviewerKey, session: SessionDep) -> list[dict[str, Any]]:
    return service.read_case_mrz(session, case_id, _actor(key))


@router.post("/cases/{case_id}/lease", response_model=CaseOut, summary="Renew the lease on a held case")
def renew(request: Request, case_id: str, key: ReviewerKey, session: SessionDep) -> CaseOut:
    return CaseOut.of(service.renew_lease(session, case_id, _actor(key), request.app.state.settings))


@router.post("/cases/{case_id}/release", response_model=CaseOut, summary="Give a held case back undecided")
def release(case_id: str, key: ReviewerKey, session: SessionDep) -> CaseOut:
    return CaseOut.of(service.release_case(session, case_id, _actor(key)))


@router.post("/cases/{case_id}/approve", response_model=DecisionOut, summary="Approve, optionally correcting fields")
def approve(request: Request, case_id: str, body: ApproveIn, key: ReviewerKey, session: SessionDep) -> DecisionOut:
    outcome = service.approve_case(session, case_id, _actor(key), body.fields, request.app.state.settings)
    return DecisionOut(case=CaseOut.of(outcome.case), verification_status=outcome.verification_status)


@router.post("/cases/{case_id}/confirm", response_model=DecisionOut, summary="Second reviewer confirms an approval")
def confirm(case_id: str, key: ReviewerKey, session: SessionDep) -> DecisionOut:
    outcome = service.confirm_approval(session, case_id, _actor(key))
    return DecisionOut(case=CaseOut.of(outcome.case), verification_status=outcome.verification_status)


@router.post("/cases/{case_id}/reject", response_model=DecisionOut, summary="Reject with a reason from the list")
def reject(case_id: str, body: RejectIn, key: ReviewerKey, session: SessionDep) -> DecisionOut:
    outcome = service.reject_case(session, case_id, _actor(key), body.reason, body.comment)
    return DecisionOut(case=CaseOut.of(outcome.case), verification_status=outcome.verification_status)


@router.post("/cases/{case_id}/retake", response_model=DecisionOut, summary="Ask the applicant for new photos")
def retake(case_id: str, body: RetakeIn, key: ReviewerKey, session: SessionDep) -> DecisionOut:
    outcome = service.retake_case(session, case_id, _actor(key), body.reason)
    return DecisionOut(case=CaseOut.of(outcome.case), verification_status=outcome.verification_status)


@router.post(
    "/cases/{case_id}/assign",
    response_model=CaseOut,
    summary="Admin: assign a waiting case to a named reviewer (who gets it first; others cannot claim it)",
)
def assign(request: Request, case_id: str, body: AssignIn, key: AdminKey, session: SessionDep) -> CaseOut:
    return CaseOut.of(service.assign_case(session, case_id, body.reviewer, _actor(key), request.app.state.settings))


@router.get("/stats", response_model=StatsOut, summary="Queue size, age p50/p95, decisions per reviewer per day")
def stats(key: ReviewerKey, session: SessionDep) -> StatsOut:
    s = service.queue_statistics(session)
    return StatsOut(
        size=s.size,
        age_p50_seconds=s.age_p50_seconds,
        age_p95_seconds=s.age_p95_seconds,
        decisions_per_reviewer_per_day=[
            {"day": day, "actor": actor, "decisions": n} for day, actor, n in s.decisions_per_reviewer_per_day
        ],
    )


@router.get("/audit/verify", response_model=AuditChainOut, summary="Recompute the audit log's hash chain")
def verify_audit(key: AdminKey, session: SessionDep) -> AuditChainOut:
    report = service.verify_audit_chain(session)
    return AuditChainOut(ok=report.ok, entries=report.entries, first_bad_id=report.first_bad_id, problem=report.problem)


__all__ = ["router"]
