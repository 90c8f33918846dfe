"""Batch re-verification: re-run stored cases through today's pipeline and report what changed.

Owns the job's life: selecting stored cases (``select_cases``), creating the job and its
per-case items split into chunks (``create_job``), handing the chunks to the ``batch`` queue
(``start_job`` / ``resume_job``), running one chunk (``run_chunk``, what the Celery task and
the in-process pool call), progress, cancel and the report (CSV/JSON, summary, PNG chart).

Exactly-once: a chunk may run more than once (a redelivery after a worker crash, a resume, a
duplicate message). Each case is written with a conditional UPDATE on its ``pending`` item,
and the job's counters move in the same transaction only when that UPDATE matched, so a case
is counted once however many times it is scanned. A chunk skips items already finished, so a
restarted job does not redo finished chunks.

A case "now failing" (its scan was accepted, today's is not) whose verification is still
``verified`` is flagged, never revoked: the identity gets ``flagged`` + ``flag_reason``, a
review case opens with origin ``reverification_failed`` (``ocr_service.review.service
.open_case`` when that module is installed), and declarations of the identity are flagged
(``ocr_service.declaration.service.flag_declarations_for_identity``, likewise). A person decides.
A dry run scans and reports but writes nothing outside the job's own tables.

Region (``--region 4201``): matched against the 6-digit division code at the start of the
number the stored scan read, or the claimed number when the scan read none. Both are stored
encrypted, so the filter decrypts them while the job is created (AES-GCM: microseconds a case)
instead of adding a clear-text region column to ``attempts``; the selection is fixed once the
job exists, so workers never need it.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ocr_service.config import Settings, get_settings
from ocr_service.crypto import get_cipher
from ocr_service.db import Database, get_database, utcnow
from ocr_service.errors import not_found
from ocr_service.jobs.reverify_models import ItemStatus, Job, JobItem, JobKind, JobStatus, Outcome
from ocr_service.masking import mask_document_number
from ocr_service.queue import dispatch
from ocr_service.queue.celery_app import CHUNK_TASK
from ocr_service.verification import service as verification_service
from ocr_service.verification.models import (
    Attempt,
    AttemptStatus,
    DocumentType,
    ImageSide,
    Method,
    StatusEvent,
    StoredImage,
    Verification,
    VerificationStatus,
    VerifiedIdentity,
)
from pipelines.reasons import Decision

log = structlog.get_logger(__name__)

REVIEW_ORIGIN = "reverification_failed"
# 25 cases at about 0.3 s is ~8 s a chunk: far below the 300 s visibility timeout (a chunk
# that outlives it is handed to a second worker), and small enough that a killed worker
# strands little work.
DEFAULT_CHUNK_SIZE = 25
UNFINISHED_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)
_OUTCOME_COLUMNS = {
    Outcome.UNCHANGED: Job.unchanged,
    Outcome.CHANGED_DECISION: Job.changed_decision,
    Outcome.CHANGED_FIELDS: Job.changed_fields,
    Outcome.NOW_FAILING: Job.now_failing,
}


# --- selection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which stored cases a job re-runs. Dates are inclusive days (UTC) of the original scan."""

    since: date | None = None
    until: date | None = None
    region: str | None = None  # division-code prefix: "42", "4201", "420106"
    status: VerificationStatus | None = None  # the verification's current status
    method: Method | None = Method.AUTO

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "region": self.region,
            "status": self.status.value if self.status else None,
            "method": self.method.value if self.method else None,
        }


def _day_start(day: date) -> datetime:
    return datetime.combine(day, dtime.min, tzinfo=UTC)


def select_cases(session: Session, selection: Selection, settings: Settings | None = None) -> list[str]:
    """Attempt ids of the stored cases matching ``selection``, oldest first.

    A stored case is a finished scan of a card front whose photo is still stored and within
    retention (an image past retention but not purged yet is left alone: purge is about to
    take it).
    """
    settings = settings or get_settings()
    retention_cutoff = utcnow() - timedelta(days=settings.retention_days)
    stmt = (
        select(Attempt.id, Attempt.read_number_enc, Verification.id, Verification.claim_number_enc)
        .join(Verification, Verification.id == Attempt.verification_id)
        .join(StoredImage, StoredImage.id == Attempt.image_id)
        .where(
            Attempt.status == AttemptStatus.DONE,
            Attempt.side == ImageSide.FRONT,
            Verification.document_type == DocumentType.RESIDENT_ID,
            StoredImage.blob_id.is_not(None),
            StoredImage.created_at >= retention_cutoff,
        )
        .order_by(Attempt.created_at, Attempt.id)
    )
    if selection.method is not None:
        stmt = stmt.where(Verification.method == selection.method)
    if selection.status is not None:
        stmt = stmt.where(Verification.status == selection.status)
    if selection.since is not None:
        stmt = stmt.where(Attempt.created_at >= _day_start(selection.since))
    if selection.until is not None:
        stmt = stmt.where(Attempt.created_at < _day_start(selection.until + timedelta(days=1)))
    rows = session.execute(stmt).all()
    if not selection.region:
        return [row[0] for row in rows]
    cipher = get_cipher()
    chosen = []
    for attempt_id, read_enc, verification_id, claim_enc in rows:
        if read_enc is not None:
            number = cipher.decrypt_text(read_enc, verification_service._read_aad(attempt_id))
        else:
            number = cipher.decrypt_text(claim_enc, verification_service._claim_aad(verification_id))
        if number.startswith(selection.region):
            chosen.append(attempt_id)
    return chosen


# --- creating, starting, resuming, cancelling ---------------------------------------------------------


def create_job(
    session: Session,
    selection: Selection,
    *,
    created_by: str,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    settings: Settings | None = None,
) -> Job:
    """Select the cases and store the job with one ``pending`` item per case; commits.

    Nothing runs yet: ``start_job`` hands the chunks to the workers (after this commit, so a
    worker never sees a chunk whose items are not written).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    attempt_ids = select_cases(session, selection, settings)
    chunks = (len(attempt_ids) + chunk_size - 1) // chunk_size
    job = Job(
        kind=JobKind.REVERIFY,
        status=JobStatus.QUEUED if attempt_ids else JobStatus.COMPLETED,
        dry_run=dry_run,
        criteria=selection.as_json(),
        chunk_size=chunk_size,
        chunks=chunks,
        total=len(attempt_ids),
        done=0,
        failed=0,
        unchanged=0,
        changed_decision=0,
        changed_fields=0,
        now_failing=0,
        created_by=created_by,
    )
    if not attempt_ids:
        job.finished_at = utcnow()
    session.add(job)
    session.flush()
    if attempt_ids:
        session.execute(
            insert(JobItem),
            [
                {"job_id": job.id, "attempt_id": attempt_id, "chunk_no": i // chunk_size, "status": ItemStatus.PENDING}
                for i, attempt_id in enumerate(attempt_ids)
            ],
        )
    session.commit()
    log.info("reverify_job_created", job_id=job.id, total=job.total, chunks=chunks, dry_run=dry_run)
    return job


def pending_chunks(session: Session, job_id: str) -> list[int]:
    """Chunk numbers of ``job_id`` that still have a pending case."""
    return list(
        session.scalars(
            select(JobItem.chunk_no)
            .where(JobItem.job_id == job_id, JobItem.status == ItemStatus.PENDING)
            .distinct()
            .order_by(JobItem.chunk_no)
        ).all()
    )


def start_job(session: Session, job_id: str, settings: Settings | None = None) -> int:
    """Hand every chunk with pending cases to the batch workers; returns how many were submitted.

    Also the resume: after a crash of everything (or a cancel undone), submitting again only
    sends chunks that still have work, and a chunk that is somehow delivered twice skips what
    is done. Raises ``dispatch.BrokerUnavailable`` when the broker refuses (the job stays
    stored; start it again later).
    """
    settings = settings or get_settings()
    chunks = pending_chunks(session, job_id)
    for chunk_no in chunks:
        dispatch.submit_chunk(job_id, chunk_no, settings)
    return len(chunks)


def resume_job(session: Session, job_id: str, settings: Settings | None = None) -> int:
    """Start a job again (``jobs resume``): a cancelled one goes back to running; finished chunks stay done."""
    job = _get_job(session, job_id)
    if job.status == JobStatus.CANCELLED:
        job.status = JobStatus.RUNNING if job.started_at else JobStatus.QUEUED
        job.finished_at = None
        session.commit()
    return start_job(session, job_id, settings)


def cancel_job(session: Session, job_id: str) -> Job:
    """Stop a job: chunks check before each case and stop; a case already being scanned finishes. Commits."""
    job = _get_job(session, job_id)
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(UNFINISHED_JOB))
        .values(status=JobStatus.CANCELLED, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(job)
    log.info("reverify_job_cancelled", job_id=job_id, status=job.status.value)
    return job


def _get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job")
    return job


# --- progress ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobProgress:
    """A job's counters as the CLI's progress bar and ``GET /v1/jobs/{id}`` show them."""

    id: str
    kind: str
    status: JobStatus
    dry_run: bool
    criteria: dict[str, Any]
    chunks: int
    total: int
    done: int
    failed: int
    unchanged: int
    changed_decision: int
    changed_fields: int
    now_failing: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished_cases(self) -> int:
        return self.done + self.failed

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.CANCELLED)

    @property
    def cases_per_second(self) -> float | None:
        if self.started_at is None or self.finished_cases == 0:
            return None
        elapsed = ((self.finished_at or utcnow()) - self.started_at).total_seconds()
        return self.finished_cases / elapsed if elapsed > 0 else None

    @property
    def eta_seconds(self) -> float | None:
        rate = self.cases_per_second
        if self.is_finished:
            return 0.0
        return (self.total - self.finished_cases) / rate if rate else None


def progress_of(job: Job) -> JobProgress:
    return JobProgress(
        id=job.id,
        kind=job.kind.value,
        status=job.status,
        dry_run=job.dry_run,
        criteria=dict(job.criteria or {}),
        chunks=job.chunks,
        total=job.total,
        done=job.done,
        failed=job.failed,
        unchanged=job.unchanged,
        changed_decision=job.changed_decision,
        changed_fields=job.changed_fields,
        now_failing=job.now_failing,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def get_progress(session: Session, job_id: str) -> JobProgress:
    job = _get_job(session, job_id)
    session.refresh(job)
    return progress_of(job)


def list_jobs(session: Session, limit: int = 50) -> list[JobProgress]:
    jobs = session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)).all()
    return [progress_of(job) for job in jobs]


# --- running one chunk (worker side) ------------------------------------------------------------


@dataclass(frozen=True)
class ChunkRun:
    job_id: str
    chunk_no: int
    recorded: int  # cases this run wrote
    skipped: int  # cases already finished (a redelivery) or finished concurrently by another run
    cancelled: bool = False


@dataclass(frozen=True)
class _StoredScan:
    """The scan on record, as the case was decided."""

    decision: str | None
    reasons: list[str]
    fields: dict[str, str]
    read_number: str | None
    claim_number_masked: str
    pipeline_version: str | None
    models_digest: str | None


def run_chunk(job_id: str, chunk_no: int, database: Database | None = None) -> ChunkRun:
    """Re-run the pending cases of one chunk; idempotent (what ``reverify_tasks.run_reverify_chunk`` calls)."""
    database = database or get_database()
    settings = get_settings()
    with database.session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.status not in UNFINISHED_JOB:
            return ChunkRun(job_id, chunk_no, 0, 0, cancelled=job is not None and job.status == JobStatus.CANCELLED)
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, started_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        dry_run = job.dry_run
        item_ids = session.scalars(
            select(JobItem.id)
            .where(JobItem.job_id == job_id, JobItem.chunk_no == chunk_no, JobItem.status == ItemStatus.PENDING)
            .order_by(JobItem.id)
        ).all()
    recorded = skipped = 0
    for item_id in item_ids:
        if _job_status(database, job_id) not in UNFINISHED_JOB:
            log.info("reverify_chunk_stopped", job_id=job_id, chunk_no=chunk_no, recorded=recorded)
            return ChunkRun(job_id, chunk_no, recorded, skipped, cancelled=True)
        if _reverify_case(database, job_id, item_id, dry_run, settings):
            recorded += 1
        else:
            skipped += 1
    return ChunkRun(job_id, chunk_no, recorded, skipped)


# without a broker, queue.dispatch.submit_chunk runs this itself
dispatch.register_inprocess(CHUNK_TASK, run_chunk)


def _job_status(database: Database, job_id: str) -> JobStatus | None:
    with database.session_scope() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id))


def _reverify_case(database: Database, job_id: str, item_id: int, dry_run: bool, settings: Settings) -> bool:
    """Scan one case again and record it; False when it was already recorded (by this or another run)."""
    from ocr_service.report import scan_result_json

    with database.session_scope() as session:
        item = session.get(JobItem, item_id)
        if item is None or item.status != ItemStatus.PENDING:
            return False
        attempt = session.get(Attempt, item.attempt_id)
        if attempt is None:
            stored, inputs = None, LookupError("the attempt is gone")
        else:
            stored = _stored_scan(attempt)
            # the photo is read with the verification service's own helper (decrypt blob, claim)
            inputs = verification_service._load_inputs(session, attempt)
    # The scan runs outside any transaction: nothing is locked for its ~0.3 s.
    try:
        outcome = verification_service._run_scan(inputs, settings)
    except dispatch.TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # a pipeline bug on one photo fails that case, not the job
        outcome = verification_service._ScanOutcome(None, None, type(exc).__name__)

    values: dict[str, Any] = {"finished_at": utcnow()}
    if stored is not None:
        values.update(
            old_decision=stored.decision,
            old_reasons=stored.reasons,
            old_pipeline_version=stored.pipeline_version,
            old_models_digest=stored.models_digest,
            number_masked=mask_document_number(stored.read_number) or stored.claim_number_masked,
        )
    if outcome.result is None or stored is None:
        values.update(status=ItemStatus.FAILED, error=(outcome.error or "scan_failed")[:64])
        case_outcome = None
    else:
        result = outcome.result
        new_fields = scan_result_json(result, full_id_number=False)["fields"]
        new_number = result.fields.value("id_number") if result.fields is not None else ""
        case_outcome, changed = classify(stored, result.decision.value, new_fields, new_number or None)
        values.update(
            status=ItemStatus.DONE,
            outcome=case_outcome,
            new_decision=result.decision.value,
            new_reasons=[r.value for r in result.reasons],
            changed=changed,
            new_pipeline_version=result.pipeline_version,
            new_models_digest=result.models_digest or None,
        )
        if new_number and not values.get("number_masked"):
            values["number_masked"] = mask_document_number(new_number)

    with database.session_scope() as session:
        flag_target = None
        if case_outcome == Outcome.NOW_FAILING:
            verification = session.get(Verification, attempt.verification_id)
            if verification is not None and verification.status == VerificationStatus.VERIFIED:
                flag_target = verification
                values["action"] = "dry_run" if dry_run else "flagged"
        moved = session.execute(
            update(JobItem)
            .where(JobItem.id == item_id, JobItem.status == ItemStatus.PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not moved:  # another run of this chunk recorded it first: count nothing, flag nothing
            return False
        if flag_target is not None and not dry_run:
            _flag_case(session, flag_target, job_id, values)
        counters: dict[str, Any] = {}
        if case_outcome is None:
            counters["failed"] = Job.failed + 1
        else:
            column = _OUTCOME_COLUMNS[case_outcome]
            counters["done"] = Job.done + 1
            counters[column.key] = column + 1
        session.execute(
            update(Job).where(Job.id == job_id).values(**counters).execution_options(synchronize_session=False)
        )
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(UNFINISHED_JOB), Job.done + Job.failed >= Job.total)
            .values(status=JobStatus.COMPLETED, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return True


def _stored_scan(attempt: Attempt) -> _StoredScan:
    verification = attempt.verification
    read_number = verification_service.read_number(attempt)
    claim = verification_service.claim_number(verification)
    result = attempt.result or {}
    return _StoredScan(
        decision=attempt.decision.value if attempt.decision else None,
        reasons=list(attempt.reasons or []),
        fields=dict(result.get("fields") or {}),
        read_number=read_number,
        claim_number_masked=mask_document_number(claim),
        pipeline_version=attempt.pipeline_version,
        models_digest=attempt.models_digest,
    )


def classify(
    stored: _StoredScan, new_decision: str, new_fields: dict[str, str], new_number: str | None
) -> tuple[Outcome, list[str]]:
    """The outcome of one re-run and the names of the fields that read differently.

    Fields are compared as stored (the number masked), plus the full number when both scans
    read one, so a changed middle digit is not hidden by the mask.
    """
    names = set(stored.fields) | set(new_fields)
    changed = sorted(name for name in names if stored.fields.get(name) != new_fields.get(name))
    if "id_number" not in changed and stored.read_number and new_number and stored.read_number != new_number:
        changed = sorted([*changed, "id_number"])
    if stored.decision == Decision.ACCEPT.value and new_decision != Decision.ACCEPT.value:
        return Outcome.NOW_FAILING, changed
    if stored.decision != new_decision:
        return Outcome.CHANGED_DECISION, changed
    if changed:
        return Outcome.CHANGED_FIELDS, changed
    return Outcome.UNCHANGED, changed


def _flag_case(session: Session, verification: Verification, job_id: str, values: dict[str, Any]) -> None:
    """Flag the identity and send the case to a person; nothing is revoked. Runs in the caller's transaction."""
    reasons = [REVIEW_ORIGIN, *(values.get("new_reasons") or [])]
    reason_text = (
        f"re-verification job {job_id}: the scan now decides {values.get('new_decision')} "
        f"({', '.join(values.get('new_reasons') or []) or 'no reason'}); pipeline "
        f"{values.get('old_pipeline_version')} -> {values.get('new_pipeline_version')}"
    )
    identity = session.scalar(
        select(VerifiedIdentity).where(
            VerifiedIdentity.client_key_id == verification.client_key_id,
            VerifiedIdentity.subject_id == verification.subject_id,
        )
    )
    if identity is not None:
        identity.flagged = True
        identity.flag_reason = reason_text[:2000]
    _open_review_case(session, verification, reasons, job_id)
    try:
        from ocr_service.declaration.service import flag_declarations_for_identity
    except ImportError:
        flag_declarations_for_identity = None
    if flag_declarations_for_identity is not None:
        flag_declarations_for_identity(session, verification.subject_id, verification.client_key_id, reason_text)
    log.info("reverify_case_flagged", job_id=job_id, verification_id=verification.id)


def _open_review_case(session: Session, verification: Verification, reasons: list[str], job_id: str) -> None:
    """The review queue's ``open_case`` when installed (issue 4); else mark the case on its own history.

    The fallback keeps the status ``verified`` (the state machine has no verified -> in_review
    edge; the review design keeps a flagged case verified until a reviewer approves or
    rejects it) and records ``review_reason`` and a history row a reviewer can find.
    """
    try:
        from ocr_service.review.service import open_case
    except ImportError:
        open_case = None
    if open_case is not None:
        open_case(session, verification.id, origin=REVIEW_ORIGIN, reasons=reasons)
        return
    verification.review_reason = REVIEW_ORIGIN
    session.add(
        StatusEvent(
            verification_id=verification.id,
            from_status=verification.status,
            to_status=verification.status,
            reason=REVIEW_ORIGIN,
            actor=f"job:{job_id}",
        )
    )


# --- the report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One case of a job as the report shows it (the number masked)."""

    attempt_id: str
    verification_id: str
    scanned_at: str
    status: str
    outcome: str | None
    number_masked: str | None
    old_decision: str | None
    new_decision: str | None
    old_reasons: list[str]
    new_reasons: list[str]
    changed_fields: list[str]
    old_pipeline_version: str | None
    new_pipeline_version: str | None
    old_models_digest: str | None
    new_models_digest: str | None
    action: str | None
    error: str | None


@dataclass(frozen=True)
class VersionChange:
    """Which pipeline/models produced the stored scans, which produced today's, and what moved."""

    old_version: str
    old_digest: str
    new_version: str
    new_digest: str
    outcomes: dict[str, int]


@dataclass(frozen=True)
class ReportSummary:
    job: JobProgress
    outcomes: dict[str, int]
    decisions_before: dict[str, int]
    decisions_after: dict[str, int]
    reasons_before: dict[str, int]
    reasons_after: dict[str, int]
    versions: list[VersionChange] = field(default_factory=list)


def report_rows(session: Session, job_id: str) -> list[ReportRow]:
    _get_job(session, job_id)
    rows = session.execute(
        select(JobItem, Attempt.verification_id, Attempt.created_at)
        .join(Attempt, Attempt.id == JobItem.attempt_id)
        .where(JobItem.job_id == job_id)
        .order_by(JobItem.id)
    ).all()
    return [
        ReportRow(
            attempt_id=item.attempt_id,
            verification_id=verification_id,
            scanned_at=created_at.isoformat(),
            status=item.status.value,
            outcome=item.outcome.value if item.outcome else None,
            number_masked=item.number_masked,
            old_decision=item.old_decision,
            new_decision=item.new_decision,
            old_reasons=list(item.old_reasons or []),
            new_reasons=list(item.new_reasons or []),
            changed_fields=list(item.changed or []),
            old_pipeline_version=item.old_pipeline_version,
            new_pipeline_version=item.new_pipeline_version,
            old_models_digest=item.old_models_digest,
            new_models_digest=item.new_models_digest,
            action=item.action,
            error=item.error,
        )
        for item, verification_id, created_at in rows
    ]


def summarize(job: JobProgress, rows: list[ReportRow]) -> ReportSummary:
    finished = [row for row in rows if row.status != ItemStatus.PENDING.value]
    by_version: dict[tuple[str, str, str, str], Counter] = defaultdict(Counter)
    for row in finished:
        key = (
            row.old_pipeline_version or "?",
            (row.old_models_digest or "?")[:12],
            row.new_pipeline_version or "?",
            (row.new_models_digest or "?")[:12],
        )
        by_version[key][row.outcome or "failed"] += 1
    return ReportSummary(
        job=job,
        outcomes=dict(Counter(row.outcome or row.status for row in rows)),
        decisions_before=dict(Counter(row.old_decision or "none" for row in finished)),
        decisions_after=dict(Counter(row.new_decision or "failed" for row in finished)),
        reasons_before=dict(Counter(reason for row in finished for reason in row.old_reasons)),
        reasons_after=dict(Counter(reason for row in finished for reason in row.new_reasons)),
        versions=[VersionChange(*key, dict(counts)) for key, counts in sorted(by_version.items())],
    )


@dataclass(frozen=True)
class ReportFiles:
    report: Path
    chart: Path
    summary: ReportSummary


def write_report(session: Session, job_id: str, fmt: str, out: Path) -> ReportFiles:
    """Write the report (``csv`` or ``json``) to ``out`` and the chart beside it (``out`` with ``.png``)."""
    if fmt not in ("csv", "json"):
        raise ValueError("format must be csv or json")
    job = get_progress(session, job_id)
    rows = report_rows(session, job_id)
    summary = summarize(job, rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ReportRow.__dataclass_fields__))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in asdict(row).items()})
    else:
        document = {"summary": _jsonable(asdict(summary)), "cases": [asdict(row) for row in rows]}
        out.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    chart = out.with_suffix(".png")
    write_chart(summary, chart)
    return ReportFiles(out, chart, summary)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_chart(summary: ReportSummary, path: Path) -> Path:
    """Decisions before vs after, and reason codes before vs after, as grouped bars (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot
    import matplotlib.pyplot as plt

    decisions = sorted(set(summary.decisions_before) | set(summary.decisions_after))
    reasons = sorted(
        set(summary.reasons_before) | set(summary.reasons_after),
        key=lambda r: -(summary.reasons_before.get(r, 0) + summary.reasons_after.get(r, 0)),
    )[:12]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    _grouped_bars(left, decisions, summary.decisions_before, summary.decisions_after)
    left.set_title("Decision per case")
    _grouped_bars(right, reasons, summary.reasons_before, summary.reasons_after)
    right.set_title("Reasons given")
    right.tick_params(axis="x", labelrotation=30)
    fig.suptitle(f"Re-verification {summary.job.id[:8]}: stored scan vs today ({summary.job.total} cases)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _grouped_bars(ax, labels: list[str], before: dict[str, int], after: dict[str, int]) -> None:
    positions = range(len(labels))
    width = 0.4
    ax.bar([p - width / 2 for p in positions], [before.get(k, 0) for k in labels], width, label="before")
    ax.bar([p + width / 2 for p in positions], [after.get(k, 0) for k in labels], width, label="after")
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("cases")
    ax.legend()


def wait_until_finished(job_id: str, timeout: float, database: Database | None = None) -> JobProgress:
    """Poll until the job is completed or cancelled (tests, ``reverify --wait`` without a terminal)."""
    database = database or get_database()
    deadline = time.monotonic() + timeout
    while True:
        with database.session_scope() as session:
            progress = get_progress(session, job_id)
        if progress.is_finished or time.monotonic() >= deadline:
            return progress
        time.sleep(0.2)
