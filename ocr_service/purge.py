"""Retention: delete uploaded images older than the retention period, keep a tombstone.

The record of an upload stays (``StoredImage`` with its digest, size and dates, and every
attempt and decision made on it); only the encrypted image goes, and ``blob_id`` becomes NULL
with ``purged_at`` set. The blob is deleted *before* the row is marked, in that order on
purpose: a crash in between leaves a row pointing at a missing blob, which the next run
tidies up, rather than an image nobody points at any more. Running it again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ocr_service.db import utcnow
from ocr_service.storage import BlobStore
from ocr_service.verification.models import StoredImage

log = structlog.get_logger(__name__)

# Rows handled per transaction: short transactions keep SQLite writers and PostgreSQL vacuum happy.
BATCH_SIZE = 500


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    due: int  # images older than the cutoff that still had a blob
    purged: int  # tombstoned by this run (0 on a dry run)
    dry_run: bool


def _due(cutoff: datetime):
    return (StoredImage.blob_id.is_not(None), StoredImage.created_at < cutoff)


def purge_images(
    session: Session,
    store: BlobStore,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PurgeReport:
    """Delete the blobs of images created more than ``older_than`` ago and tombstone their rows.

    Commits after each batch, so an interrupted run keeps what it did.
    """
    cutoff = (now or utcnow()) - older_than
    due = session.scalar(select(func.count()).select_from(StoredImage).where(*_due(cutoff))) or 0
    if dry_run:
        return PurgeReport(cutoff=cutoff, due=due, purged=0, dry_run=True)
    purged = 0
    while True:
        batch = session.scalars(
            select(StoredImage).where(*_due(cutoff)).order_by(StoredImage.created_at).limit(BATCH_SIZE)
        ).all()
        if not batch:
            break
        purged_at = utcnow()
        for image in batch:
            if image.blob_id is not None:  # always, by the query; narrows the type
                store.delete(image.blob_id)
            image.blob_id = None
            image.purged_at = purged_at
        session.commit()
        purged += len(batch)
    log.info("images_purged", cutoff=cutoff.isoformat(), due=due, purged=purged)
    return PurgeReport(cutoff=cutoff, due=due, purged=purged, dry_run=False)
