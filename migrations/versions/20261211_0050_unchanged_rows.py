"""An import counts its rows that changed nothing (`unchanged_rows`, of its `mapped_rows`), and its event says so.

A file sent again, row for row, wrote nothing (an unchanged write writes no history and no event), yet its status,
`import csv`'s summary and `import.completed` said "200000 mapped" as for a file that rewrote every listing:
nothing told the two apart.

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-11 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050"
down_revision: str | None = "0049"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0045's function, the counts apart.
EVENT = """
CREATE OR REPLACE FUNCTION webhook_events_import() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind <> 'listing' AND webhook_store_listens(NEW.store_id) THEN
        INSERT INTO webhook_event (store_id, seq, type, payload)
        VALUES (NEW.store_id, 0, 'import.' || NEW.status, jsonb_build_object(
            'store_id', NEW.store_id,
            'import', jsonb_build_object(
                'id', NEW.id, 'source', NEW.source, 'status', NEW.status, 'total_rows', NEW.total_rows,
                'processed_rows', NEW.processed_rows, {counts}'error_rows', NEW.error_rows, 'error', NEW.error,
                'started_at', NEW.started_at, 'finished_at', NEW.finished_at),
            'occurred_at', statement_timestamp()));
    END IF;
    RETURN NULL;
END $$
"""
COUNTS = "'mapped_rows', NEW.mapped_rows, 'stale_rows', NEW.stale_rows, 'duplicate_rows', NEW.duplicate_rows, "
UNCHANGED = "'unchanged_rows', NEW.unchanged_rows, "


def upgrade() -> None:
    op.add_column(
        "import_batch", sa.Column("unchanged_rows", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )
    op.execute(EVENT.format(counts=COUNTS + UNCHANGED))


def downgrade() -> None:
    op.execute(EVENT.format(counts=COUNTS))
    op.drop_column("import_batch", "unchanged_rows")
