"""Celery tasks for verification: thin wrappers that call the service with an attempt id.

Messages carry ids only (never images or ORM objects). ``scan_attempt`` is safe to deliver more
than once: ``service.process_attempt`` locks the attempt row and returns at once when the
attempt is already done. Transient infrastructure errors (the database or Redis went away)
are retried in place with exponential back-off and jitter for ``task_retry_window_seconds``
(``queue.dispatch.retry_transient``), so a 2-minute outage is ridden out and the scan goes on within
10 s of its end; a pipeline decision (accept, retake, reject, review) is a result, never a retry.

The worker-process lifecycle lives here too, because only workers import this module: each
pool child drops the database connections it inherited from the parent and loads the OCR
models once; the worker's main process re-submits attempts stranded by a crash or a broker
outage (``queue.dispatch.RequeueSweeper``) and keeps the messages it holds from being redelivered
while they run (``queue.celery_app.UnackedHeartbeat``).
"""

from __future__ import annotations

import os
import time

import structlog
from celery import shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from ocr_service import subscribers
from ocr_service.queue.celery_app import SCAN_TASK, UnackedHeartbeat
from ocr_service.queue.dispatch import TRANSIENT_ERRORS, RequeueSweeper, retry_transient, start_requeue_sweeper
from ocr_service.verification import service

subscribers.connect()  # the worker moves verifications: the review queue and webhooks follow

log = structlog.get_logger(__name__)

# Fault-injection hook for tests/ocr_service/test_worker_crash.py: seconds to sleep at the start
# of every scan, so a test can kill the worker while a task is in flight. Read here and
# nowhere else; never set it in production.
SCAN_DELAY_ENV = "OCR_TEST_SCAN_DELAY_S"


class ScanTaskCrashed(RuntimeError):
    """``process_attempt`` raised something other than a transient error; the message is its type name."""


@shared_task(
    bind=True,
    name=SCAN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,  # the outcome is the attempt row; nothing waits on a Celery result
)
def scan_attempt(self, attempt_id: str) -> None:
    """Scan one uploaded image and record the decision (``service.process_attempt``)."""
    delivery = self.request.delivery_info or {}
    log.info(
        "scan_task_started",
        attempt_id=attempt_id,
        task_id=self.request.id,
        retries=self.request.retries,
        redelivered=bool(delivery.get("redelivered")),
    )
    delay = os.environ.get(SCAN_DELAY_ENV)
    if delay:
        time.sleep(float(delay))
    try:
        retry_transient(service.process_attempt, attempt_id, what="scan_task", attempt_id=attempt_id)
    except TRANSIENT_ERRORS as exc:
        # retried for the whole window: the attempt stays queued, the sweeper re-publishes it
        log.error("scan_task_gave_up", attempt_id=attempt_id, task_id=self.request.id, error=type(exc).__name__)
        raise ScanTaskCrashed(type(exc).__name__) from None
    except Exception as exc:
        # A bug, not bad luck: no retry. Celery logs what a task raises, and an exception's text
        # may carry personal data (an SQL parameter, an OCR read), so only its type leaves here.
        # The attempt stays unfinished; requeue_stale tries it again after the visibility timeout.
        log.error("scan_task_crashed", attempt_id=attempt_id, task_id=self.request.id, error=type(exc).__name__)
        raise ScanTaskCrashed(type(exc).__name__) from None
    log.info("scan_task_finished", attempt_id=attempt_id, task_id=self.request.id)


# --------------------------------------------------------------------------- worker lifecycle


@worker_process_init.connect
def _init_pool_process(**_kwargs) -> None:
    """In each prefork child: no pooled DB connection shared with the parent, models loaded once."""
    from ocr_service import db
    from ocr_service.config import get_settings
    from pipelines.ocr import get_engine

    db.dispose_after_fork()
    settings = get_settings()
    get_engine(settings.ocr_engine, settings.ocr_threads, warm=True)
    log.info("worker_process_ready", pid=os.getpid(), ocr_engine=settings.ocr_engine, ocr_threads=settings.ocr_threads)


_sweeper: RequeueSweeper | None = None
_heartbeat: UnackedHeartbeat | None = None


@worker_ready.connect
def _start_requeue_sweeper(**_kwargs) -> None:
    """Re-submit what a crash or an outage left behind (``RequeueSweeper``); keep held messages alive."""
    global _sweeper, _heartbeat
    from ocr_service.config import get_settings

    settings = get_settings()
    _sweeper = start_requeue_sweeper(settings)
    _heartbeat = UnackedHeartbeat(settings).start()


@worker_shutdown.connect
def _stop_requeue_sweeper(**_kwargs) -> None:
    if _sweeper is not None:
        _sweeper.stop()
    if _heartbeat is not None:
        _heartbeat.stop()
