"""`import.failed` says how many of its rows were never processed (`unprocessed_rows`, total less processed).

A failed import's event carried `error_rows: 0`, the same as a clean import's, with nothing saying that its rows
were never mapped (neither applied nor rejected). `import.completed` carries it too, 0, so the shape is one.

Revision ID: 0052
Revises: 0051
Create Date: 2026-12-12 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0052"
down_revision: str | None = "0051"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0050's function, with or without the rows never processed.
EVENT = """
CREATE OR REPLACE FUNCTION webhook_events_import() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind <> 'listing' AND webhook_store_listens(NEW.store_id) THEN
        INSERT INTO webhook_event (store_id, seq, type, payload)
        VALUES (NEW.store_id, 0, 'import.' || NEW.status, jsonb_build_object(
            'store_id', NEW.store_id,
            'import', jsonb_build_object(
                'id', NEW.id, 'source', NEW.source, 'status', NEW.status, 'total_rows', NEW.total_rows,
                'processed_rows', NEW.processed_rows, {unprocessed}'mapped_rows', NEW.mapped_rows,
                'stale_rows', NEW.stale_rows, 'duplicate_rows', NEW.duplicate_rows,
                'unchanged_rows', NEW.unchanged_rows, 'error_rows', NEW.error_rows, 'error', NEW.error,
                'started_at', NEW.started_at, 'finished_at', NEW.finished_at),
            'occurred_at', statement_timestamp()));
    END IF;
    RETURN NULL;
END $$
"""
UNPROCESSED = "'unprocessed_rows', NEW.total_rows - NEW.processed_rows, "


def upgrade() -> None:
    op.execute(EVENT.format(unprocessed=UNPROCESSED))


def downgrade() -> None:
    op.execute(EVENT.format(unprocessed=""))
