"""Personal data at rest: names, birth dates, scan results, audit details, file names encrypted (issue 11).

The columns become binary and hold AES-256-GCM ciphertext (``ocr_service.encrypted_types``,
associated data ``b"<table>.<column>"``); existing rows are encrypted in place with the
service's key (``crypto.get_cipher()``: ``OCR_ENCRYPTION_KEY`` or the key file), which is only
loaded when there are rows to convert. The downgrade decrypts them back.

SQLite cannot change a column's type in place, and Alembic's batch mode would recreate the
tables, whose ``DROP TABLE`` with foreign keys on cascades into (or is refused by) the child
tables. So on SQLite each column is replaced: a new BLOB column is added (``NOT NULL DEFAULT
x''`` where the column is required: SQLite adds a required column only with a default), filled,
the old column dropped (``secure_delete`` zeroes the freed plaintext) and the new one renamed.
PostgreSQL changes the type in place (``USING convert_to``) and then rewrites the values; its
old row versions hold the plaintext until the table is vacuumed (``VACUUM FULL`` to be sure).

Revision ID: 0009_pii_at_rest
Revises: 0008_unit_reviewer_scope
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009_pii_at_rest"
down_revision: str | None = "0008_unit_reviewer_scope"
branch_labels = None
depends_on = None

# (table, column, kind, type before, nullable)
COLUMNS: list[tuple[str, str, str, sa.types.TypeEngine, bool]] = [
    ("verifications", "claim_name", "text", sa.String(length=200), False),
    ("attempts", "result", "json", sa.JSON(none_as_null=True), True),
    ("verified_identities", "name", "text", sa.String(length=200), False),
    ("verified_identities", "sex", "text", sa.String(length=8), True),
    ("verified_identities", "ethnicity", "text", sa.String(length=32), True),
    ("verified_identities", "birth_date", "date", sa.Date(), True),
    ("declarations", "applicant_name", "text", sa.String(length=200), False),
    ("declarations", "applicant_sex", "text", sa.String(length=8), True),
    ("declarations", "applicant_ethnicity", "text", sa.String(length=32), True),
    ("declaration_attachments", "filename", "text", sa.String(length=200), False),
    ("review_cases", "decision_comment", "text", sa.Text(), True),
    ("review_audit_log", "details", "json", sa.JSON(none_as_null=True), False),
]

_PG_TYPES = {"text": "text", "json": "json", "date": "date"}


def _serialize(kind: str, value: Any) -> bytes:
    """The plaintext an ``encrypted_types`` column encrypts (kept here so the migration stays fixed)."""
    if kind == "json":
        document = json.loads(value) if isinstance(value, str | bytes) else value
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if kind == "date":
        return (value.isoformat() if isinstance(value, date) else str(value)).encode("ascii")
    return str(value).encode("utf-8")


def _cipher():
    from ocr_service.crypto import get_cipher

    return get_cipher()


def _rows(connection, table: str, column: str) -> list[tuple[Any, Any]]:
    return [
        (row[0], row[1])
        for row in connection.execute(sa.text(f'SELECT id, "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'))
    ]


def _write(connection, table: str, column: str, values: list[tuple[Any, Any]]) -> None:
    statement = sa.text(f'UPDATE "{table}" SET "{column}" = :value WHERE id = :id')
    for row_id, value in values:
        connection.execute(statement, {"id": row_id, "value": value})


def _sqlite_replace(connection, table: str, column: str, new_type: str, required: bool, values) -> None:
    temporary = f"{column}__new"
    default = {"BLOB": "x''", "JSON": "'{}'"}.get(new_type, "''")
    constraint = f" NOT NULL DEFAULT {default}" if required else ""
    connection.execute(sa.text(f'ALTER TABLE "{table}" ADD COLUMN "{temporary}" {new_type}{constraint}'))
    _write(connection, table, temporary, values)
    connection.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
    connection.execute(sa.text(f'ALTER TABLE "{table}" RENAME COLUMN "{temporary}" TO "{column}"'))


def upgrade() -> None:
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.execute(sa.text("PRAGMA secure_delete = ON"))
    cipher = None
    for table, column, kind, _old_type, nullable in COLUMNS:
        rows = _rows(connection, table, column)
        if rows and cipher is None:
            cipher = _cipher()
        associated_data = f"{table}.{column}".encode()
        encrypted = [(row_id, cipher.encrypt(_serialize(kind, value), associated_data)) for row_id, value in rows]
        if sqlite:
            _sqlite_replace(connection, table, column, "BLOB", not nullable, encrypted)
        else:
            op.alter_column(
                table,
                column,
                type_=sa.LargeBinary(),
                existing_type=_old_type,
                existing_nullable=nullable,
                postgresql_using=f"convert_to(\"{column}\"::text, 'UTF8')",
            )
            _write(connection, table, column, encrypted)


def downgrade() -> None:
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.execute(sa.text("PRAGMA secure_delete = ON"))
    cipher = None
    for table, column, kind, old_type, nullable in COLUMNS:
        rows = _rows(connection, table, column)
        if rows and cipher is None:
            cipher = _cipher()
        associated_data = f"{table}.{column}".encode()
        plain = [(row_id, cipher.decrypt(bytes(value), associated_data)) for row_id, value in rows]
        if sqlite:
            sqlite_type = old_type.compile(dialect=connection.dialect)
            decoded = [(row_id, value.decode("utf-8")) for row_id, value in plain]
            _sqlite_replace(connection, table, column, sqlite_type, not nullable, decoded)
        else:
            _write(connection, table, column, plain)
            op.alter_column(
                table,
                column,
                type_=old_type,
                existing_type=sa.LargeBinary(),
                existing_nullable=nullable,
                postgresql_using=f"convert_from(\"{column}\", 'UTF8')::{_PG_TYPES[kind]}",
            )
