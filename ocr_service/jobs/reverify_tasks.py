"""Celery task for re-verification: ``run_reverify_chunk(job_id, chunk_no)`` on the ``batch`` queue.

A thin wrapper around ``reverify.run_chunk``: the message carries two ids, the chunk is
idempotent (finished cases are skipped, each case is counted once), so a redelivery after a
worker crash simply finishes what the dead worker left. Transient DB/Redis errors retry the
chunk in place with back-off for ``task_retry_window_seconds`` (``queue.dispatch.retry_transient``);
everything else is recorded per case by the service. A chunk runs for minutes: the worker's
``UnackedHeartbeat`` keeps its message from being redelivered meanwhile.

Chunks are submitted by ``queue.dispatch.submit_chunk`` (by task name, so ``reverify`` never
imports this module); without a broker it runs ``reverify.run_chunk`` on a one-thread pool of
its own, separate from the live scan pool, so a batch never takes the threads an applicant's
upload waits for.
"""

from __future__ import annotations

import structlog
from celery import shared_task

from ocr_service.jobs import reverify
from ocr_service.queue.celery_app import CHUNK_TASK
from ocr_service.queue.dispatch import retry_transient

log = structlog.get_logger(__name__)


@shared_task(
    bind=True,
    name=CHUNK_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,  # the outcome is in job_items; nothing waits on a Celery result
)
def run_reverify_chunk(self, job_id: str, chunk_no: int) -> None:
    """Re-run the pending cases of one chunk of a re-verification job."""
    delivery = self.request.delivery_info or {}
    log.info(
        "reverify_chunk_started",
        job_id=job_id,
        chunk_no=chunk_no,
        task_id=self.request.id,
        redelivered=bool(delivery.get("redelivered")),
    )
    run = retry_transient(reverify.run_chunk, job_id, chunk_no, what="reverify_chunk", job_id=job_id, chunk_no=chunk_no)
    log.info(
        "reverify_chunk_finished",
        job_id=job_id,
        chunk_no=chunk_no,
        recorded=run.recorded,
        skipped=run.skipped,
        cancelled=run.cancelled,
    )
