"""Celery task for re-verification: ``run_reverify_chunk(job_id, chunk_no)`` on the ``batch`` queue.

A thin wrapper around ``reverify.run_chunk``: the message carries two ids, the chunk is
idempotent (finished cases are skipped, each case is counted once), so a redelivery after a
worker crash simply finishes what the dead worker left. Transient DB/Redis errors retry the
chunk in place with back-off for ``task_retry_window_seconds`` (``dispatch.retry_transient``);
everything else is recorded per case by the service. A chunk runs for minutes: the worker's
``UnackedHeartbeat`` keeps its message from being redelivered meanwhile.

Without a broker, ``submit_chunk`` runs chunks on a process-wide pool of its own (one thread),
separate from the live scan pool of ``jobs.dispatch``, so a batch never takes the threads an
applicant's upload waits for.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures

import structlog
from celery import shared_task

from ocr_service.config import Settings, get_settings
from ocr_service.jobs.dispatch import BrokerUnavailable, retry_transient

log = structlog.get_logger(__name__)

CHUNK_TASK = "ocr_service.jobs.reverify_tasks.run_reverify_chunk"


@shared_task(
    bind=True,
    name=CHUNK_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,  # the outcome is in job_items; nothing waits on a Celery result
)
def run_reverify_chunk(self, job_id: str, chunk_no: int) -> None:
    """Re-run the pending cases of one chunk of a re-verification job."""
    from ocr_service.jobs import reverify

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


def submit_chunk(job_id: str, chunk_no: int, settings: Settings | None = None) -> None:
    """Queue one chunk: the ``batch`` queue with a broker, else the in-process batch pool."""
    settings = settings or get_settings()
    if settings.broker_url:
        from kombu.exceptions import OperationalError as KombuOperationalError
        from redis.exceptions import RedisError

        from ocr_service.jobs.celery_app import BATCH_QUEUE, get_celery_app

        task = get_celery_app(settings).tasks[CHUNK_TASK]
        try:
            task.apply_async(args=[job_id, chunk_no], queue=BATCH_QUEUE, ignore_result=True)
        except (KombuOperationalError, RedisError, OSError) as exc:
            raise BrokerUnavailable(f"the task queue is unavailable ({type(exc).__name__})") from exc
        return
    future = _batch_pool().submit(_run_inprocess, job_id, chunk_no)
    with _pool_lock:
        _pending.add(future)
    future.add_done_callback(_forget)


# --------------------------------------------------------------------------- in-process pool

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending: set[Future] = set()


def _batch_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reverify")
        return _pool


def _forget(future: Future) -> None:
    with _pool_lock:
        _pending.discard(future)


def _run_inprocess(job_id: str, chunk_no: int) -> None:
    from ocr_service.jobs import reverify

    try:
        retry_transient(reverify.run_chunk, job_id, chunk_no, what="reverify_chunk", job_id=job_id, chunk_no=chunk_no)
    except Exception as exc:  # the chunk stays pending; `ocr-service jobs resume` runs it again
        log.error("reverify_chunk_crashed", job_id=job_id, chunk_no=chunk_no, error=type(exc).__name__)


def drain(timeout: float | None = None) -> bool:
    """Wait for every in-process chunk submitted so far (tests, the CLI without a broker)."""
    with _pool_lock:
        pending = list(_pending)
    _done, not_done = wait_for_futures(pending, timeout)
    return not not_done


def shutdown(wait: bool = True) -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=not wait)
