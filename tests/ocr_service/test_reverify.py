"""Batch re-verification (``ocr_service.jobs.reverify``): jobs over stored cases, exactly once, flagged not revoked.

The queue tests run a real ``ocr-service worker --queues batch`` subprocess on the machine's
Redis (a key prefix of their own) and PostgreSQL (a schema of their own); the others run the
chunks on the in-process batch pool, on SQLite and PostgreSQL. Stored cases are inserted
directly (``reverify_cases.seed_cases``) from a few committed sample photos.
"""

from __future__ import annotations

import csv
import os
import secrets
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from ocr_service.auth import create_api_key
from ocr_service.db import session_scope
from ocr_service.jobs import reverify
from ocr_service.jobs.reverify_models import ItemStatus, JobItem, JobStatus, Outcome
from ocr_service.queue import dispatch
from ocr_service.verification.models import StatusEvent, Verification, VerificationStatus, VerifiedIdentity
from tests.ocr_service.conftest import _postgres_schema_url
from tests.ocr_service.reverify_cases import OLD_PIPELINE_VERSION, seed_cases
from tests.ocr_service.worker_process import WorkerProcess, installed, redis_namespace, service_settings, worker_env

REDIS_DB = 11


@pytest.fixture
def postgres_url(postgres_admin_engine) -> Iterator[str]:
    """A fresh PostgreSQL schema: the backend for tests with several worker processes."""
    schema = f"ocrtest_{os.getpid()}_{secrets.token_hex(4)}"
    with postgres_admin_engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(schema)
    finally:
        with postgres_admin_engine.connect() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def inprocess(database_url: str, tmp_path: Path):
    """Process-wide settings without a broker: chunks run on the in-process batch pool."""
    with installed(service_settings(tmp_path, database_url)) as settings:
        yield settings
        dispatch.drain_chunks(60)


def item_counts(job_id: str) -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            select(JobItem.status, func.count()).where(JobItem.job_id == job_id).group_by(JobItem.status)
        ).all()
    return {status.value: count for status, count in rows}


def progress(job_id: str) -> reverify.JobProgress:
    with session_scope() as session:
        return reverify.get_progress(session, job_id)


def wait_for_finished_cases(job_id: str, at_least: int, timeout: float) -> reverify.JobProgress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = progress(job_id)
        if current.finished_cases >= at_least:
            return current
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not reach {at_least} finished cases in {timeout} s: {progress(job_id)}")


def assert_counted_exactly_once(job: reverify.JobProgress, total: int) -> None:
    assert job.status == JobStatus.COMPLETED
    assert job.total == total and job.done + job.failed == total
    assert job.unchanged + job.changed_decision + job.changed_fields + job.now_failing == job.done
    assert item_counts(job.id) == {ItemStatus.DONE.value: job.done, **({"failed": job.failed} if job.failed else {})}


# --- with a real Celery worker on the batch queue ----------------------------------------------------


def test_a_job_over_200_stored_cases_started_through_the_api_completes_on_a_batch_worker(
    postgres_url: str, tmp_path: Path
):
    from ocr_service.app import create_app

    with redis_namespace(REDIS_DB) as broker, installed(service_settings(tmp_path, postgres_url, broker)) as settings:
        seed_cases(200)
        with session_scope() as session:
            _admin, admin_secret = create_api_key(session, "ops", ["admin"])
            _client, client_secret = create_api_key(session, "app", ["client"])
        worker = WorkerProcess(worker_env(settings), tmp_path / "batch.log", "--queues", "batch", "--concurrency", "2")
        try:
            with TestClient(create_app(settings)) as api:
                refused = api.post("/v1/jobs/reverify", json={}, headers={"Authorization": f"Bearer {client_secret}"})
                assert refused.status_code == 403
                admin = {"Authorization": f"Bearer {admin_secret}"}
                created = api.post("/v1/jobs/reverify", json={"chunk_size": 25}, headers=admin)
                assert created.status_code == 202, created.text
                job_id = created.json()["id"]
                assert created.json()["total"] == 200
                # generous: 200 scans on one process take minutes when the machine is busy
                finished = reverify.wait_until_finished(job_id, timeout=400)
                assert finished.is_finished, finished
                seen = api.get(f"/v1/jobs/{job_id}", headers=admin).json()
        finally:
            worker.stop()
        assert_counted_exactly_once(finished, 200)
        assert finished.unchanged == 200  # same photos, same models: only the version label moved
        assert seen["status"] == "completed" and seen["done"] == 200 and seen["outcomes"]["unchanged"] == 200
        assert len(worker.events("reverify_chunk_finished")) == 8

        with session_scope() as session:
            files = reverify.write_report(session, job_id, "csv", tmp_path / "report" / "job.csv")
        rows = list(csv.DictReader(files.report.open(encoding="utf-8")))
        assert len(rows) == 200
        assert all("*" in row["number_masked"] and len(row["number_masked"]) == 18 for row in rows)
        assert {(row["old_pipeline_version"], row["outcome"]) for row in rows} == {(OLD_PIPELINE_VERSION, "unchanged")}
        assert files.chart.read_bytes().startswith(b"\x89PNG")


def test_a_job_whose_worker_is_killed_mid_job_finishes_on_a_new_worker_with_every_case_counted_once(
    postgres_url: str, tmp_path: Path
):
    total = 60
    with (
        redis_namespace(REDIS_DB) as broker,
        installed(service_settings(tmp_path, postgres_url, broker, celery_visibility_timeout=6)) as settings,
    ):
        seed_cases(total)
        with session_scope() as session:
            job = reverify.create_job(session, reverify.Selection(), created_by="test", chunk_size=5)
            assert reverify.start_job(session, job.id) == 12
        doomed = WorkerProcess(worker_env(settings), tmp_path / "doomed.log", "--queues", "batch")
        survivor = None
        try:
            wait_for_finished_cases(job.id, 8, timeout=240)
            doomed.kill()
            at_kill = progress(job.id)
            assert at_kill.status == JobStatus.RUNNING and at_kill.finished_cases < total
            survivor = WorkerProcess(worker_env(settings), tmp_path / "survivor.log", "--queues", "batch")
            finished = reverify.wait_until_finished(job.id, timeout=400)
            assert finished.is_finished, finished
        finally:
            doomed.stop()
            if survivor is not None:
                survivor.stop()
        assert_counted_exactly_once(finished, total)
        # the chunk the killed worker held came back from Redis, and skipped what it had recorded
        started = doomed.events("reverify_chunk_started")
        interrupted = {e["chunk_no"] for e in started} - {
            e["chunk_no"] for e in doomed.events("reverify_chunk_finished")
        }
        # the chunk in flight (none if the kill fell between two chunks); while the doomed worker
        # lived, its heartbeat kept every chunk it ran from being redelivered, however slow
        assert len(interrupted) <= 1
        assert [e["redelivered"] for e in started] == [False] * len(started)
        redelivered = [e["chunk_no"] for e in survivor.events("reverify_chunk_started") if e["redelivered"]]
        assert interrupted <= set(redelivered) and len(redelivered) == len(set(redelivered))
        finished_by_doomed = {e["chunk_no"] for e in doomed.events("reverify_chunk_finished")}
        assert not finished_by_doomed & set(redelivered)
        recorded = sum(
            e["recorded"] for e in doomed.events("reverify_chunk_finished") + survivor.events("reverify_chunk_finished")
        )
        assert recorded < total  # the killed chunk's finished cases were not recorded again
        with session_scope() as session:
            assert (
                session.scalar(select(func.count(func.distinct(JobItem.attempt_id))).where(JobItem.job_id == job.id))
                == total
            )


# --- in-process: cancel, resume, dry run, flagging -------------------------------------------------------


def test_cancel_stops_a_running_job_and_resume_finishes_only_what_is_left(inprocess):
    seed_cases(16)
    with session_scope() as session:
        job = reverify.create_job(session, reverify.Selection(), created_by="test", chunk_size=4)
        reverify.start_job(session, job.id)
    wait_for_finished_cases(job.id, 2, timeout=30)
    with session_scope() as session:
        assert reverify.cancel_job(session, job.id).status == JobStatus.CANCELLED
    dispatch.drain_chunks(30)
    stopped = progress(job.id)
    assert stopped.status == JobStatus.CANCELLED
    assert stopped.finished_cases < 16 - 4  # at most the case in flight finished after the cancel
    time.sleep(0.5)
    assert progress(job.id).finished_cases == stopped.finished_cases
    assert item_counts(job.id)[ItemStatus.PENDING.value] == 16 - stopped.finished_cases

    with session_scope() as session:
        reverify.resume_job(session, job.id)
    dispatch.drain_chunks(60)
    assert_counted_exactly_once(progress(job.id), 16)


def _snapshot(verification_ids: list[str]) -> list[tuple]:
    with session_scope() as session:
        cases = session.execute(
            select(Verification.id, Verification.status, Verification.review_reason, Verification.updated_at)
            .where(Verification.id.in_(verification_ids))
            .order_by(Verification.id)
        ).all()
        identities = session.execute(
            select(VerifiedIdentity.subject_id, VerifiedIdentity.flagged, VerifiedIdentity.flag_reason).order_by(
                VerifiedIdentity.subject_id
            )
        ).all()
        events = session.scalar(select(func.count(StatusEvent.id)))
    return [*cases, *identities, events]


def test_a_dry_run_reports_what_would_change_and_changes_nothing(inprocess):
    seeded = seed_cases(4, failing=2)
    before = _snapshot(seeded.verification_ids)
    with session_scope() as session:
        job = reverify.create_job(session, reverify.Selection(), created_by="test", dry_run=True)
        reverify.start_job(session, job.id)
    dispatch.drain_chunks(60)
    finished = progress(job.id)
    assert_counted_exactly_once(finished, 4)
    assert (finished.now_failing, finished.unchanged) == (2, 2)
    assert _snapshot(seeded.verification_ids) == before
    with session_scope() as session:
        actions = session.scalars(select(JobItem.action).where(JobItem.outcome == Outcome.NOW_FAILING)).all()
    assert actions == ["dry_run", "dry_run"]


@pytest.fixture
def review_and_declaration_recorders(monkeypatch) -> dict[str, list]:
    """Stand-ins for ``review.service.open_case`` and ``declaration.service.flag_declarations_for_identity``."""
    calls: dict[str, list] = {"open_case": [], "flag_declarations": []}
    review = types.ModuleType("ocr_service.review.service")
    review.open_case = lambda session, verification_id, origin, reasons: calls["open_case"].append(
        (verification_id, origin, reasons)
    )
    declaration = types.ModuleType("ocr_service.declaration.service")
    declaration.flag_declarations_for_identity = lambda session, subject_id, client_key_id, reason: calls[
        "flag_declarations"
    ].append((subject_id, client_key_id))
    monkeypatch.setitem(sys.modules, "ocr_service.review.service", review)
    monkeypatch.setitem(sys.modules, "ocr_service.declaration.service", declaration)
    return calls


def test_a_verified_case_that_no_longer_passes_flags_the_identity_and_opens_a_review_case(
    inprocess, review_and_declaration_recorders
):
    seeded = seed_cases(3, failing=1)
    (failing_id,) = seeded.failing_verification_ids
    with session_scope() as session:
        job = reverify.create_job(session, reverify.Selection(), created_by="test")
        reverify.start_job(session, job.id)
    dispatch.drain_chunks(60)
    finished = progress(job.id)
    assert_counted_exactly_once(finished, 3)
    assert (finished.now_failing, finished.unchanged) == (1, 2)

    (opened,) = review_and_declaration_recorders["open_case"]
    assert opened[0] == failing_id and opened[1] == "reverification_failed"
    assert opened[2][0] == "reverification_failed" and len(opened[2]) > 1  # plus today's scan reasons
    with session_scope() as session:
        failing = session.get(Verification, failing_id)
        identities = {i.verification_id: i for i in session.scalars(select(VerifiedIdentity)).all()}
        # nothing is revoked: the case stays verified, the identity stays, flagged for a person
        assert failing.status == VerificationStatus.VERIFIED
        assert identities[failing_id].flagged and "re-verification job" in identities[failing_id].flag_reason
        assert [v for v, i in identities.items() if i.flagged] == [failing_id]
    assert review_and_declaration_recorders["flag_declarations"] == [(failing.subject_id, seeded.client_key_id)]


def test_without_the_review_module_a_failing_case_is_marked_for_review_on_its_history(inprocess, monkeypatch):
    monkeypatch.setitem(sys.modules, "ocr_service.review.service", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "ocr_service.declaration.service", None)
    seeded = seed_cases(1, failing=1)
    with session_scope() as session:
        job = reverify.create_job(session, reverify.Selection(), created_by="test")
        reverify.start_job(session, job.id)
    dispatch.drain_chunks(60)
    assert progress(job.id).now_failing == 1
    with session_scope() as session:
        verification = session.get(Verification, seeded.verification_ids[0])
        assert verification.review_reason == "reverification_failed"
        event = session.scalars(select(StatusEvent).where(StatusEvent.verification_id == verification.id)).one()
        assert event.reason == "reverification_failed" and event.actor == f"job:{job.id}"


def test_the_selection_filters_by_region_date_and_status(inprocess):
    from datetime import timedelta

    from ocr_service.db import utcnow

    old = seed_cases(2, created_at=utcnow() - timedelta(days=10))  # 0001 (Shanxi, 14...) and 0002 (Shaanxi, 61...)
    new = seed_cases(2)
    with session_scope() as session:
        everything = reverify.select_cases(session, reverify.Selection())
        assert set(everything) == set(old.attempt_ids + new.attempt_ids)
        assert reverify.select_cases(session, reverify.Selection(region="14")) == [
            old.attempt_ids[0],
            new.attempt_ids[0],
        ]
        today = utcnow().date()
        assert set(reverify.select_cases(session, reverify.Selection(since=today - timedelta(days=1)))) == set(
            new.attempt_ids
        )
        assert set(reverify.select_cases(session, reverify.Selection(until=today - timedelta(days=5)))) == set(
            old.attempt_ids
        )
        assert reverify.select_cases(session, reverify.Selection(status=VerificationStatus.REJECTED)) == []
        assert reverify.select_cases(session, reverify.Selection(method=None, status=VerificationStatus.VERIFIED))


def test_the_cli_runs_a_job_without_a_broker_and_writes_a_masked_report_with_a_chart(cli_settings, tmp_path: Path):
    import json

    from typer.testing import CliRunner

    from ocr_service.cli import app
    from ocr_service.db import get_database

    get_database(cli_settings).upgrade()
    seeded = seed_cases(3, failing=1)
    runner = CliRunner()
    started = runner.invoke(app, ["reverify", "--dry-run", "--chunk-size", "2"])
    assert started.exit_code == 0, started.output
    job = json.loads(started.stdout.strip().splitlines()[-1])
    assert job["status"] == "completed" and job["done"] == 3 and job["outcomes"]["now_failing"] == 1

    listed = runner.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0 and job["id"] in listed.stdout

    out = tmp_path / "reports" / "job.json"
    reported = runner.invoke(app, ["jobs", "report", job["id"], "--format", "json", "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    assert "now_failing" in reported.stdout and OLD_PIPELINE_VERSION in reported.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert len(document["cases"]) == 3 and document["summary"]["outcomes"] == {"unchanged": 2, "now_failing": 1}
    assert all(len(case["number_masked"]) == 18 and "*" in case["number_masked"] for case in document["cases"])
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    with session_scope() as session:  # a dry run: nothing flagged
        assert not any(i.flagged for i in session.scalars(select(VerifiedIdentity)).all())
    assert seeded.failing_verification_ids
