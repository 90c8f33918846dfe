"""ocr_service.storage: images go to disk encrypted, come back intact, and go away for good."""

from __future__ import annotations

import os
import stat

import pytest

from ocr_service.crypto import Cipher, DecryptionError
from ocr_service.storage import BlobNotFound, LocalBlobStore

# something that looks like an ID-card photo's bytes, with a recognisable marker inside
PLAINTEXT = b"\xff\xd8\xff\xe0JFIF 420106199001011234 " + os.urandom(4096) + b" 420106199001011234\xff\xd9"


def test_put_then_get_gives_back_the_same_bytes(blob_store: LocalBlobStore):
    blob_id = blob_store.put(PLAINTEXT)
    assert blob_store.get(blob_id) == PLAINTEXT
    assert blob_store.exists(blob_id)


def test_blob_ids_are_random_uuid_hex(blob_store: LocalBlobStore):
    first, second = blob_store.put(b"a"), blob_store.put(b"a")
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def test_the_file_on_disk_is_sharded_private_and_does_not_contain_the_plaintext(blob_store: LocalBlobStore):
    blob_id = blob_store.put(PLAINTEXT)
    path = blob_store.root / blob_id[:2] / blob_id[2:4] / blob_id
    on_disk = path.read_bytes()
    assert b"420106199001011234" not in on_disk
    assert b"JFIF" not in on_disk
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # and nothing else (no temp file) was left beside it
    assert [p.name for p in path.parent.iterdir()] == [blob_id]


def test_delete_removes_the_blob_and_deleting_again_is_harmless(blob_store: LocalBlobStore):
    blob_id = blob_store.put(PLAINTEXT)
    blob_store.delete(blob_id)
    assert not blob_store.exists(blob_id)
    blob_store.delete(blob_id)
    with pytest.raises(BlobNotFound):
        blob_store.get(blob_id)


def test_a_blob_copied_under_another_id_does_not_decrypt(blob_store: LocalBlobStore):
    original, other = blob_store.put(PLAINTEXT), blob_store.put(b"someone else's card")
    blob_store.path(other).write_bytes(blob_store.path(original).read_bytes())
    with pytest.raises(DecryptionError):
        blob_store.get(other)


def test_associated_data_given_to_put_is_required_by_get(blob_store: LocalBlobStore):
    blob_id = blob_store.put(PLAINTEXT, b"verification:1")
    assert blob_store.get(blob_id, b"verification:1") == PLAINTEXT
    with pytest.raises(DecryptionError):
        blob_store.get(blob_id, b"verification:2")


def test_a_store_with_another_key_cannot_read_the_blobs(blob_store: LocalBlobStore):
    blob_id = blob_store.put(PLAINTEXT)
    stranger = LocalBlobStore(blob_store.root, Cipher(os.urandom(32)))
    with pytest.raises(DecryptionError):
        stranger.get(blob_id)


@pytest.mark.parametrize("blob_id", ["../../secret.key", "/etc/passwd", "A" * 32, "abc", ""])
def test_malformed_blob_ids_are_refused_before_touching_the_disk(blob_store: LocalBlobStore, blob_id: str):
    with pytest.raises(ValueError):
        blob_store.get(blob_id)
    with pytest.raises(ValueError):
        blob_store.delete(blob_id)


def test_the_cli_and_the_embedded_app_keep_the_data_dir_0700_and_every_file_in_it_0600(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from ocr_service import config
    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key
    from ocr_service.cli import app as cli
    from tests.ocr_service.api_harness import CLEAN, photo, reset_process_singletons

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)  # left too open by an older version
    for name in ("OCR_DATABASE_URL", "OCR_ENCRYPTION_KEY", "OCR_ENCRYPTION_KEY_FILE", "OCR_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OCR_DATA_DIR", str(data_dir))
    previous_umask = os.umask(0o022)  # what a login shell usually gives
    reset_process_singletons()
    config._settings_from_environment.cache_clear()
    try:
        assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
        app = create_app(config.Settings())
        with app.state.db.session_scope() as session:
            _key, secret = create_api_key(session, "mini-program", ["client"])
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {secret}"}
            body = {
                "subject_id": "s-1",
                "document_type": "foreign_passport",
                "method": "manual",
                "claim": {"name": "JANE DOE", "document_number": "E98765432"},
            }
            created = client.post("/v1/verifications", json=body, headers=headers)
            assert created.status_code == 201, created.text
            uploaded = client.post(
                f"/v1/verifications/{created.json()['id']}/images",
                headers=headers,
                files={"image": ("p.jpg", photo(CLEAN), "image/jpeg")},
                data={"side": "front"},
            )
            assert uploaded.status_code == 200, uploaded.text
            names = {path.name for path in data_dir.iterdir()}
            assert {"ocr.db", "ocr.db-wal", "ocr.db-shm", "secret.key", "blobs"} <= names
            modes = {
                str(path.relative_to(data_dir)): stat.S_IMODE(path.stat().st_mode) for path in data_dir.rglob("*")
            }
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert {name: mode for name, mode in modes.items() if mode not in (0o600, 0o700)} == {}
        assert any(name.startswith("blobs/") and mode == 0o600 for name, mode in modes.items())
    finally:
        from ocr_service.queue import dispatch

        dispatch.drain(60)
        os.umask(previous_umask)
        reset_process_singletons()
        config._settings_from_environment.cache_clear()
