"""Honest answers while a dependency is down (issue 13): 503 with Retry-After, never 500.

The database outage is real: the app talks to PostgreSQL through a TCP proxy this module runs,
and the test cuts it (every open connection closed, new ones refused) and restores it. SQLite's
outage is real too: another connection holds the write lock past the busy timeout. Only the
broker's refusal is simulated (``dispatch.submit`` raising ``BrokerUnavailable``): the in-process
queue these tests use has no broker to stop.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from ocr_service.verification.models import Attempt, AttemptStatus
from tests.ocr_service.api_harness import CLEAN, claim_of
from tests.ocr_service.api_harness import harness as harness
from tests.ocr_service.api_harness import harness_callback_url as harness_callback_url
from tests.ocr_service.api_harness import harness_settings as harness_settings
from tests.ocr_service.conftest import POSTGRES_URL, _postgres_schema_url


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL server until ``cut()``; ``restore()`` listens again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    downstream.close()
                    upstream.close()
                    return
                self._connections += [downstream, upstream]
            for source, target in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    url = make_url(POSTGRES_URL)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield proxy
    proxy.cut()


@pytest.fixture
def database_url(request, postgres_proxy: TcpProxy) -> Iterator[str]:
    """A fresh PostgreSQL schema reached through ``postgres_proxy`` (overrides conftest's pair)."""
    admin = request.getfixturevalue("postgres_admin_engine")
    schema = f"ocrtest_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    direct = make_url(_postgres_schema_url(schema))
    proxied = direct.set(host="127.0.0.1", port=postgres_proxy.port).update_query_dict({"connect_timeout": "3"})
    try:
        yield proxied.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def assert_outage_answer(response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["message_zh"] and any("\u4e00" <= ch <= "\u9fff" for ch in error["message_zh"])


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_database_cut_answers_503_with_retry_after_on_every_route_and_service_resumes(harness, postgres_proxy):
    created = harness.create("outage-1")
    postgres_proxy.cut()
    requests = [
        ("POST", "/v1/verifications", {"json": {"subject_id": "outage-2", "claim": claim_of(CLEAN)}}),
        ("GET", f"/v1/verifications/{created['id']}", {}),
        ("POST", f"/v1/verifications/{created['id']}/withdraw", {}),
        ("GET", "/v1/subjects/outage-1/identity", {}),
        ("GET", "/v1/review/cases", {}),
        ("GET", "/v1/declarations", {}),
    ]
    for method, url, kwargs in requests:
        assert_outage_answer(harness.request(method, url, **kwargs))
    assert_outage_answer(harness.upload(created["id"], CLEAN))
    postgres_proxy.restore()
    assert wait_until(lambda: harness.request("GET", f"/v1/verifications/{created['id']}").status_code == 200)


def test_an_upload_stored_before_the_database_drops_answers_202_and_its_retry_finishes_it(
    harness, postgres_proxy, monkeypatch
):
    from ocr_service.verification import service

    store = service.submit_image

    def store_then_cut(*args, **kwargs):
        ticket = store(*args, **kwargs)
        postgres_proxy.cut()  # the photo and its attempt are committed; everything after fails
        return ticket

    monkeypatch.setattr(service, "submit_image", store_then_cut)
    created = harness.create("outage-3")
    response = harness.upload(created["id"], CLEAN, idempotency_key="upload-outage-3")
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status_url"] == f"/v1/verifications/{created['id']}"
    assert response.headers["location"] == answer["status_url"]
    assert answer["attempt_id"]

    monkeypatch.setattr(service, "submit_image", store)
    postgres_proxy.restore()
    # the client retries with the same key: the stored attempt is answered (and re-sent if still queued)
    assert wait_until(
        lambda: harness.upload(created["id"], CLEAN, idempotency_key="upload-outage-3").status_code == 200
    )
    assert wait_until(lambda: harness.get(created["id"])["status"] == "verified")
    assert harness.count(Attempt, Attempt.verification_id == created["id"]) == 1


def test_sqlite_locked_past_the_busy_timeout_answers_503(tmp_path: Path, engine, monkeypatch):
    """The embedded default's outage: another process holds the write lock."""
    from fastapi.testclient import TestClient

    from ocr_service import db
    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key
    from tests.ocr_service.api_harness import make_settings, reset_process_singletons

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    reset_process_singletons()
    path = tmp_path / "data" / "ocr.db"
    app = create_app(make_settings(tmp_path, f"sqlite:///{path}"))
    with app.state.db.session_scope() as session:
        _key, secret = create_api_key(session, "locked", ["client"])
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            locker.execute("BEGIN EXCLUSIVE")
            response = client.post(
                "/v1/verifications",
                headers={"Authorization": f"Bearer {secret}"},
                json={"subject_id": "locked-1", "claim": {"name": "陶超淼", "document_number": "142536197609041151"}},
            )
            locker.execute("ROLLBACK")
        assert_outage_answer(response)
    finally:
        locker.close()
        reset_process_singletons()


def test_a_broker_refusal_after_the_store_answers_202_and_the_same_key_resends_the_queued_attempt(harness, monkeypatch):
    from ocr_service.queue import dispatch

    submit = dispatch.submit

    def refuse(attempt_id, settings=None):
        raise dispatch.BrokerUnavailable("the task queue is unavailable (ConnectionError)")

    monkeypatch.setattr(dispatch, "submit", refuse)
    created = harness.create("outage-4")
    response = harness.upload(created["id"], CLEAN, idempotency_key="upload-outage-4")
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["attempt_status"] == "queued"
    assert response.headers["location"] == answer["status_url"]
    assert harness.count(Attempt, Attempt.status == AttemptStatus.QUEUED) == 1

    monkeypatch.setattr(dispatch, "submit", submit)
    again = harness.upload(created["id"], CLEAN, idempotency_key="upload-outage-4")
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    assert again.json()["status"] == "verified"
    assert harness.count(Attempt, Attempt.verification_id == created["id"]) == 1


def test_a_case_waiting_for_its_scan_can_be_withdrawn_and_a_new_one_started(harness, monkeypatch):
    from ocr_service.queue import dispatch

    monkeypatch.setattr(dispatch, "submit", lambda attempt_id, settings=None: None)  # the scan is stuck
    harness.app.state.settings = harness.settings.model_copy(update={"result_wait_seconds": 0.0})
    created = harness.create("outage-5")
    response = harness.upload(created["id"], CLEAN)
    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    withdrawn = harness.request("POST", f"/v1/verifications/{created['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["next_action"] == "none"
    # the applicant can start again at once, and the withdrawn scan no longer stands in the way
    again = harness.create("outage-5")
    assert again["status"] == "awaiting_images"


def test_withdrawing_a_waiting_scan_does_not_reset_the_failure_count(harness, monkeypatch):
    from ocr_service.queue import dispatch

    created = harness.create("outage-6")
    assert harness.upload(created["id"], "0023_front_blur.jpg").json()["attempts_left"] == 4
    monkeypatch.setattr(dispatch, "submit", lambda attempt_id, settings=None: None)  # the scan is stuck
    harness.app.state.settings = harness.settings.model_copy(update={"result_wait_seconds": 0.0})
    assert harness.upload(created["id"], CLEAN).status_code == 202
    assert harness.request("POST", f"/v1/verifications/{created['id']}/withdraw").status_code == 200
    again = harness.create("outage-6")
    assert again["failed_attempts"] == 1


def test_a_batch_job_the_broker_refused_answers_503_with_retry_after(harness, monkeypatch):
    from ocr_service.auth import create_api_key
    from ocr_service.jobs import reverify
    from ocr_service.queue import dispatch

    def refuse(session, job_id, settings=None):
        raise dispatch.BrokerUnavailable("the task queue is unavailable (ConnectionError)")

    monkeypatch.setattr(reverify, "start_job", refuse)
    with harness.database.session_scope() as session:
        _key, secret = create_api_key(session, "operator", ["admin"])
    response = harness.client.post(
        "/v1/jobs/reverify", json={"dry_run": True}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert response.json()["error"]["message_zh"]


def test_only_an_outage_is_503_and_a_bug_stays_500():
    import sqlite3

    from sqlalchemy import exc as sa_exc

    from ocr_service.errors import is_outage

    def wrapped(error: Exception) -> sa_exc.DBAPIError:
        return sa_exc.DBAPIError.instance("SELECT 1", {}, error, sqlite3.DatabaseError)

    assert is_outage(wrapped(sqlite3.OperationalError("database is locked")))
    assert is_outage(wrapped(sqlite3.OperationalError("unable to open database file")))
    assert not is_outage(wrapped(sqlite3.OperationalError("no such table: verifications")))
    assert not is_outage(wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not is_outage(ValueError("a bug"))
