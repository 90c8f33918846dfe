"""The service over HTTP for tests: ``create_app`` on a SQLite file or a PostgreSQL schema, two keys, a recorder.

Used by ``test_api.py``, ``test_verification_service.py``, ``test_ratelimit.py`` and
``test_webhooks.py``. The ``harness`` fixture runs on both backends (it takes the
``database_url`` fixture of ``conftest.py``). Every response body is recorded with the key
that asked for it, and on teardown the harness checks that no body fetched without
``identity:full`` and no captured log line contains any of the sample set's ID numbers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ocr_service.config import Settings
from ocr_service.crypto import generate_key
from ocr_service.db import Database
from tests.conftest import SAMPLE_SET

LABELS: dict[str, dict] = {
    json.loads(line)["file"]: json.loads(line)
    for line in (SAMPLE_SET / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
}
# Every ID number the sample set prints or claims: none may leak into a response or a log.
ALL_NUMBERS = sorted(
    (
        {label["fields"].get("id_number", "") for label in LABELS.values()}
        | {label["claim"]["id_number"] for label in LABELS.values() if label.get("claim")}
    )
    - {""}
)

CLEAN = "0001_front_clean.jpg"
BLURRED = "0023_front_blur.jpg"  # decided retake (blurry) before anything is read


def photo(name: str) -> bytes:
    return (SAMPLE_SET / name).read_bytes()


def claim_of(name: str) -> dict[str, str]:
    claim = LABELS[name]["claim"]
    return {"name": claim["name"], "document_number": claim["id_number"]}


@dataclass
class Harness:
    app: Any
    client: TestClient
    settings: Settings
    database: Database
    secrets: dict[str, str]  # "client", "full" (client + identity:full), "other" (another client)
    key_ids: dict[str, str]
    recorded: list[tuple[str, str, bytes]] = field(default_factory=list)  # (key name, url, body)

    def request(self, method: str, url: str, *, key: str | None = "client", **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {self.secrets[key]}"
        response = self.client.request(method, url, headers=headers, **kwargs)
        self.recorded.append((key or "", url, response.content))
        return response

    def create(
        self,
        subject_id: str,
        claim: dict[str, str] | None = None,
        *,
        method: str = "auto",
        document_type: str = "resident_id",
        key: str = "client",
    ) -> dict:
        body = {
            "subject_id": subject_id,
            "document_type": document_type,
            "method": method,
            "claim": claim or claim_of(CLEAN),
        }
        response = self.request("POST", "/v1/verifications", json=body, key=key)
        assert response.status_code == 201, response.text
        return response.json()

    def upload(
        self,
        verification_id: str,
        image: str | bytes,
        *,
        side: str = "front",
        idempotency_key: str | None = None,
        key: str = "client",
        filename: str = "photo.jpg",
    ) -> httpx.Response:
        data = photo(image) if isinstance(image, str) else image
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request(
            "POST",
            f"/v1/verifications/{verification_id}/images",
            files={"image": (filename, data, "application/octet-stream")},
            data={"side": side},
            headers=headers,
            key=key,
        )

    def get(self, verification_id: str, key: str = "client") -> dict:
        response = self.request("GET", f"/v1/verifications/{verification_id}", key=key)
        assert response.status_code == 200, response.text
        return response.json()

    def count(self, model, *where) -> int:
        with self.database.session_scope() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def blob_files(self) -> list[Path]:
        root = self.settings.data_dir / "blobs"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def reset_process_singletons() -> None:
    from ocr_service import config, crypto, db, storage

    config.set_settings(None)
    current = db._process_database
    if current is not None:
        current.dispose()
    db.set_database(None)
    crypto.set_cipher(None)
    storage.set_blob_store(None)


def make_settings(tmp_path: Path, database_url: str, **overrides) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "encryption_key": generate_key(),
        "result_wait_seconds": 20.0,  # generous: CI machines are slow; the 202 path is tested on its own
        "max_upload_bytes": 1024 * 1024,  # the sample photos are <= 310 KB
        "rate_limit_per_minute_key": 10_000,
        "rate_limit_per_minute_subject": 10_000,
        "webhook_backoff_seconds": 0.05,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def harness_settings() -> dict:
    """Override settings of the ``harness`` for one test (a test module may override this fixture)."""
    return {}


@pytest.fixture
def harness_callback_url() -> str | None:
    """The ``client`` key's callback URL (``test_webhooks.py`` points it at a local receiver)."""
    return None


@pytest.fixture
def harness(
    database_url: str,
    tmp_path: Path,
    engine,
    capsys,
    caplog,
    harness_settings: dict,
    harness_callback_url: str | None,
) -> Iterator[Harness]:
    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key
    from ocr_service.logs import configure_logging
    from ocr_service.queue import dispatch

    caplog.set_level(logging.INFO)
    configure_logging("INFO", json=True)
    reset_process_singletons()
    settings = make_settings(tmp_path, database_url, **harness_settings)
    if not database_url.startswith("sqlite"):
        Database(database_url).upgrade()  # create_app migrates only the embedded SQLite default
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        client_key, client_secret = create_api_key(
            session, "mini-program", ["client"], callback_url=harness_callback_url
        )
        full_key, full_secret = create_api_key(session, "declaration", ["client", "identity:full"])
        other_key, other_secret = create_api_key(session, "another app", ["client"])
        ids = {"client": client_key.id, "full": full_key.id, "other": other_key.id}
    harness = None
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            harness = Harness(
                app=app,
                client=client,
                settings=settings,
                database=app.state.db,
                secrets={"client": client_secret, "full": full_secret, "other": other_secret},
                key_ids=ids,
            )
            yield harness
        assert dispatch.drain(30), "in-process scans still running after the test"
    finally:
        reset_process_singletons()
    out, err = capsys.readouterr()
    logs = out + err + caplog.text
    for number in ALL_NUMBERS:
        assert number not in logs, "a full ID number was logged"
        for key, url, body in harness.recorded:
            if key != "full":
                assert number.encode() not in body, f"a full ID number in the response to {url}"


# --- the service without HTTP ------------------------------------------------------------------


@dataclass
class ServiceRuntime:
    settings: Settings
    database: Database
    client_key_id: str

    def session(self):
        return self.database.session()

    def client_key(self, session):
        from ocr_service.verification.models import ApiKey

        return session.get(ApiKey, self.client_key_id)


@pytest.fixture
def service_runtime(database: Database, tmp_path: Path, engine) -> Iterator[ServiceRuntime]:
    """Process-wide settings, database, cipher and blob store, as ``create_app`` installs them."""
    from ocr_service import config, crypto, db, storage, subscribers
    from ocr_service.auth import create_api_key
    from ocr_service.crypto import Cipher
    from ocr_service.storage import LocalBlobStore

    reset_process_singletons()
    subscribers.connect()
    settings = make_settings(tmp_path, database.url)
    config.set_settings(settings)
    db.set_database(database)
    cipher = Cipher.from_settings(settings)
    crypto.set_cipher(cipher)
    storage.set_blob_store(LocalBlobStore.from_settings(settings, cipher))
    with database.session_scope() as session:
        key, _secret = create_api_key(session, "service tests", ["client"])
        key_id = key.id
    try:
        yield ServiceRuntime(settings, database, key_id)
    finally:
        from ocr_service.queue import dispatch

        dispatch.drain(30)
        config.set_settings(None)
        db.set_database(None)  # the database fixture disposes it
        crypto.set_cipher(None)
        storage.set_blob_store(None)
