"""Fixtures for the service's tests: a migrated database on SQLite *and* PostgreSQL, a cipher, a blob store.

``database_url`` is parametrised over both backends, so every test that uses it (or
``database``) runs twice. PostgreSQL is the machine's server (``OCR_TEST_POSTGRES_URL``,
default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``, trust auth); each test gets a
schema of its own, dropped afterwards, so parallel runs and other suites never see each
other's rows. An unreachable server fails the tests: CI has one, and a silent skip would
hide that half of the matrix never ran.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from ocr_service.config import Settings
from ocr_service.crypto import Cipher
from ocr_service.db import Database
from ocr_service.storage import LocalBlobStore
from ocr_service.verification.models import (
    ApiKey,
    DocumentType,
    Method,
    StoredImage,
    Verification,
    VerificationStatus,
)

POSTGRES_URL = os.environ.get("OCR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_admin_engine():
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(POSTGRES_URL).render_as_string(hide_password=True)} "
            f"({type(exc.orig).__name__}). Start it or point OCR_TEST_POSTGRES_URL at one; "
            "the database tests run on SQLite and PostgreSQL and are not skipped.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


def _postgres_schema_url(schema: str) -> str:
    url = make_url(POSTGRES_URL)
    # psycopg passes `options` to the server: every connection of the engine lives in the schema
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables): a SQLite file under tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'ocr.db'}"
        return
    admin = request.getfixturevalue("postgres_admin_engine")
    schema = f"ocrtest_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(schema)
    finally:
        with admin.connect() as connection:
            # a test that leaked a connection holding locks must not hang the whole run
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A :class:`Database` migrated to head, and a process cipher for its encrypted columns.

    Names, birth dates and scan results are encrypted by their column types with the process
    cipher (``encrypted_types``); a test that installs its own (``service_runtime``) replaces it.
    """
    from ocr_service import crypto

    installed = crypto._process_cipher is None
    if installed:
        crypto.set_cipher(Cipher(secrets.token_bytes(32)))
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()
    if installed:
        crypto.set_cipher(None)


@pytest.fixture
def cli_settings(tmp_path: Path) -> Iterator[Settings]:
    """Process-wide settings for CLI tests: an embedded setup under tmp_path, singletons reset around the test."""
    from ocr_service import config, crypto, db, storage

    def reset() -> None:
        config.set_settings(None)
        for module, setter in ((db, "set_database"), (crypto, "set_cipher"), (storage, "set_blob_store")):
            current = getattr(module, "_process_database", None) if module is db else None
            if current is not None:
                current.dispose()
            getattr(module, setter)(None)

    reset()
    settings = Settings(data_dir=tmp_path / "data", database_url="", encryption_key="", log_json=True)
    config.set_settings(settings)
    yield settings
    reset()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(secrets.token_bytes(32))


@pytest.fixture
def blob_store(tmp_path: Path, cipher: Cipher) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "data" / "blobs", cipher)


# --- rows for tests (plain functions: call them with a session) ---------------------------------


def add_api_key(session, name: str = "test client", scopes: tuple[str, ...] = ("client",)) -> tuple[ApiKey, str]:
    from ocr_service.auth import create_api_key

    return create_api_key(session, name, scopes)


def add_verification(session, client_key: ApiKey, subject_id: str = "subject-1", **overrides) -> Verification:
    values = {
        "client_key_id": client_key.id,
        "subject_id": subject_id,
        "document_type": DocumentType.RESIDENT_ID,
        "method": Method.AUTO,
        "status": VerificationStatus.AWAITING_IMAGES,
        "claim_name": "张三",
        "claim_number_enc": b"\x01not-really-encrypted",
        "claim_number_index": "0" * 64,
    }
    values.update(overrides)
    verification = Verification(**values)
    session.add(verification)
    session.flush()
    return verification


def add_stored_image(session, verification: Verification, blob_id: str | None, **overrides) -> StoredImage:
    values = {
        "verification_id": verification.id,
        "blob_id": blob_id,
        "sha256": "f" * 64,
        "content_type": "image/jpeg",
        "size_bytes": 1234,
    }
    values.update(overrides)
    image = StoredImage(**values)
    session.add(image)
    session.flush()
    return image
