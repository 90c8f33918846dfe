"""ocr_service.purge: images past retention are deleted, their records stay as tombstones."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from ocr_service.db import Database, session_scope, utcnow
from ocr_service.purge import purge_images
from ocr_service.storage import LocalBlobStore, get_blob_store
from ocr_service.verification.models import StoredImage
from tests.ocr_service.conftest import add_api_key, add_stored_image, add_verification

RETENTION = timedelta(days=90)


def store_images(database: Database, blob_store: LocalBlobStore, ages_in_days: list[int]) -> list[tuple[str, str]]:
    """One stored image per age; returns (image id, blob id) pairs in the same order."""
    now = utcnow()
    out = []
    with session_scope(database) as session:
        key, _ = add_api_key(session)
        verification = add_verification(session, key)
        for age in ages_in_days:
            blob_id = blob_store.put(b"photo taken %d days ago" % age)
            image = add_stored_image(session, verification, blob_id, created_at=now - timedelta(days=age))
            out.append((image.id, blob_id))
    return out


def test_old_images_lose_their_blob_and_keep_a_tombstone_while_recent_ones_stay(
    database: Database, blob_store: LocalBlobStore
):
    (old_id, old_blob), (older_id, older_blob), (recent_id, recent_blob) = store_images(
        database, blob_store, [91, 400, 10]
    )
    with database.session() as session:
        report = purge_images(session, blob_store, RETENTION)
    assert (report.due, report.purged, report.dry_run) == (2, 2, False)

    assert not blob_store.exists(old_blob) and not blob_store.exists(older_blob)
    assert blob_store.get(recent_blob) == b"photo taken 10 days ago"
    with database.session() as session:
        for image_id in (old_id, older_id):
            tombstone = session.get(StoredImage, image_id)
            assert tombstone.blob_id is None
            assert tombstone.purged_at is not None and utcnow() - tombstone.purged_at < timedelta(minutes=1)
            assert tombstone.sha256 == "f" * 64 and tombstone.size_bytes == 1234
        recent = session.get(StoredImage, recent_id)
        assert recent.blob_id == recent_blob and recent.purged_at is None


def test_a_dry_run_counts_but_changes_nothing(database: Database, blob_store: LocalBlobStore):
    stored = store_images(database, blob_store, [100, 200, 5])
    with database.session() as session:
        report = purge_images(session, blob_store, RETENTION, dry_run=True)
    assert (report.due, report.purged, report.dry_run) == (2, 0, True)
    assert all(blob_store.exists(blob_id) for _, blob_id in stored)
    with database.session() as session:
        assert all(session.get(StoredImage, image_id).blob_id == blob_id for image_id, blob_id in stored)


def test_purging_again_finds_nothing_to_do(database: Database, blob_store: LocalBlobStore):
    store_images(database, blob_store, [100, 5])
    with database.session() as session:
        assert purge_images(session, blob_store, RETENTION).purged == 1
    with database.session() as session:
        again = purge_images(session, blob_store, RETENTION)
    assert (again.due, again.purged) == (0, 0)


def test_a_row_whose_blob_is_already_gone_is_still_tombstoned(database: Database, blob_store: LocalBlobStore):
    # what an earlier run interrupted between deleting the file and committing leaves behind
    [(image_id, blob_id)] = store_images(database, blob_store, [120])
    blob_store.delete(blob_id)
    with database.session() as session:
        assert purge_images(session, blob_store, RETENTION).purged == 1
    with database.session() as session:
        assert session.get(StoredImage, image_id).purged_at is not None


def test_more_images_than_one_batch_are_all_purged(database: Database, blob_store: LocalBlobStore, monkeypatch):
    monkeypatch.setattr("ocr_service.purge.BATCH_SIZE", 3)
    stored = store_images(database, blob_store, [95] * 8)
    with database.session() as session:
        assert purge_images(session, blob_store, RETENTION).purged == 8
    assert not any(blob_store.exists(blob_id) for _, blob_id in stored)


def test_the_purge_command_uses_the_retention_setting_and_reports_counts(cli_settings):
    from ocr_service.cli import app
    from ocr_service.db import get_database

    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    store = get_blob_store(cli_settings)
    stored = store_images(get_database(cli_settings), store, [cli_settings.retention_days + 1, 30])

    dry = runner.invoke(app, ["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) | {"cutoff": None} == {
        "dry_run": True,
        "older_than_days": cli_settings.retention_days,
        "cutoff": None,
        "due": 1,
        "purged": 0,
    }
    assert all(store.exists(blob_id) for _, blob_id in stored)

    real = runner.invoke(app, ["purge", "--older-than-days", "20"])
    assert real.exit_code == 0, real.output
    assert (json.loads(real.stdout)["due"], json.loads(real.stdout)["purged"]) == (2, 2)
    assert not any(store.exists(blob_id) for _, blob_id in stored)
