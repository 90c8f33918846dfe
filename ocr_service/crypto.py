"""Encryption of personal data at rest: the master key, AES-256-GCM, and blind indexes.

One 32-byte master key (``OCR_ENCRYPTION_KEY``, or the key file) protects everything. Two
keys are derived from it with HKDF-SHA256 under different labels: the AES-256-GCM key that
encrypts document numbers and images, and the HMAC-SHA256 key of the blind index (a keyed
hash that lets the service look a number up by equality without decrypting every row).
Deriving them separately means a leaked index key reveals nothing about the ciphertexts.

Ciphertext layout: ``version (1 byte) | nonce (12 bytes, random) | ciphertext + GCM tag``.
The version byte is authenticated too, so a future scheme (key rotation) can coexist.

Callers always pass associated data naming what the ciphertext belongs to (for example
``b"verifications.claim_number:" + verification_id``): a ciphertext copied into another row
or column then fails to decrypt instead of revealing the wrong person's number.

Key material is never logged, printed or put into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from ocr_service.config import Settings

log = structlog.get_logger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = 1
_HEADER_BYTES = 1 + NONCE_BYTES
_TAG_BYTES = 16

_ENCRYPTION_KEY_LABEL = b"ocr-service/v1/aes-256-gcm"
_INDEX_KEY_LABEL = b"ocr-service/v1/blind-index-hmac-sha256"


class EncryptionKeyError(RuntimeError):
    """The master key is missing, unreadable or malformed: the service must not start."""


class DecryptionError(ValueError):
    """A ciphertext did not authenticate: tampered, truncated, wrong key or wrong associated data."""


def _derive(master_key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(master_key)


def normalize_for_index(value: str) -> str:
    """The form a value is indexed in: NFKC (full-width digits and Ｘ become ASCII), no spaces, upper case."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


class Cipher:
    """AES-256-GCM encryption and the blind index, both keyed from one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise EncryptionKeyError(f"the encryption key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._aead = AESGCM(_derive(master_key, _ENCRYPTION_KEY_LABEL))
        self._index_key = _derive(master_key, _INDEX_KEY_LABEL)

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        return cls(load_or_create_key(settings))

    def __repr__(self) -> str:  # never the key
        return "Cipher(AES-256-GCM)"

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        header = bytes([FORMAT_VERSION]) + os.urandom(NONCE_BYTES)
        return header + self._aead.encrypt(header[1:], plaintext, header[:1] + associated_data)

    def decrypt(self, token: bytes, associated_data: bytes) -> bytes:
        if len(token) < _HEADER_BYTES + _TAG_BYTES:
            raise DecryptionError("ciphertext too short")
        if token[0] != FORMAT_VERSION:
            raise DecryptionError(f"unknown ciphertext version {token[0]}")
        try:
            return self._aead.decrypt(token[1:_HEADER_BYTES], token[_HEADER_BYTES:], token[:1] + associated_data)
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    def encrypt_text(self, text: str, associated_data: bytes) -> bytes:
        return self.encrypt(text.encode("utf-8"), associated_data)

    def decrypt_text(self, token: bytes, associated_data: bytes) -> str:
        return self.decrypt(token, associated_data).decode("utf-8")

    def blind_index(self, value: str) -> str:
        """HMAC-SHA256 (hex) of the normalised value: equal numbers give equal indexes, nothing else leaks.

        A number typed with ASCII digits and the same number in full-width digits index the same.
        """
        return hmac.new(self._index_key, normalize_for_index(value).encode("utf-8"), hashlib.sha256).hexdigest()


# --- the master key --------------------------------------------------------------------------


def generate_key() -> str:
    """A new master key, base64 (what ``OCR_ENCRYPTION_KEY`` and the key file hold)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(encoded: str, source: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(f"{source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise EncryptionKeyError(f"{source} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def load_or_create_key(settings: Settings, *, create: bool | None = None) -> bytes:
    """The master key: ``OCR_ENCRYPTION_KEY`` if set, else the key file.

    A missing key file is generated (0600, atomically, race-free between processes) only when
    ``create`` is true; by default that is the embedded single-machine setup (SQLite). With
    PostgreSQL several machines share the data, and a key generated on one of them would make
    the others unable to read it, so a missing key there is an error.
    Raises :class:`EncryptionKeyError` with a message fit for the operator (never the key).
    """
    if settings.encryption_key:
        return _decode_key(settings.encryption_key, "OCR_ENCRYPTION_KEY")
    path = settings.effective_key_file
    if create is None:
        create = settings.effective_database_url.startswith("sqlite")
    if not path.exists() and create:
        _create_key_file(path)
    try:
        encoded = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise EncryptionKeyError(
            f"no encryption key: set OCR_ENCRYPTION_KEY or put a base64 32-byte key in {path} "
            "(the same key on every machine that shares the database)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise EncryptionKeyError(f"cannot read the encryption key file {path}: {reason}") from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("key_file_permissions_too_open", path=str(path), mode=oct(mode), expected="0o600")
    return _decode_key(encoded, f"the encryption key file {path}")


def _create_key_file(path: Path) -> None:
    # Written to a private temp file, then hard-linked into place: link() refuses to replace an
    # existing file, so when serve and a worker start together exactly one key wins and the
    # other process reads that one.
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(generate_key() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)
        except FileExistsError:
            return
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise EncryptionKeyError(f"cannot create the encryption key file {path}: {exc.strerror}") from None
    log.info("key_file_created", path=str(path))


# --- the process-wide cipher -------------------------------------------------------------------

_process_cipher: Cipher | None = None
_process_cipher_lock = threading.Lock()


def get_cipher(settings: Settings | None = None) -> Cipher:
    """This process's :class:`Cipher`, built on first use from ``settings`` (or ``get_settings()``)."""
    global _process_cipher
    with _process_cipher_lock:
        if _process_cipher is None:
            if settings is None:
                from ocr_service.config import get_settings

                settings = get_settings()
            _process_cipher = Cipher.from_settings(settings)
        return _process_cipher


def set_cipher(cipher: Cipher | None) -> None:
    """Install (or, with None, forget) the process-wide cipher: app start-up and tests."""
    global _process_cipher
    with _process_cipher_lock:
        _process_cipher = cipher
