"""The vocabulary trigger probes search_term by its index whatever the statistics say.

search_term_collect (migration 0004) adds the words no committed row has yet with an anti-join on search_term.
Migration 0004 analyzes search_term when it creates it, so on a fresh install the table is known as empty, and the
trigger's plan (cached for the session) scans it per new word: a nested loop over every word of a statement times
every term. Measured on a fresh database: a second 20,000-product insert in one session took 119 s (1.2 billion
comparisons) instead of 1.3 s; an import that outgrows autovacuum's ANALYZE between its chunks pays it. With
sequential scans off inside the function the anti-join probes ix_search_term_term for each word (a hash join over
that index when the statistics are right): the same insert took 67 µs of CPU a product.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 15:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER FUNCTION search_term_collect() SET enable_seqscan = off")


def downgrade() -> None:
    op.execute("ALTER FUNCTION search_term_collect() RESET enable_seqscan")
