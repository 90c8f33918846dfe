"""A worker killed mid-task: the scan is redelivered to a new worker and recorded exactly once.

The upload goes through the HTTP API (``create_app`` with a broker set), so the route's own
``dispatch.submit`` queues the scan. The first worker is slowed down with the fault-injection
hook ``OCR_TEST_SCAN_DELAY_S`` (``verification/tasks.py``), and SIGKILLed with its whole process
group while the task is in flight, the way an OOM kill or a lost VM ends a worker: nothing is
acknowledged and nothing is handed back. With ``acks_late`` the message stays in Redis's
unacknowledged set; after the visibility timeout (5 s here) the next worker restores and runs
it. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from ocr_service.auth import create_api_key
from ocr_service.db import session_scope
from ocr_service.verification.models import (
    Attempt,
    AttemptStatus,
    StatusEvent,
    Verification,
    VerificationStatus,
    VerifiedIdentity,
)
from pipelines.reasons import Decision
from tests.conftest import SAMPLE_SET
from tests.ocr_service.worker_process import (
    WorkerProcess,
    installed,
    redis_namespace,
    sample_label,
    service_settings,
    wait_attempt_finished,
    worker_env,
)

REDIS_DB = 10
VISIBILITY_TIMEOUT_S = 5
SAMPLE = "0001_front_clean.jpg"


def test_a_scan_whose_worker_is_killed_mid_task_is_redelivered_and_recorded_exactly_once(
    database_url: str, tmp_path: Path
):
    from ocr_service.app import create_app

    started = time.monotonic()
    label = sample_label(SAMPLE)
    with (
        redis_namespace(REDIS_DB) as broker,
        installed(
            service_settings(
                tmp_path,
                database_url,
                broker,
                celery_visibility_timeout=VISIBILITY_TIMEOUT_S,
                result_wait_seconds=0.5,
            )
        ) as settings,
    ):
        with session_scope() as session:
            _key, secret = create_api_key(session, "crash test", ["client"])
        # slow enough to be killed mid-task; the new worker gets no delay
        doomed = WorkerProcess(worker_env(settings, OCR_TEST_SCAN_DELAY_S="60"), tmp_path / "worker1.log")
        survivor = None
        try:
            with TestClient(create_app(settings)) as api:
                headers = {"Authorization": f"Bearer {secret}"}
                created = api.post(
                    "/v1/verifications",
                    headers=headers,
                    json={
                        "subject_id": "crash-subject",
                        "claim": {"name": label["claim"]["name"], "document_number": label["claim"]["id_number"]},
                    },
                )
                assert created.status_code == 201, created.text
                verification_id = created.json()["id"]
                uploaded = api.post(
                    f"/v1/verifications/{verification_id}/images",
                    headers=headers,
                    files={"image": (SAMPLE, (SAMPLE_SET / SAMPLE).read_bytes(), "image/jpeg")},
                    data={"side": "front"},
                )
                assert uploaded.status_code == 202, uploaded.text
                attempt_id = uploaded.json()["attempt_id"]

                doomed.wait_for(rf'"attempt_id": "{attempt_id}".*"scan_task_started"', timeout=30)
                doomed.kill()
                with session_scope() as session:
                    assert session.get(Attempt, attempt_id).status == AttemptStatus.QUEUED

                survivor = WorkerProcess(worker_env(settings), tmp_path / "worker2.log")
                wait_attempt_finished(attempt_id, timeout=40)
                status = api.get(f"/v1/verifications/{verification_id}", headers=headers).json()
        finally:
            doomed.stop()
            if survivor is not None:
                survivor.stop()

        # two deliveries: the killed one and the redelivery (flagged by the broker), one finish
        first = [e for e in doomed.events("scan_task_started") if e["attempt_id"] == attempt_id]
        second = [e for e in survivor.events("scan_task_started") if e["attempt_id"] == attempt_id]
        assert [e["redelivered"] for e in first + second] == [False, True]
        assert first[0]["task_id"] == second[0]["task_id"]  # the same message, not a resubmission
        assert doomed.events("scan_task_finished") == []
        assert [e["attempt_id"] for e in survivor.events("scan_task_finished")] == [attempt_id]

        with session_scope() as session:
            attempts = session.scalars(select(Attempt).where(Attempt.verification_id == verification_id)).all()
            assert len(attempts) == 1
            (attempt,) = attempts
            assert attempt.status == AttemptStatus.DONE and attempt.decision == Decision.ACCEPT
            assert attempt.result is not None
            # the killed delivery died before the scan began, so one scan ran (and was counted)
            assert attempt.task_attempts == 1
            assert session.get(Verification, verification_id).status == VerificationStatus.VERIFIED
            events = session.scalars(
                select(StatusEvent).where(StatusEvent.verification_id == verification_id).order_by(StatusEvent.id)
            ).all()
            assert [(e.from_status, e.to_status) for e in events] == [
                (None, VerificationStatus.AWAITING_IMAGES),
                (VerificationStatus.AWAITING_IMAGES, VerificationStatus.PROCESSING),
                (VerificationStatus.PROCESSING, VerificationStatus.VERIFIED),
            ]
            identities = session.scalars(
                select(VerifiedIdentity).where(VerifiedIdentity.verification_id == verification_id)
            ).all()
            assert len(identities) == 1
        assert status["status"] == "verified"
        assert [a["decision"] for a in status["attempts"]] == ["accept"]
    assert time.monotonic() - started < 60


def test_a_scan_longer_than_the_visibility_timeout_is_not_redelivered_while_its_worker_lives(
    database_url: str, tmp_path: Path
):
    """The worker's heartbeat (``celery_app.UnackedHeartbeat``) keeps refreshing the message it holds."""
    from ocr_service.queue import dispatch
    from tests.ocr_service.worker_process import upload_sample

    visibility_s = 2
    with (
        redis_namespace(REDIS_DB) as broker,
        installed(service_settings(tmp_path, database_url, broker, celery_visibility_timeout=visibility_s)) as settings,
    ):
        # both slow: whichever takes the scan holds it 5 timeouts long while the other one idles
        slow_env = worker_env(settings, OCR_TEST_SCAN_DELAY_S=str(5 * visibility_s))
        slow = WorkerProcess(slow_env, tmp_path / "slow.log")
        idle = WorkerProcess(slow_env, tmp_path / "idle.log")
        try:
            slow.wait_for(r"ready\.", timeout=60)
            idle.wait_for(r"ready\.", timeout=60)
            upload = upload_sample(settings)
            dispatch.submit(upload.attempt_id, settings)
            wait_attempt_finished(upload.attempt_id, timeout=90)
        finally:
            slow.stop()
            idle.stop()
        starts = [
            (name, e["redelivered"])
            for name, worker in (("slow", slow), ("idle", idle))
            for e in worker.events("scan_task_started")
            if e["attempt_id"] == upload.attempt_id
        ]
        assert starts in ([("slow", False)], [("idle", False)])
        with session_scope() as session:
            assert session.get(Attempt, upload.attempt_id).task_attempts == 1
