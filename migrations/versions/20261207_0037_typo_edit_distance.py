"""Typo correction counts the edits: `fuzzystrmatch` for `levenshtein_less_equal`.

The keyword side corrected an unknown word to any vocabulary word of trigram similarity past the threshold and a
near length: `flavor` became `flask` and `flash` (three edits), `present` became `press`, and Vacuum Flasks and USB
Flash Drives came up for `flavor`. A correction is now also within an edit distance bound by the typed word's
length (engine/sql/search.sql, rank_keyword); PostgreSQL's contrib `fuzzystrmatch` computes it, stopping once
past the bound.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")


def downgrade() -> None:
    op.execute("DROP EXTENSION IF EXISTS fuzzystrmatch")
