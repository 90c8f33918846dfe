"""Work units' keys lose the identity review scope: ``reviewer`` becomes ``unit_reviewer`` (issue 11).

Until now a unit was registered with a ``reviewer`` key, which also opened the identity review
queue (every client's cases, full numbers, photos). Keys named by ``work_units.reviewer_key_id``
are narrowed; every other key keeps its scopes.

Revision ID: 0008_unit_reviewer_scope
Revises: 0007_review_assignment
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_unit_reviewer_scope"
down_revision: str | None = "0007_review_assignment"
branch_labels = None
depends_on = None


def _replace_scope(old: str, new: str) -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT api_keys.id, api_keys.scopes FROM api_keys"
            " JOIN work_units ON work_units.reviewer_key_id = api_keys.id"
        )
    ).all()
    for key_id, scopes in rows:
        parts = [new if scope == old else scope for scope in scopes.split(",") if scope]
        narrowed = ",".join(dict.fromkeys(parts))
        if narrowed != scopes:
            connection.execute(
                sa.text("UPDATE api_keys SET scopes = :scopes WHERE id = :id"), {"scopes": narrowed, "id": key_id}
            )


def upgrade() -> None:
    _replace_scope("reviewer", "unit_reviewer")


def downgrade() -> None:
    _replace_scope("unit_reviewer", "reviewer")
