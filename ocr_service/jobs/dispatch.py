"""``submit(attempt_id)``: run a scan off the request path, on Celery or on an in-process pool.

With ``OCR_BROKER_URL`` set the attempt goes to the ``live`` queue of the Celery workers
(``verification.tasks.scan_attempt``); without it a process-wide thread pool of
``settings.inprocess_workers`` threads runs the same ``service.process_attempt``. Both paths run
the same idempotent service function, so an attempt submitted twice is scanned once.

No accepted upload is dropped: the attempt row is committed as ``queued`` before ``submit`` is
called, and an attempt that never finished (the broker was down, a worker or the embedded
server crashed) is submitted again by ``requeue_stale`` — on embedded serve start, at worker
start, periodically in workers, and by ``ocr-service worker --requeue-stale``.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from datetime import UTC, datetime, timedelta

import redis.exceptions
import sqlalchemy.exc
import structlog
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ocr_service.config import Settings, get_settings

log = structlog.get_logger(__name__)

# Errors worth retrying: the database or Redis is briefly unreachable or busy (SQLite "database
# is locked", a PostgreSQL failover, a Redis restart). Anything else — a pipeline decision, a
# bug — is not made better by running it again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,  # connection pool exhausted
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
UNFINISHED_STATUSES = ("queued", "running")
INPROCESS_MAX_RETRIES = 5


class BrokerUnavailable(RuntimeError):
    """The broker did not take the message. The attempt stays ``queued``; ``requeue_stale`` resends it.

    The HTTP layer answers 503 ``queue_unavailable``.
    """


def submit(attempt_id: str, settings: Settings | None = None) -> None:
    """Hand one committed ``queued`` attempt to the scanners; returns as soon as it is handed over."""
    settings = settings or get_settings()
    if settings.broker_url:
        _submit_to_broker(attempt_id, settings)
    else:
        future = _inprocess_pool(settings).submit(_run_inprocess, attempt_id)
        with _pool_lock:
            _pending.add(future)
        future.add_done_callback(_forget)


# --------------------------------------------------------------------------- Celery


def _submit_to_broker(attempt_id: str, settings: Settings) -> None:
    from ocr_service.jobs.celery_app import LIVE_QUEUE, get_celery_app
    from ocr_service.verification.tasks import SCAN_TASK

    scan_attempt = get_celery_app(settings).tasks[SCAN_TASK]
    try:
        # The result is the attempt row, not a Celery result: ignore_result also keeps the
        # producer from subscribing to the result backend, whose reconnect loop would hold a
        # request for 20 s (and then disable the app) when Redis is down.
        scan_attempt.apply_async(args=[attempt_id], queue=LIVE_QUEUE, ignore_result=True)
    except (KombuOperationalError, redis.exceptions.RedisError, OSError) as exc:
        log.warning("broker_unavailable", attempt_id=attempt_id, error=type(exc).__name__)
        raise BrokerUnavailable(f"the task queue is unavailable ({type(exc).__name__})") from exc


# --------------------------------------------------------------------------- in-process pool

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending: set[Future] = set()


def _forget(future: Future) -> None:
    with _pool_lock:
        _pending.discard(future)


def _inprocess_pool(settings: Settings) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.inprocess_workers, thread_name_prefix="scan")
        return _pool


def _run_inprocess(attempt_id: str) -> None:
    """``process_attempt`` with the Celery task's retry policy for transient errors."""
    from ocr_service.verification import service

    for retry in range(INPROCESS_MAX_RETRIES + 1):
        try:
            service.process_attempt(attempt_id)
            return
        except TRANSIENT_ERRORS as exc:
            if retry == INPROCESS_MAX_RETRIES:
                log.error("scan_gave_up", attempt_id=attempt_id, error=type(exc).__name__, retries=retry)
                return  # stays queued/running; requeue_stale tries again on the next start
            backoff = random.uniform(0, min(30.0, 0.5 * 2**retry))  # full jitter
            log.warning("scan_retry", attempt_id=attempt_id, error=type(exc).__name__, in_s=round(backoff, 2))
            time.sleep(backoff)
        except Exception as exc:
            # a bug, not bad luck: retrying will not help. The type only -- an exception's text
            # may carry personal data (an SQL parameter, an OCR read); see ocr_service.errors.
            log.error("scan_crashed", attempt_id=attempt_id, error=type(exc).__name__)
            return


def shutdown(wait: bool = True) -> None:
    """Stop the in-process pool (serve shutdown). Scans not yet started are recovered on the next start."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=not wait)


def drain(timeout: float | None = None) -> bool:
    """Wait until every in-process scan submitted so far has finished (tests, graceful stop)."""
    with _pool_lock:
        pending = list(_pending)
    _done, not_done = wait_for_futures(pending, timeout)
    return not not_done


# --------------------------------------------------------------------------- recovery


def requeue_stale(session: Session, older_than_s: float, settings: Settings | None = None) -> list[str]:
    """Submit again every attempt still ``queued``/``running`` that was created over ``older_than_s`` ago.

    Safe to run any time and from several processes: a duplicate submission finds the attempt
    done (or waits on its row lock) and returns. Stops at the first ``BrokerUnavailable`` (the
    next sweep will try again) and returns the ids it submitted.
    """
    from ocr_service.verification.models import Attempt, AttemptStatus

    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    ids = session.scalars(
        select(Attempt.id)
        .where(Attempt.status.in_([AttemptStatus(s) for s in UNFINISHED_STATUSES]), Attempt.created_at <= cutoff)
        .order_by(Attempt.created_at)
    ).all()
    submitted: list[str] = []
    for attempt_id in ids:
        try:
            submit(attempt_id, settings)
        except BrokerUnavailable:
            break
        submitted.append(attempt_id)
    if ids:
        log.info("requeued_stale_attempts", found=len(ids), submitted=len(submitted), older_than_s=older_than_s)
    return submitted


class RequeueSweeper:
    """A daemon thread that runs ``requeue_stale`` now and then every ``interval_s``.

    Started by every Celery worker (``worker_ready``) and by ``serve``. The first pass at
    start is the crash recovery: embedded, everything unfinished is re-submitted (this process
    is the only scanner, so nothing else can be running it); with a broker only attempts older
    than the visibility timeout (younger ones may still sit in the queue). With a broker, a
    Redis lock lets one process per interval sweep for the whole cluster.
    """

    LOCK_KEY = "ocr:requeue_stale:lock"

    def __init__(self, settings: Settings, interval_s: float | None = None) -> None:
        self.settings = settings
        # Sweeping faster than the visibility timeout only re-submits what the broker is about to
        # redeliver itself; a minute is the floor so a short test timeout does not spin.
        self.interval_s = interval_s or max(settings.celery_visibility_timeout, 60)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RequeueSweeper:
        self._thread = threading.Thread(target=self._run, name="requeue-stale", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self, first: bool = False) -> list[str]:
        from ocr_service.db import session_scope

        broker = bool(self.settings.broker_url)
        if broker and not self._take_cluster_lock():
            return []
        older_than = self.settings.celery_visibility_timeout if broker or not first else 0
        with session_scope() as session:
            return requeue_stale(session, older_than, self.settings)

    def _take_cluster_lock(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=3)
        try:
            key = self.settings.broker_key_prefix + self.LOCK_KEY
            return bool(client.set(key, "1", nx=True, ex=max(1, int(self.interval_s) - 1)))
        finally:
            client.close()

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self.run_once(first)
            except Exception as exc:  # the next round tries again; never take the host process down
                log.warning("requeue_stale_failed", error=type(exc).__name__)
            first = False
            self._stop.wait(self.interval_s)


def start_requeue_sweeper(settings: Settings | None = None) -> RequeueSweeper:
    """Start crash recovery for this process (serve start-up, worker start-up); ``stop()`` it on shutdown."""
    return RequeueSweeper(settings or get_settings()).start()
