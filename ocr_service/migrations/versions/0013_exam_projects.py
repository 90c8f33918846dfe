"""Exam projects, one declaration per subject and project, declarations without a verified identity (issue 12).

``exam_projects`` holds each exam (kind, year, title) and its declaration window. Declarations
get ``project_id`` and a unique index on (client key, subject, project); existing declarations
keep ``project_id`` NULL (NULLs never collide). Military and HK/Macau/Taiwan applicants may
declare without a verified identity (003, 其他身份人员): ``identity_id`` and ``verification_id``
become nullable, and ``applicant_category``/``identity_review*`` record who they are and the
unit's check.

SQLite cannot drop a NOT NULL in place, and batch mode would recreate ``declarations``, whose
``DROP TABLE`` with foreign keys on cascades into its events and attachments. The constraint is
dropped the way SQLite documents for removing NOT NULL constraints (edit the table's stored
``CREATE TABLE`` under ``writable_schema``, bump ``schema_version``): no row is copied or lost.

Revision ID: 0013_exam_projects
Revises: 0012_attempt_episodes
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision: str = "0013_exam_projects"
down_revision: str | None = "0012_attempt_episodes"
branch_labels = None
depends_on = None

_NULLABLE = ("identity_id", "verification_id")


def _sqlite_set_not_null(connection, columns: tuple[str, ...], not_null: bool) -> None:
    sql = connection.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'declarations'")
    ).scalar_one()
    for column in columns:
        pattern = re.compile(rf'(\b"?{column}"?\s+VARCHAR\(36\))(\s+NOT NULL)?', re.IGNORECASE)
        sql, count = pattern.subn(lambda m: m.group(1) + (" NOT NULL" if not_null else ""), sql, count=1)
        if count != 1:
            raise RuntimeError(f"declarations.{column} not found in the stored CREATE TABLE")
    version = connection.execute(sa.text("PRAGMA schema_version")).scalar_one()
    connection.execute(sa.text("PRAGMA writable_schema = ON"))
    connection.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'declarations'"), {"sql": sql}
    )
    connection.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    connection.execute(sa.text("PRAGMA writable_schema = OFF"))


def upgrade() -> None:
    op.create_table(
        "exam_projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exam_projects")),
        sa.UniqueConstraint("code", name=op.f("uq_exam_projects_code")),
    )
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    # plain ALTER TABLE ... ADD COLUMN (also on SQLite): batch mode would copy and drop declarations
    if sqlite:  # Alembic adds no constraint on SQLite; the column's own REFERENCES clause does it
        connection.execute(
            sa.text(
                "ALTER TABLE declarations ADD COLUMN project_id VARCHAR(36) "
                "CONSTRAINT fk_declarations_project_id_exam_projects REFERENCES exam_projects (id)"
            )
        )
    else:
        op.add_column(
            "declarations",
            sa.Column(
                "project_id",
                sa.String(length=36),
                sa.ForeignKey("exam_projects.id", name=op.f("fk_declarations_project_id_exam_projects")),
                nullable=True,
            ),
        )
    op.add_column("declarations", sa.Column("applicant_category", sa.String(length=32), nullable=True))
    op.add_column("declarations", sa.Column("identity_review", sa.String(length=32), nullable=True))
    op.add_column("declarations", sa.Column("identity_reviewed_by", sa.String(length=200), nullable=True))
    op.add_column("declarations", sa.Column("identity_reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_declarations_project_id"), "declarations", ["project_id"], unique=False)
    op.create_index(
        "uq_declarations_subject_project", "declarations", ["client_key_id", "subject_id", "project_id"], unique=True
    )
    if sqlite:
        _sqlite_set_not_null(connection, _NULLABLE, not_null=False)
    else:
        for column in _NULLABLE:
            op.alter_column("declarations", column, existing_type=sa.String(length=36), nullable=True)


def downgrade() -> None:
    connection = op.get_bind()
    # declarations made without a verified identity cannot survive the NOT NULL coming back
    connection.execute(sa.text("DELETE FROM declarations WHERE identity_id IS NULL OR verification_id IS NULL"))
    if connection.dialect.name == "sqlite":
        _sqlite_set_not_null(connection, _NULLABLE, not_null=True)
    else:
        for column in _NULLABLE:
            op.alter_column("declarations", column, existing_type=sa.String(length=36), nullable=False)
    op.drop_index("uq_declarations_subject_project", table_name="declarations")
    op.drop_index(op.f("ix_declarations_project_id"), table_name="declarations")
    for column in ("identity_reviewed_at", "identity_reviewed_by", "identity_review", "applicant_category"):
        op.drop_column("declarations", column)
    # project_id carries a foreign key: SQLite's DROP COLUMN refuses it, so its values are cleared
    # and, on SQLite only, the column stays (unused) in a downgraded database
    if connection.dialect.name == "sqlite":
        connection.execute(sa.text("UPDATE declarations SET project_id = NULL"))
    else:
        op.drop_column("declarations", "project_id")
    op.drop_table("exam_projects")
