"""Column types that store personal data encrypted: names, sexes, ethnicities, birth dates, scan results.

Each column is declared with the name of what it holds (``EncryptedText("verifications.claim_name")``)
and stored as AES-256-GCM ciphertext (``crypto.Cipher``, the process-wide ``get_cipher()``) with
that name as associated data, so a ciphertext copied into another column fails to decrypt.
Service code reads and writes plain ``str``/``date``/``dict`` values; only the database sees bytes.

What these columns give up: SQL cannot compare, sort or search them. None of them is looked
up by value today (numbers are, through their blind index ``*_index``); a column that needs a
lookup gets a blind index beside it, never a clear copy.

Unlike the hand-encrypted numbers (``claim_number_enc``), the associated data names the column
but not the row (a type decorator never sees the row): moving a ciphertext between two rows of
the same column is not detected. The numbers, the riskier value, keep their per-row binding.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

from ocr_service.crypto import get_cipher


class _Encrypted(TypeDecorator):
    """A LargeBinary column whose value is encrypted on the way in and decrypted on the way out."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column
        self._associated_data = column.encode("utf-8")

    def _to_bytes(self, value: Any) -> bytes:
        raise NotImplementedError

    def _from_bytes(self, raw: bytes) -> Any:
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect) -> bytes | None:
        if value is None:
            return None
        return get_cipher().encrypt(self._to_bytes(value), self._associated_data)

    def process_result_value(self, value: bytes | None, dialect) -> Any:
        if value is None:
            return None
        return self._from_bytes(get_cipher().decrypt(bytes(value), self._associated_data))

    def __repr__(self) -> str:  # what Alembic's autogenerate would render
        return f"{type(self).__name__}({self.column!r})"


class EncryptedText(_Encrypted):
    """A ``str`` stored encrypted (UTF-8)."""

    cache_ok = True  # SQLAlchemy reads it from each class itself; the state is the column name

    def _to_bytes(self, value: str) -> bytes:
        return str(value).encode("utf-8")

    def _from_bytes(self, raw: bytes) -> str:
        return raw.decode("utf-8")


class EncryptedDate(_Encrypted):
    """A ``date`` stored encrypted (ISO 8601)."""

    cache_ok = True  # SQLAlchemy reads it from each class itself; the state is the column name

    def _to_bytes(self, value: date) -> bytes:
        return value.isoformat().encode("ascii")

    def _from_bytes(self, raw: bytes) -> date:
        return date.fromisoformat(raw.decode("ascii"))


class EncryptedJSON(_Encrypted):
    """A JSON document (dict or list) stored encrypted; Python None is SQL NULL."""

    cache_ok = True  # SQLAlchemy reads it from each class itself; the state is the column name

    def _to_bytes(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _from_bytes(self, raw: bytes) -> Any:
        return json.loads(raw)
