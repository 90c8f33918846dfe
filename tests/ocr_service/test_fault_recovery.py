"""Fast fault-injection cases (issue 13): a killed worker, a restarted Redis, a cut database; default timings.

Each test starts real components -- ``ocr-service worker`` subprocesses, a Redis of its own on a
spare port (``fault_tools.RedisServer``), a TCP proxy in front of PostgreSQL that it cuts
(``fault_tools.TcpProxy``) -- and waits on the condition with a bound that is the promise
being tested (60 s for a killed worker's scan, 30 s after the fault ends otherwise), never a
fixed sleep. The settings are the defaults (visibility timeout, retry window, outbox poll), so
these tests fail if a default drifts back to minutes. ``benchmarks/fault_injection.py`` runs
the same faults under load and prints the table.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ocr_service.db import session_scope
from ocr_service.queue import dispatch
from ocr_service.verification.models import Attempt, AttemptStatus
from tests.ocr_service.fault_tools import RedisServer, TcpProxy, wait_until
from tests.ocr_service.test_reverify import postgres_url  # noqa: F401  (fixture)
from tests.ocr_service.worker_process import (
    RedisNamespace,
    WorkerProcess,
    installed,
    redis_namespace,
    service_settings,
    upload_sample,
    worker_env,
)

REDIS_DB = 11
CUT_S = 30  # the 20 s and then some: the old five jittered retries were often spent by then
WORKER_READY = r"ready\."  # Celery's "celery@host ready." once it consumes


def attempt_status(attempt_id: str) -> AttemptStatus:
    with session_scope() as session:
        return session.get(Attempt, attempt_id).status


def attempt_done(attempt_id: str) -> bool:
    return attempt_status(attempt_id) == AttemptStatus.DONE


def test_a_killed_workers_scan_restarts_on_another_worker_within_60_s(postgres_url: str, tmp_path: Path):  # noqa: F811
    with redis_namespace(REDIS_DB) as broker, installed(service_settings(tmp_path, postgres_url, broker)) as settings:
        doomed = WorkerProcess(worker_env(settings, OCR_TEST_SCAN_DELAY_S="600"), tmp_path / "doomed.log")
        survivor = None
        try:
            upload = upload_sample(settings)
            dispatch.submit(upload.attempt_id, settings)
            doomed.wait_for(rf'"attempt_id": "{upload.attempt_id}".*"scan_task_started"', timeout=60)
            survivor = WorkerProcess(worker_env(settings), tmp_path / "survivor.log")
            survivor.wait_for(WORKER_READY, timeout=60)
            doomed.kill()
            took = wait_until(lambda: attempt_done(upload.attempt_id), 60, what="the killed worker's scan done")
        finally:
            doomed.stop()
            if survivor is not None:
                survivor.stop()
        print(f"killed worker: scan finished {took:.1f} s after the kill")
        redelivered = [e for e in survivor.events("scan_task_started") if e["attempt_id"] == upload.attempt_id]
        assert redelivered and redelivered[0]["redelivered"] is True


def test_queued_attempts_are_republished_within_30_s_of_a_restarted_redis_answering(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
):
    redis_server = RedisServer(tmp_path / "redis").start()
    broker = RedisNamespace(redis_server.url, f"ocrfault-{secrets.token_hex(4)}:")
    with installed(service_settings(tmp_path, postgres_url, broker)) as settings:
        worker = WorkerProcess(worker_env(settings), tmp_path / "worker.log")
        try:
            worker.wait_for(WORKER_READY, timeout=60)
            redis_server.kill()
            stranded = []
            for _ in range(3):  # uploads while the broker is down: stored, queued, not published
                upload = upload_sample(settings)
                with pytest.raises(dispatch.BrokerUnavailable):
                    dispatch.submit(upload.attempt_id, settings)
                stranded.append(upload.attempt_id)
            redis_server.start()
            took = wait_until(
                lambda: all(attempt_done(a) for a in stranded), 30, what="stranded scans done after Redis came back"
            )
        finally:
            worker.stop()
            redis_server.stop()
        print(f"redis restart: {len(stranded)} stranded scans finished {took:.1f} s after Redis answered")
        with session_scope() as session:
            scans = session.scalar(select(func.sum(Attempt.task_attempts)).where(Attempt.id.in_(stranded)))
        assert scans == len(stranded)  # each scanned once, however many times it was re-published


def test_a_scan_rides_out_a_30_s_database_cut_and_finishes_within_30_s_of_its_end(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
):
    from sqlalchemy import make_url

    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    with redis_namespace(REDIS_DB) as broker, installed(service_settings(tmp_path, postgres_url, broker)) as settings:
        worker = WorkerProcess(worker_env(settings, OCR_DATABASE_URL=proxied), tmp_path / "worker.log")
        try:
            worker.wait_for(WORKER_READY, timeout=60)
            upload = upload_sample(settings)
            proxy.cut()
            dispatch.submit(upload.attempt_id, settings)
            worker.wait_for(rf'"attempt_id": "{upload.attempt_id}".*"scan_task_started"', timeout=30)
            cut_until = time.monotonic() + CUT_S
            wait_until(lambda: time.monotonic() >= cut_until, CUT_S + 5, interval=0.5, what="the end of the cut")
            assert attempt_status(upload.attempt_id) == AttemptStatus.QUEUED
            proxy.restore()
            took = wait_until(lambda: attempt_done(upload.attempt_id), 30, what="the scan done after the cut")
        finally:
            worker.stop()
            proxy.close()
        print(f"database cut {CUT_S} s: scan finished {took:.1f} s after the database came back")
        with session_scope() as session:
            assert session.get(Attempt, upload.attempt_id).task_attempts == 1
        retries = [e for e in worker.events("scan_task_retry") if e["attempt_id"] == upload.attempt_id]
        assert len(retries) >= 4 and max(e["in_s"] for e in retries) <= 10
