"""``submit(attempt_id)``: run a scan off the request path, on Celery or on an in-process pool.

``submit_chunk(job_id, chunk_no)`` does the same for a re-verification chunk: the ``batch`` queue,
or without a broker a one-thread pool of its own, so a batch never takes the threads an
applicant's upload waits for. Both send their task by name and run, in-process, the function
the owning module registered (``register_inprocess``); the outbox query is registered too
(``register_outbox``), so this module imports nothing from ``verification`` or ``jobs``.

With ``OCR_BROKER_URL`` set the attempt goes to the ``live`` queue of the Celery workers
(``verification.tasks.scan_attempt``); without it a process-wide thread pool of
``settings.inprocess_workers`` threads runs the same ``service.process_attempt``. Both paths run
the same idempotent service function, so an attempt submitted twice is scanned once.

No accepted upload is dropped: the attempt row is committed as ``queued`` before ``submit`` is
called, so the ``attempts`` table is the outbox the API and the sweepers share. An attempt that
never finished (the broker was down, a worker or the embedded server crashed) is submitted
again by ``requeue_stale``: by every worker and API process as soon as the broker answers
after an outage or a restart (``RequeueSweeper`` checks it every ``outbox_poll_seconds``), at
start, every visibility timeout for attempts older than it, and by ``ocr-service worker
--requeue-stale``.

Transient errors (``TRANSIENT_ERRORS``) are retried by ``retry_transient``: exponential
back-off, at most 10 s apart, for ``task_retry_window_seconds`` (300 s), so a task rides out a
database failover or a Redis restart and goes on within seconds of its end.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from datetime import UTC, datetime, timedelta

import redis.exceptions
import sqlalchemy.exc
import structlog
from kombu.exceptions import OperationalError as KombuOperationalError
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
RETRY_FIRST_S = 0.5  # back-off: 0.5, 1, 2, 4, 8, 10, 10 ... s, each times a random 0.5-1 (jitter)
RETRY_MAX_S = 10.0  # so work resumes within 10 s of the database or the broker coming back

# task name -> the function its Celery task wraps, run by the in-process pools (no broker)
_inprocess_runners: dict[str, Callable[..., object]] = {}
# (session, cutoff) -> ids of the attempts still queued/running created at or before the cutoff
_outbox_query: Callable[[Session, datetime], Sequence[str]] | None = None


def register_inprocess(task_name: str, fn: Callable[..., object]) -> None:
    """Run ``fn`` for ``task_name`` when there is no broker (called by the module that owns ``fn``)."""
    _inprocess_runners[task_name] = fn


def register_outbox(query: Callable[[Session, datetime], Sequence[str]]) -> None:
    """The query ``requeue_stale`` reads the outbox (unfinished attempts) with."""
    global _outbox_query
    _outbox_query = query


def _runner(task_name: str) -> Callable[..., object]:
    try:
        return _inprocess_runners[task_name]
    except KeyError:
        raise RuntimeError(f"nothing registered to run {task_name} in-process") from None


def backoff_s(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): exponential, capped, half jittered."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(retry, 16)) * random.uniform(0.5, 1.0)


def retry_transient(fn, *args, window_s: float | None = None, what: str = "task", **log_fields):
    """``fn(*args)``, retried on ``TRANSIENT_ERRORS`` with ``backoff_s`` until ``window_s`` has passed.

    The window (``task_retry_window_seconds``, 300 s) is measured from the first failure, so a
    2-minute outage of the database or Redis is ridden out; past it the last error is raised.
    Retrying in place (not ``Task.retry``) keeps the message unacknowledged -- its heartbeat
    keeps it from being redelivered -- and needs no broker to schedule the next try.
    """
    window = get_settings().task_retry_window_seconds if window_s is None else window_s
    first_failure: float | None = None
    retry = 0
    while True:
        try:
            return fn(*args)
        except TRANSIENT_ERRORS as exc:
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            delay = backoff_s(retry)
            if now - first_failure + delay > window:
                log.error(f"{what}_gave_up", error=type(exc).__name__, retries=retry, **log_fields)
                raise
            log.warning(f"{what}_retry", error=type(exc).__name__, retry=retry, in_s=round(delay, 2), **log_fields)
            retry += 1
            time.sleep(delay)


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

_publish_failed = threading.Event()


def _submit_to_broker(attempt_id: str, settings: Settings) -> None:
    from ocr_service.queue.celery_app import LIVE_QUEUE, SCAN_TASK, get_celery_app

    try:
        # The result is the attempt row, not a Celery result: ignore_result also keeps the
        # producer from subscribing to the result backend, whose reconnect loop would hold a
        # request for 20 s (and then disable the app) when Redis is down.
        get_celery_app(settings).send_task(SCAN_TASK, args=[attempt_id], queue=LIVE_QUEUE, ignore_result=True)
    except (KombuOperationalError, redis.exceptions.RedisError, OSError) as exc:
        log.warning("broker_unavailable", attempt_id=attempt_id, error=type(exc).__name__)
        _publish_failed.set()  # this process's sweeper re-publishes as soon as the broker answers
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
    from ocr_service.queue.celery_app import SCAN_TASK

    try:
        retry_transient(_runner(SCAN_TASK), attempt_id, what="scan", attempt_id=attempt_id)
    except TRANSIENT_ERRORS:
        return  # stays queued/running; the sweeper tries again
    except Exception as exc:
        # a bug, not bad luck: retrying will not help. The type only -- an exception's text
        # may carry personal data (an SQL parameter, an OCR read); see ocr_service.errors.
        log.error("scan_crashed", attempt_id=attempt_id, error=type(exc).__name__)


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


# --------------------------------------------------------------------------- batch chunks


def submit_chunk(job_id: str, chunk_no: int, settings: Settings | None = None) -> None:
    """Queue one re-verification chunk: the ``batch`` queue with a broker, else the in-process batch pool."""
    settings = settings or get_settings()
    if settings.broker_url:
        from ocr_service.queue.celery_app import BATCH_QUEUE, CHUNK_TASK, get_celery_app

        try:
            app = get_celery_app(settings)
            app.send_task(CHUNK_TASK, args=[job_id, chunk_no], queue=BATCH_QUEUE, ignore_result=True)
        except (KombuOperationalError, redis.exceptions.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"the task queue is unavailable ({type(exc).__name__})") from exc
        return
    future = _batch_pool().submit(_run_chunk_inprocess, job_id, chunk_no)
    with _batch_lock:
        _batch_pending.add(future)
    future.add_done_callback(_forget_chunk)


_batch: ThreadPoolExecutor | None = None
_batch_lock = threading.Lock()
_batch_pending: set[Future] = set()


def _batch_pool() -> ThreadPoolExecutor:
    global _batch
    with _batch_lock:
        if _batch is None:
            _batch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reverify")
        return _batch


def _forget_chunk(future: Future) -> None:
    with _batch_lock:
        _batch_pending.discard(future)


def _run_chunk_inprocess(job_id: str, chunk_no: int) -> None:
    from ocr_service.queue.celery_app import CHUNK_TASK

    try:
        retry_transient(_runner(CHUNK_TASK), job_id, chunk_no, what="reverify_chunk", job_id=job_id, chunk_no=chunk_no)
    except Exception as exc:  # the chunk stays pending; `ocr-service jobs resume` runs it again
        log.error("reverify_chunk_crashed", job_id=job_id, chunk_no=chunk_no, error=type(exc).__name__)


def drain_chunks(timeout: float | None = None) -> bool:
    """Wait for every in-process chunk submitted so far (tests, the CLI without a broker)."""
    with _batch_lock:
        pending = list(_batch_pending)
    _done, not_done = wait_for_futures(pending, timeout)
    return not not_done


def shutdown_chunks(wait: bool = True) -> None:
    global _batch
    with _batch_lock:
        pool, _batch = _batch, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=not wait)


# --------------------------------------------------------------------------- recovery


def requeue_stale(session: Session, older_than_s: float, settings: Settings | None = None) -> list[str]:
    """Submit again every attempt still ``queued``/``running`` that was created over ``older_than_s`` ago.

    Safe to run any time and from several processes: a duplicate submission finds the attempt
    done (or waits on its row lock) and returns. Stops at the first ``BrokerUnavailable`` (the
    next sweep will try again) and returns the ids it submitted.
    """
    if _outbox_query is None:
        raise RuntimeError("no outbox registered (import ocr_service.verification.service first)")
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    ids = list(_outbox_query(session, cutoff))
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
    """A daemon thread that re-submits what the outbox (unfinished attempts) holds and the broker lost.

    Started by every Celery worker (``worker_ready``) and by ``serve``. It runs:

    - at start, the crash recovery: embedded, everything unfinished is re-submitted (this process
      is the only scanner, so nothing else can be running it); with a broker, attempts older
      than the visibility timeout (younger ones may still sit in the queue);
    - with a broker, every ``outbox_poll_seconds``: a PING. The first answer after a failed one,
      from a Redis with a new ``run_id`` (restarted: with AOF off its queues are gone), or after
      this process failed to publish, re-publishes every unfinished attempt at once, whatever
      its age. A duplicate message is harmless: ``process_attempt`` finds the attempt done;
    - every visibility timeout, attempts older than it: the backstop for a publish that failed
      in a process that saw no outage.

    With a broker, a Redis lock lets one process per round sweep for the whole cluster.
    """

    LOCK_KEY = "ocr:requeue_stale:lock"
    OUTAGE_LOCK_KEY = "ocr:requeue_stale:outage_lock"

    def __init__(self, settings: Settings, interval_s: float | None = None) -> None:
        self.settings = settings
        # Sweeping faster than the visibility timeout only re-submits what the broker is about to
        # redeliver itself; 30 s is the floor so a short test timeout does not spin.
        self.interval_s = interval_s or max(settings.celery_visibility_timeout, 30)
        self.poll_s = settings.outbox_poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._broker_ok: bool | None = None
        self._run_id: str | None = None

    def start(self) -> RequeueSweeper:
        self._thread = threading.Thread(target=self._run, name="requeue-stale", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self, first: bool = False) -> list[str]:
        broker = bool(self.settings.broker_url)
        if broker and not self._take_cluster_lock(self.LOCK_KEY, self.interval_s):
            return []
        older_than = self.settings.celery_visibility_timeout if broker or not first else 0
        return self._requeue(older_than)

    def check_broker(self) -> list[str]:
        """PING the broker; after an outage, a restart or a failed publish, re-publish every unfinished attempt."""
        run_id = self._broker_run_id()
        was_ok, self._broker_ok = self._broker_ok, run_id is not None
        if run_id is None:
            if was_ok is not False:
                log.warning("broker_down")
            return []
        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        if not (was_ok is False or restarted or _publish_failed.is_set()):
            return []
        if not self._take_cluster_lock(self.OUTAGE_LOCK_KEY, max(2.0, self.poll_s * 2)):
            return []  # another process is re-publishing right now
        _publish_failed.clear()
        log.info("broker_back", restarted=restarted)
        try:
            return self._requeue(0)
        except BrokerUnavailable:
            _publish_failed.set()
            raise

    def _requeue(self, older_than: float) -> list[str]:
        from ocr_service.db import session_scope

        with session_scope() as session:
            ids = requeue_stale(session, older_than, self.settings)
        return ids

    def _redis(self):
        import redis

        return redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2, socket_timeout=2)

    def _broker_run_id(self) -> str | None:
        import redis

        client = self._redis()
        try:
            return str(client.info("server").get("run_id", ""))
        except redis.exceptions.RedisError:
            return None
        finally:
            client.close()

    def _take_cluster_lock(self, key: str, ttl_s: float) -> bool:
        client = self._redis()
        try:
            full_key = self.settings.broker_key_prefix + key
            return bool(client.set(full_key, "1", nx=True, px=max(1000, int(ttl_s * 1000) - 500)))
        finally:
            client.close()

    def _run(self) -> None:
        first = True
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if self.settings.broker_url:
                    self.check_broker()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.interval_s
                    self.run_once(first)
                    first = False
            except Exception as exc:  # the next round tries again; never take the host process down
                log.warning("requeue_stale_failed", error=type(exc).__name__)
            self._stop.wait(self.poll_s if self.settings.broker_url else self.interval_s)


def start_requeue_sweeper(settings: Settings | None = None) -> RequeueSweeper:
    """Start crash recovery for this process (serve start-up, worker start-up); ``stop()`` it on shutdown."""
    return RequeueSweeper(settings or get_settings()).start()
