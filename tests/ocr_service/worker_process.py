"""Helpers for the queue tests: a real ``ocr-service worker`` subprocess, process-wide service setup, an upload.

Used by ``test_jobs.py`` and ``test_worker_crash.py``. The worker runs in its own process
group so a test can SIGKILL the whole worker (main process and pool children) the way an
OOM kill or a lost host would.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocr_service.config import Settings
from tests.conftest import ROOT, SAMPLE_SET

REDIS_URL = "redis://127.0.0.1:6379"


@dataclass(frozen=True)
class RedisNamespace:
    url: str  # redis://127.0.0.1:6379/<db>
    key_prefix: str  # OCR_BROKER_KEY_PREFIX: every key of this test lives under it

    def delete_keys(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        try:
            keys = list(client.scan_iter(match=self.key_prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextlib.contextmanager
def redis_namespace(db_number: int) -> Iterator[RedisNamespace]:
    """A dedicated Redis database and a key prefix of this test's own, emptied before and after.

    The prefix rather than FLUSHDB: several test runs (CI, developers) may share the machine's
    Redis at the same time, and a flush would delete another run's queued tasks.
    """
    import redis

    namespace = RedisNamespace(f"{REDIS_URL}/{db_number}", f"ocrtest-{os.getpid()}-{secrets.token_hex(4)}:")
    client = redis.Redis.from_url(namespace.url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}). Start it: "
            'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
            pytrace=False,
        )
    finally:
        client.close()
    namespace.delete_keys()
    try:
        yield namespace
    finally:
        namespace.delete_keys()


def service_settings(tmp_path: Path, database_url: str, broker: RedisNamespace | None = None, **overrides) -> Settings:
    if broker is not None:
        overrides.setdefault("broker_url", broker.url)
        overrides.setdefault("broker_key_prefix", broker.key_prefix)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        log_json=True,
        **overrides,
    )


@contextlib.contextmanager
def installed(settings: Settings) -> Iterator[Settings]:
    """Make ``settings`` this process's settings, database, cipher and blob store; reset afterwards.

    Status changes get their listeners (review queue, webhooks) as in the API and the workers,
    whichever test module runs first.
    """
    from ocr_service import config, crypto, db, storage, subscribers
    from ocr_service.queue import dispatch

    subscribers.connect()

    def reset() -> None:
        dispatch.shutdown(wait=True)
        config.set_settings(None)
        current = db._process_database
        if current is not None:
            current.dispose()
        db.set_database(None)
        crypto.set_cipher(None)
        storage.set_blob_store(None)

    reset()
    database = db.Database(settings.effective_database_url)
    database.upgrade()
    config.set_settings(settings)
    db.set_database(database)
    try:
        yield settings
    finally:
        reset()


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a worker subprocess sharing ``settings`` (no other OCR_ variables leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
    env.update(
        {
            "OCR_DATA_DIR": str(settings.data_dir),
            "OCR_DATABASE_URL": settings.effective_database_url,
            "OCR_BROKER_URL": settings.broker_url,
            "OCR_BROKER_KEY_PREFIX": settings.broker_key_prefix,
            "OCR_ENCRYPTION_KEY": settings.encryption_key,
            "OCR_CELERY_VISIBILITY_TIMEOUT": str(settings.celery_visibility_timeout),
            "OCR_LOG_JSON": "true",
            "OCR_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def ocr_service_bin() -> str:
    candidate = Path(sys.executable).with_name("ocr-service")
    return str(candidate) if candidate.exists() else "ocr-service"


class WorkerProcess:
    """``ocr-service worker`` as a subprocess in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [ocr_service_bin(), "worker", "--concurrency", "1", "--loglevel", "info", *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str) -> list[dict]:
        """The structlog JSON lines with ``"event": name``."""
        out = []
        for line in self.log_text().splitlines():
            if f'"{name}"' not in line:
                continue
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line[line.index("{") :])
                if record.get("event") == name:
                    out.append(record)
        return out

    def wait_for(self, pattern: str, timeout: float) -> None:
        """Until ``pattern`` (a regex) appears in the log; fails with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"worker log has no {pattern!r} (exit {self.proc.poll()}):\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: no warm shutdown, no message returned to the queue."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        else:  # the main process is gone; pool children may linger in the group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


# --- an applicant's upload, through the service functions the routes call -----------------------


@dataclass(frozen=True)
class Upload:
    verification_id: str
    attempt_id: str


def sample_label(file_name: str = "0001_front_clean.jpg") -> dict:
    for line in (SAMPLE_SET / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        if label["file"] == file_name:
            return label
    raise LookupError(file_name)


def upload_sample(settings: Settings, file_name: str = "0001_front_clean.jpg", subject_id: str | None = None) -> Upload:
    """Create a client key and an automatic verification, store the photo: an attempt left ``queued``."""
    from ocr_service.auth import create_api_key
    from ocr_service.db import session_scope
    from ocr_service.verification import service
    from ocr_service.verification.models import ImageSide
    from ocr_service.verification.schemas import ClaimIn, VerificationCreate

    label = sample_label(file_name)
    with session_scope() as session:
        client, _secret = create_api_key(session, f"queue test {secrets.token_hex(3)}", ["client"])
        verification = service.create_verification(
            session,
            client,
            VerificationCreate(
                subject_id=subject_id or f"subject-{secrets.token_hex(4)}",
                claim=ClaimIn(name=label["claim"]["name"], document_number=label["claim"]["id_number"]),
            ),
        )
        ticket = service.submit_image(
            session, client, verification.id, ImageSide.FRONT, (SAMPLE_SET / file_name).read_bytes(), None, settings
        )
    assert ticket.needs_scan
    return Upload(ticket.verification_id, ticket.attempt_id)


def wait_attempt_finished(attempt_id: str, timeout: float) -> None:
    from ocr_service.db import get_database
    from ocr_service.verification.service import wait_for_attempt

    assert wait_for_attempt(attempt_id, timeout, get_database()), f"attempt {attempt_id} not finished in {timeout} s"
