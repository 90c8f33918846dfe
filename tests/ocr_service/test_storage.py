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
