"""Where uploaded images live: an encrypted blob store addressed by random ids.

``put`` encrypts the bytes (AES-256-GCM, ``crypto.Cipher``) and returns a new blob id;
the database keeps only that id (``StoredImage.blob_id``). The blob id is bound into the
ciphertext as associated data, so a file renamed or copied to another id does not decrypt.

``LocalBlobStore`` keeps one file per blob under ``{data_dir}/blobs/ab/cd/<id>`` (two levels
of fan-out keep directories small), written atomically: a reader sees the whole blob or none.
An object-store backend can implement the same ``BlobStore`` protocol.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocr_service.crypto import Cipher, get_cipher

if TYPE_CHECKING:
    from ocr_service.config import Settings

_BLOB_ID = re.compile(r"[0-9a-f]{32}")


# Everything under the data dir is personal data or key material: no other local user reads it.
# With this umask SQLite's ocr.db, -wal and -shm come out 0600 and new directories 0700.
PRIVATE_UMASK = 0o077


def use_private_umask() -> None:
    """New files of this process (and the processes it starts) readable by its own user only."""
    os.umask(PRIVATE_UMASK)


def prepare_data_dir(data_dir: Path, *, create: bool = True) -> None:
    """The data dir exists (if ``create``) with mode 0700; one of ours left more open is tightened."""
    if create:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = data_dir.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        data_dir.chmod(0o700)


class BlobNotFound(LookupError):
    """No blob with this id (never stored, or purged)."""


class BlobStore(Protocol):
    def put(self, data: bytes, associated_data: bytes = b"") -> str: ...

    def get(self, blob_id: str, associated_data: bytes = b"") -> bytes: ...

    def delete(self, blob_id: str) -> None: ...

    def exists(self, blob_id: str) -> bool: ...


def _check_blob_id(blob_id: str) -> str:
    # ids become file paths: accept only what put() creates, never "../" or an absolute path
    if not isinstance(blob_id, str) or not _BLOB_ID.fullmatch(blob_id):
        raise ValueError("malformed blob id")
    return blob_id


def _aad(blob_id: str, associated_data: bytes) -> bytes:
    return b"blob:" + blob_id.encode("ascii") + b"|" + associated_data


class LocalBlobStore:
    """Encrypted blobs as files under ``root``.

    ``associated_data`` is optional extra context bound into the ciphertext (for example the
    verification id); whoever passes it to ``put`` must pass the same bytes to ``get``.
    """

    def __init__(self, root: Path, cipher: Cipher) -> None:
        self.root = Path(root)
        self._cipher = cipher

    @classmethod
    def from_settings(cls, settings: Settings, cipher: Cipher | None = None) -> LocalBlobStore:
        return cls(settings.data_dir / "blobs", cipher or get_cipher(settings))

    def path(self, blob_id: str) -> Path:
        _check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id[2:4] / blob_id

    def put(self, data: bytes, associated_data: bytes = b"") -> str:
        blob_id = uuid.uuid4().hex
        target = self.path(blob_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        token = self._cipher.encrypt(data, _aad(blob_id, associated_data))
        tmp = target.with_name(f".{blob_id}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(token)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)  # the rename itself survives a power cut
        return blob_id

    def get(self, blob_id: str, associated_data: bytes = b"") -> bytes:
        try:
            token = self.path(blob_id).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        return self._cipher.decrypt(token, _aad(blob_id, associated_data))

    def delete(self, blob_id: str) -> None:
        """Remove the blob; deleting a blob that is already gone is not an error."""
        self.path(blob_id).unlink(missing_ok=True)

    def exists(self, blob_id: str) -> bool:
        return self.path(blob_id).is_file()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the process-wide store ----------------------------------------------------------------------

_process_store: BlobStore | None = None
_process_store_lock = threading.Lock()


def get_blob_store(settings: Settings | None = None) -> BlobStore:
    """This process's blob store, built on first use from ``settings`` (or ``get_settings()``)."""
    global _process_store
    with _process_store_lock:
        if _process_store is None:
            if settings is None:
                from ocr_service.config import get_settings

                settings = get_settings()
            _process_store = LocalBlobStore.from_settings(settings)
        return _process_store


def set_blob_store(store: BlobStore | None) -> None:
    """Install (or, with None, forget) the process-wide blob store: app start-up and tests."""
    global _process_store
    with _process_store_lock:
        _process_store = store
