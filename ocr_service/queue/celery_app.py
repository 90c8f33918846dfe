"""The Celery app, built from Settings: Redis broker and result backend, queues ``live`` and ``batch``.

Delivery is at-least-once: a task is acknowledged only after it finished (``acks_late``), a
message whose worker died is handed out again (``task_reject_on_worker_lost`` when the pool
child dies; the Redis visibility timeout when the whole worker dies), and each worker holds at
most one unacknowledged message per process (``worker_prefetch_multiplier=1``), so a killed
worker strands at most its running scans. ``verification.service.process_attempt`` is
idempotent, which makes redelivery safe.

The visibility timeout is short (30 s) and the same for every queue: each worker refreshes
the messages it holds (``UnackedHeartbeat``), so a live scan of seconds and a batch chunk of
minutes alike stay with their worker while it lives, and come back within about 36 s of its
death. Redis should run with AOF (``--appendonly yes --appendfsync everysec``): a restart then
keeps the queues; without it ``dispatch.RequeueSweeper`` re-publishes the lost scans.

``celery -A ocr_service.queue.celery_app:celery_app worker`` works too; ``ocr-service worker``
is the supported way to start one.
"""

from __future__ import annotations

import threading
import time
from threading import Lock
from typing import Any

import structlog
from celery import Celery
from kombu import Exchange, Queue

from ocr_service.config import Settings, get_settings

log = structlog.get_logger(__name__)

LIVE_QUEUE = "live"  # applicant uploads: someone is waiting for the answer
BATCH_QUEUE = "batch"  # re-verification and other bulk work; never delays a live scan
TASK_MODULES = ["ocr_service.verification.tasks", "ocr_service.jobs.reverify_tasks"]
# Registered task names. They are the names of the modules the tasks were first defined in and
# stay so, whatever moves: a message queued by an older deploy still finds its task. Producers
# send by name (``send_task``), so this package never imports the task modules.
SCAN_TASK = "ocr_service.verification.tasks.scan_attempt"
CHUNK_TASK = "ocr_service.jobs.reverify_tasks.run_reverify_chunk"

_apps: dict[tuple[str, int, str], Celery] = {}
_apps_lock = Lock()


def _restore_interval(visibility_timeout: int) -> int:
    # Kombu sweeps the unacked set for messages older than the visibility timeout every
    # interval * throttle seconds (100 s by default). Sweep a few times per timeout so a message
    # stranded by a killed worker comes back within about 1.2x the timeout, not minutes later.
    return max(1, min(60, visibility_timeout // 5))


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings.broker_url`` (broker and result backend alike)."""
    if not settings.broker_url:
        raise ValueError("make_celery needs OCR_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("ocr_service", broker=settings.broker_url, backend=settings.broker_url, include=TASK_MODULES)
    exchange = Exchange("ocr", type="direct")
    transport_options: dict[str, Any] = {
        "visibility_timeout": settings.celery_visibility_timeout,
        "unacked_restore_interval": _restore_interval(settings.celery_visibility_timeout),
        "unacked_restore_throttle": 1,
        # A dead broker fails a submit in seconds (-> 503 queue_unavailable), not a hung request.
        "socket_connect_timeout": 3,
    }
    if settings.broker_key_prefix:
        transport_options["global_keyprefix"] = settings.broker_key_prefix
    app.conf.update(
        task_queues=[
            Queue(LIVE_QUEUE, exchange, routing_key=LIVE_QUEUE),
            Queue(BATCH_QUEUE, exchange, routing_key=BATCH_QUEUE),
        ],
        task_default_queue=LIVE_QUEUE,
        task_default_exchange="ocr",
        task_default_routing_key=LIVE_QUEUE,
        task_routes={
            "ocr_service.verification.tasks.scan_*": {"queue": LIVE_QUEUE, "routing_key": LIVE_QUEUE},
            "ocr_service.jobs.reverify_tasks.*": {"queue": BATCH_QUEUE, "routing_key": BATCH_QUEUE},
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options,
        result_backend_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        redis_socket_connect_timeout=3,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits out any broker outage, never exits
        # Publishing retries briefly, then the caller gets BrokerUnavailable; the attempt row
        # stays queued and the sweeper re-publishes it as soon as the broker answers again.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=3600,
        task_track_started=True,
        # Children load the OCR models in worker_process_init (about 1 s; more on a cold disk);
        # the default 4 s budget would have the pool kill them mid-load on a slow machine.
        worker_proc_alive_timeout=60.0,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
        enable_utc=True,
    )
    return app


UNACKED_INDEX_KEY = "unacked_index"  # kombu's Redis transport: delivery tag -> time handed out


class UnackedHeartbeat:
    """A worker-side thread that keeps the messages this worker holds from being redelivered.

    Kombu's Redis transport records when it handed out each unacknowledged message (a sorted set,
    ``unacked_index``) and any worker puts back the ones older than the visibility timeout. Every
    third of the timeout this thread sets that time to now for every task this worker has
    reserved or is running, so only a dead worker's messages age. Started in the worker's main
    process (``verification.tasks``), where Celery tracks the requests of all its pool children.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval_s = max(0.5, settings.celery_visibility_timeout / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="unacked-heartbeat", daemon=True)

    def start(self) -> UnackedHeartbeat:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @staticmethod
    def held_delivery_tags() -> list[str]:
        from celery.worker import state

        for _ in range(5):  # the consumer thread may change the sets while they are read
            try:
                requests = list(state.reserved_requests) + list(state.active_requests)
                break
            except RuntimeError:
                continue
        else:
            return []
        tags = []
        for request in requests:
            message = getattr(request, "message", None) or getattr(request, "_message", None)
            tag = getattr(message, "delivery_tag", None)
            if tag:
                tags.append(str(tag))
        return sorted(set(tags))

    def beat(self) -> int:
        """Refresh the held messages now; returns how many were refreshed."""
        import redis

        tags = self.held_delivery_tags()
        if not tags:
            return 0
        client = redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            key = self.settings.broker_key_prefix + UNACKED_INDEX_KEY
            now = time.time()
            # XX: only touch entries still there (an acked message must not come back)
            return int(client.zadd(key, dict.fromkeys(tags, now), xx=True, ch=True) or 0)
        finally:
            client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception as exc:  # the broker is away: nothing to refresh, try again next beat
                log.warning("unacked_heartbeat_failed", error=type(exc).__name__)


def get_celery_app(settings: Settings | None = None) -> Celery:
    """The process-wide app for these settings, built once and made Celery's default app.

    Being the default app is what makes the ``shared_task`` in ``verification.tasks`` publish
    to this broker.
    """
    settings = settings or get_settings()
    key = (settings.broker_url, settings.celery_visibility_timeout, settings.broker_key_prefix)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            app = make_celery(settings)
            _apps[key] = app
        app.set_default()
        app.set_current()
    return app


def __getattr__(name: str) -> Any:
    # ``celery_app`` is built on first access, from the environment of the process that asks:
    # importing this module (tests, the API process without a broker) never needs a broker URL.
    if name == "celery_app":
        return get_celery_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
