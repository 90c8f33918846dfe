"""Tables of batch re-verification: a job, and one item per stored case it re-runs.

``job_items`` is the job's progress: each case is ``pending`` until a chunk task writes its
outcome, in the same transaction as the job's counters, with a conditional UPDATE
(``pending`` -> ``done``/``failed``), so a redelivered or duplicated chunk never counts a case
twice. The counters on ``jobs`` are what progress bars and ``GET /v1/jobs/{id}`` read; the
items are what the report reads. The schema is owned by migration ``0004_reverify``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ocr_service.db import Base, str_enum, utcnow
from ocr_service.verification.models import UuidPrimaryKey

_JSON = JSON(none_as_null=True)


class JobKind(StrEnum):
    REVERIFY = "reverify"


class JobStatus(StrEnum):
    QUEUED = "queued"  # created, chunks handed to the batch queue, nothing finished yet
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ItemStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # the scan could not run (image unreadable, a pipeline error)


class Outcome(StrEnum):
    UNCHANGED = "unchanged"
    CHANGED_DECISION = "changed_decision"
    CHANGED_FIELDS = "changed_fields"  # same decision, a field reads differently
    NOW_FAILING = "now_failing"  # accepted before, not accepted now: flagged for review


class Job(UuidPrimaryKey, Base):
    """One batch job (today only re-verification) with its selection and counters."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_created_at", "created_at"),)

    kind: Mapped[JobKind] = mapped_column(str_enum(JobKind, length=16))
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, length=16))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # the selection as given: since, until, region, status, method (strings or null)
    criteria: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    chunk_size: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)  # finished with an outcome
    failed: Mapped[int] = mapped_column(Integer, default=0)  # finished without one
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    changed_decision: Mapped[int] = mapped_column(Integer, default=0)
    changed_fields: Mapped[int] = mapped_column(Integer, default=0)
    now_failing: Mapped[int] = mapped_column(Integer, default=0)
    # "key:<api key id>" or "cli"
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobItem(Base):
    """One stored case (an attempt) of a job, and what re-running it found."""

    __tablename__ = "job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt_id"),
        Index("ix_job_items_job_chunk", "job_id", "chunk_no"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    chunk_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[ItemStatus] = mapped_column(str_enum(ItemStatus, length=16))
    outcome: Mapped[Outcome | None] = mapped_column(str_enum(Outcome, length=32))
    # the ID number as reports show it (1****************1); never the full number
    number_masked: Mapped[str | None] = mapped_column(String(32))
    old_decision: Mapped[str | None] = mapped_column(String(16))
    new_decision: Mapped[str | None] = mapped_column(String(16))
    old_reasons: Mapped[list[str] | None] = mapped_column(_JSON)
    new_reasons: Mapped[list[str] | None] = mapped_column(_JSON)
    changed: Mapped[list[str] | None] = mapped_column(_JSON)  # names of the fields that read differently
    old_pipeline_version: Mapped[str | None] = mapped_column(String(32))
    new_pipeline_version: Mapped[str | None] = mapped_column(String(32))
    old_models_digest: Mapped[str | None] = mapped_column(String(64))
    new_models_digest: Mapped[str | None] = mapped_column(String(64))
    # what was done about it: flagged (identity flagged, review opened), dry_run, or null
    action: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(64))  # why a failed item failed (a code)
    finished_at: Mapped[datetime | None]
