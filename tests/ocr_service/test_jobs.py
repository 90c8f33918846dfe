"""ocr_service.jobs: the Celery app, ``dispatch.submit`` on a real worker and in-process, and crash recovery.

The broker is the machine's Redis (database 9, flushed per test); the database is SQLite and
PostgreSQL (the ``database_url`` fixture runs each test on both).
"""

from __future__ import annotations

import base64
import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from ocr_service.db import session_scope, utcnow
from ocr_service.queue import dispatch
from ocr_service.queue.celery_app import BATCH_QUEUE, LIVE_QUEUE, make_celery
from ocr_service.verification.models import Attempt, AttemptStatus, StatusEvent, Verification, VerificationStatus
from pipelines.reasons import Decision
from tests.ocr_service.worker_process import (
    WorkerProcess,
    installed,
    redis_namespace,
    service_settings,
    upload_sample,
    wait_attempt_finished,
    worker_env,
)

REDIS_DB = 9


@pytest.fixture
def broker():
    """Redis database 9, under a key prefix of this test's own."""
    with redis_namespace(REDIS_DB) as namespace:
        yield namespace


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def attempt_row(attempt_id: str) -> Attempt:
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        session.expunge(attempt)
        return attempt


def assert_scanned_once(upload) -> None:
    """The attempt is done with a decision, the case verified, and exactly one scan transition recorded."""
    with session_scope() as session:
        attempt = session.get(Attempt, upload.attempt_id)
        verification = session.get(Verification, upload.verification_id)
        assert attempt.status == AttemptStatus.DONE
        assert attempt.decision == Decision.ACCEPT, attempt.reasons
        assert attempt.result is not None and attempt.finished_at is not None
        assert attempt.task_attempts == 1
        assert verification.status == VerificationStatus.VERIFIED
        to_verified = session.scalars(
            select(StatusEvent).where(
                StatusEvent.verification_id == upload.verification_id,
                StatusEvent.to_status == VerificationStatus.VERIFIED,
            )
        ).all()
        assert len(to_verified) == 1


# --- the Celery app ------------------------------------------------------------------------------


def test_the_celery_app_acks_late_routes_scans_to_live_and_speaks_json_only(tmp_path: Path):
    settings = service_settings(tmp_path, "", broker_url="redis://127.0.0.1:6379/9", celery_visibility_timeout=42)
    app = make_celery(settings)
    conf = app.conf
    assert {q.name for q in conf.task_queues} == {LIVE_QUEUE, BATCH_QUEUE}
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 42
    assert conf.broker_url == conf.result_backend == settings.broker_url
    assert conf.accept_content == ["json"] and conf.task_serializer == conf.result_serializer == "json"
    route = app.amqp.router.route({}, "ocr_service.verification.tasks.scan_attempt")
    assert route["queue"].name == LIVE_QUEUE


def test_make_celery_refuses_settings_without_a_broker(tmp_path: Path):
    with pytest.raises(ValueError, match="OCR_BROKER_URL"):
        make_celery(service_settings(tmp_path, ""))


# --- a real worker -------------------------------------------------------------------------------


def test_a_scan_submitted_through_dispatch_runs_in_a_worker_process_and_ends_done(
    database_url: str, tmp_path: Path, broker
):
    started = time.monotonic()
    settings = service_settings(tmp_path, database_url, broker)
    with installed(settings):
        worker = WorkerProcess(worker_env(settings), tmp_path / "worker.log")
        try:
            upload = upload_sample(settings)
            dispatch.submit(upload.attempt_id, settings)
            wait_attempt_finished(upload.attempt_id, timeout=45)
            assert_scanned_once(upload)
            assert [e["attempt_id"] for e in worker.events("scan_task_finished")] == [upload.attempt_id]
            # the OCR models were loaded in the pool process at start, not per task
            assert len(worker.events("worker_process_ready")) == 1
        finally:
            worker.stop()
    assert time.monotonic() - started < 60


def test_the_in_process_pool_runs_the_same_scan_without_a_broker(database_url: str, tmp_path: Path):
    settings = service_settings(tmp_path, database_url)
    with installed(settings):
        upload = upload_sample(settings)
        dispatch.submit(upload.attempt_id, settings)
        assert dispatch.drain(timeout=45)
        assert_scanned_once(upload)
        # a second submission of a finished attempt is a no-op
        dispatch.submit(upload.attempt_id, settings)
        assert dispatch.drain(timeout=10)
        assert_scanned_once(upload)


# --- recovery ------------------------------------------------------------------------------------


def age_attempt(attempt_id: str, seconds: float) -> None:
    with session_scope() as session:
        session.execute(
            update(Attempt).where(Attempt.id == attempt_id).values(created_at=utcnow() - timedelta(seconds=seconds))
        )


def test_requeue_stale_resubmits_an_attempt_stuck_in_queued_and_leaves_young_ones(database_url: str, tmp_path: Path):
    settings = service_settings(tmp_path, database_url)
    with installed(settings):
        stuck = upload_sample(settings)  # stored as queued, never submitted: the server died here
        young = upload_sample(settings)
        age_attempt(stuck.attempt_id, 600)
        with session_scope() as session:
            assert dispatch.requeue_stale(session, older_than_s=300, settings=settings) == [stuck.attempt_id]
        assert dispatch.drain(timeout=45)
        assert_scanned_once(stuck)
        assert attempt_row(young.attempt_id).status == AttemptStatus.QUEUED


def test_requeue_stale_puts_the_attempt_back_on_the_live_queue_of_the_broker(tmp_path: Path, broker):
    import redis

    settings = service_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", broker)
    with installed(settings):
        stuck = upload_sample(settings)
        age_attempt(stuck.attempt_id, 600)
        with session_scope() as session:
            assert dispatch.requeue_stale(session, older_than_s=300, settings=settings) == [stuck.attempt_id]
    client = redis.Redis.from_url(broker.url)
    try:
        messages = client.lrange(broker.key_prefix + LIVE_QUEUE, 0, -1)
    finally:
        client.close()
    assert len(messages) == 1
    message = json.loads(messages[0])  # kombu's Redis envelope; the task body is base64 JSON
    assert message["headers"]["task"] == "ocr_service.verification.tasks.scan_attempt"
    assert message["content-type"] == "application/json"
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == [stuck.attempt_id]


def test_the_embedded_sweeper_recovers_everything_unfinished_at_start(tmp_path: Path):
    settings = service_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}")
    with installed(settings):
        upload = upload_sample(settings)  # queued by a server that crashed before submitting
        sweeper = dispatch.start_requeue_sweeper(settings)
        try:
            wait_attempt_finished(upload.attempt_id, timeout=45)
        finally:
            sweeper.stop()
        assert dispatch.drain(timeout=10)
        assert_scanned_once(upload)


def test_submit_raises_broker_unavailable_when_the_broker_port_is_closed(tmp_path: Path):
    settings = service_settings(
        tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", broker_url=f"redis://127.0.0.1:{closed_port()}/0"
    )
    with installed(settings):
        upload = upload_sample(settings)
        started = time.monotonic()
        with pytest.raises(dispatch.BrokerUnavailable):
            dispatch.submit(upload.attempt_id, settings)
        assert time.monotonic() - started < 10
        # the photo and the attempt stay stored, queued for requeue_stale
        assert attempt_row(upload.attempt_id).status == AttemptStatus.QUEUED
        age_attempt(upload.attempt_id, 600)
        with session_scope() as session:
            assert dispatch.requeue_stale(session, older_than_s=300, settings=settings) == []


def test_the_worker_command_needs_a_broker_url(tmp_path: Path, monkeypatch):
    from ocr_service import config
    from ocr_service.cli import app

    config.set_settings(service_settings(tmp_path, ""))
    try:
        result = CliRunner().invoke(app, ["worker"])
    finally:
        config.set_settings(None)
    assert result.exit_code != 0
    assert "OCR_BROKER_URL" in result.output


def test_worker_requeue_stale_submits_stuck_attempts_to_the_broker_and_exits(tmp_path: Path, broker):
    import redis

    from ocr_service.cli import app

    settings = service_settings(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ocr.db'}", broker)
    with installed(settings):
        stuck = upload_sample(settings)
        age_attempt(stuck.attempt_id, settings.celery_visibility_timeout + 60)
        result = CliRunner().invoke(app, ["worker", "--requeue-stale"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"requeued": 1, "attempt_ids": [stuck.attempt_id]}
    client = redis.Redis.from_url(broker.url)
    try:
        assert client.llen(broker.key_prefix + LIVE_QUEUE) == 1
    finally:
        client.close()


def test_the_module_level_celery_app_is_built_from_the_environment_on_first_use(tmp_path: Path):
    from ocr_service import config
    from ocr_service.queue import celery_app as module

    config.set_settings(service_settings(tmp_path, "", broker_url="redis://127.0.0.1:6379/9"))
    try:
        app = module.celery_app
        assert app.conf.broker_url == "redis://127.0.0.1:6379/9"
        assert module.celery_app is app
    finally:
        config.set_settings(None)


# --- the task's retry policy (run eagerly: no broker, no worker) ------------------------------------


@pytest.fixture
def eager_scan_task(tmp_path: Path, monkeypatch):
    """``scan_attempt`` of an app on a dummy broker, and a list that records each process_attempt call."""
    from ocr_service.queue.celery_app import get_celery_app
    from ocr_service.verification import service
    from ocr_service.verification.tasks import SCAN_TASK

    app = get_celery_app(service_settings(tmp_path, "", broker_url=f"redis://127.0.0.1:{closed_port()}/0"))
    calls: list[str] = []
    outcomes: list[BaseException | None] = []

    def fake_process_attempt(attempt_id: str) -> None:
        calls.append(attempt_id)
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(service, "process_attempt", fake_process_attempt)
    monkeypatch.setattr(dispatch, "time", FakeClock())
    return app.tasks[SCAN_TASK], calls, outcomes


class FakeClock:
    """``dispatch.time`` for the retry tests: ``sleep`` advances ``monotonic`` and is recorded, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_scan_task_retries_transient_database_and_redis_errors(eager_scan_task):
    import redis
    import sqlalchemy.exc

    task, calls, outcomes = eager_scan_task
    outcomes += [
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        redis.exceptions.ConnectionError("Connection refused"),
    ]
    result = task.apply(args=["attempt-1"])
    assert result.successful()
    assert calls == ["attempt-1"] * 3


def test_the_scan_task_retries_with_exponential_back_off_for_the_whole_window_then_gives_up(eager_scan_task):
    import sqlalchemy.exc

    from ocr_service.verification.tasks import ScanTaskCrashed

    task, calls, outcomes = eager_scan_task
    outcomes += [sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("down")) for _ in range(500)]
    result = task.apply(args=["attempt-1"])
    assert result.failed() and isinstance(result.result, ScanTaskCrashed)
    sleeps = dispatch.time.sleeps
    # a 2-minute outage is ridden out (the default window is 300 s) ...
    assert 120 < sum(sleeps) <= 300
    # ... waiting longer each time at first, and never more than 10 s: work goes on within 10 s of the end
    assert sleeps[0] <= 0.5 and sleeps[4] > sleeps[0] and max(sleeps) <= dispatch.RETRY_MAX_S
    assert len(calls) == len(sleeps) + 1


def test_the_back_off_doubles_up_to_its_cap_and_a_zero_window_means_one_try():
    import redis

    for retry, ceiling in enumerate([0.5, 1, 2, 4, 8, 10, 10, 10]):
        for _ in range(20):
            assert ceiling / 2 <= dispatch.backoff_s(retry) <= ceiling
    calls = []

    def broker_down() -> None:
        calls.append(1)
        raise redis.exceptions.ConnectionError("Connection refused")

    with pytest.raises(redis.exceptions.ConnectionError):
        dispatch.retry_transient(broker_down, window_s=0)
    assert calls == [1]


def test_the_scan_task_never_retries_a_bug_and_reports_only_its_type(eager_scan_task):
    from ocr_service.verification.tasks import ScanTaskCrashed

    task, calls, outcomes = eager_scan_task
    outcomes.append(ValueError("张三 142536197609041151"))
    result = task.apply(args=["attempt-1"])
    assert result.failed() and isinstance(result.result, ScanTaskCrashed)
    assert str(result.result) == "ValueError"
    assert calls == ["attempt-1"]


def test_a_decided_scan_is_one_call_and_no_retry(eager_scan_task):
    task, calls, _outcomes = eager_scan_task
    assert task.apply(args=["attempt-1"]).successful()
    assert calls == ["attempt-1"]
