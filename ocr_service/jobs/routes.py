"""HTTP routes for batch jobs (admin scope): start a re-verification, read its progress, cancel it.

Thin: parse, call ``jobs.reverify``, return a schema.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from ocr_service.auth import AdminKey
from ocr_service.db import SessionDep
from ocr_service.errors import OUTAGE_RETRY_AFTER_SECONDS, ApiError
from ocr_service.jobs import reverify
from ocr_service.jobs.reverify_models import JobStatus
from ocr_service.queue.dispatch import BrokerUnavailable
from ocr_service.verification.models import Method, VerificationStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class ReverifyCreate(BaseModel):
    since: date | None = Field(None, description="First day (UTC) of the original scans, inclusive.")
    until: date | None = Field(None, description="Last day (UTC) of the original scans, inclusive.")
    region: str | None = Field(None, pattern=r"^\d{2,6}$", description="Division-code prefix, e.g. 4201.")
    status: VerificationStatus | None = Field(None, description="Only cases whose verification has this status.")
    method: Method | None = Method.AUTO
    dry_run: bool = Field(False, description="Scan and report; flag nothing, open no review case.")
    chunk_size: int = Field(reverify.DEFAULT_CHUNK_SIZE, ge=1, le=500)


class JobCounts(BaseModel):
    unchanged: int
    changed_decision: int
    changed_fields: int
    now_failing: int


class JobOut(BaseModel):
    id: str
    kind: str
    status: JobStatus
    dry_run: bool
    criteria: dict[str, Any]
    total: int
    done: int
    failed: int
    finished: int
    outcomes: JobCounts
    cases_per_second: float | None
    eta_seconds: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_out(progress: reverify.JobProgress) -> JobOut:
    rate = progress.cases_per_second
    eta = progress.eta_seconds
    return JobOut(
        id=progress.id,
        kind=progress.kind,
        status=progress.status,
        dry_run=progress.dry_run,
        criteria=progress.criteria,
        total=progress.total,
        done=progress.done,
        failed=progress.failed,
        finished=progress.finished_cases,
        outcomes=JobCounts(
            unchanged=progress.unchanged,
            changed_decision=progress.changed_decision,
            changed_fields=progress.changed_fields,
            now_failing=progress.now_failing,
        ),
        cases_per_second=round(rate, 3) if rate is not None else None,
        eta_seconds=round(eta, 1) if eta is not None else None,
        created_at=progress.created_at,
        started_at=progress.started_at,
        finished_at=progress.finished_at,
    )


@router.post("/reverify", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def create_reverify_job(body: ReverifyCreate, session: SessionDep, admin: AdminKey) -> JobOut:
    """Select stored cases and re-run them on the batch workers; answers at once with the job's counters."""
    selection = reverify.Selection(
        since=body.since, until=body.until, region=body.region, status=body.status, method=body.method
    )
    job = reverify.create_job(
        session, selection, created_by=f"key:{admin.id}", dry_run=body.dry_run, chunk_size=body.chunk_size
    )
    try:
        reverify.start_job(session, job.id)
    except BrokerUnavailable:
        error = ApiError(
            "queue_unavailable",
            503,
            "the batch queue is unavailable; the job is stored, resume it with `ocr-service jobs resume`",
            "系统繁忙，任务已保存，请稍后重试",
            {"job_id": job.id},
        )
        error.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)  # like every outage answer
        raise error from None
    return job_out(reverify.get_progress(session, job.id))


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, _admin: AdminKey) -> JobOut:
    return job_out(reverify.get_progress(session, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, _admin: AdminKey) -> JobOut:
    reverify.cancel_job(session, job_id)
    return job_out(reverify.get_progress(session, job_id))
