"""Attempt episodes and the manual's document types (issue 12, items 1 and 2): no schema change.

A revision of its own so the history says where these rules arrived, and so later revisions
have a fixed parent. Nothing in the schema needs to change:

- Episodes: the failure count restarts at the subject's latest withdrawal, which is already
  stored (``verifications.decided_at`` of a ``withdrawn`` case, and its ``status_events`` row);
  the daily cap counts ``attempts`` of the last 24 hours. Both are derived, never stored, so
  existing cases need no backfill and the history is untouched.
- Document types ``hmt_residence_permit`` (20 characters) and ``foreign_permanent_residence``
  (27) fit the VARCHAR(32) of ``verifications.document_type`` and
  ``verified_identities.document_type``, which carry no CHECK constraint (``db.str_enum``).

Revision ID: 0012_attempt_episodes
Revises: 0011_unit_code_attempts
"""

from __future__ import annotations

revision: str = "0012_attempt_episodes"
down_revision: str | None = "0011_unit_code_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
