"""An import event carries the counts `GET /v1/imports/{batch_id}` gives: `mapped_rows`, `stale_rows` and
`duplicate_rows` beside `total_rows`, `processed_rows` and `error_rows`.

`import.completed` said how many rows were processed and rejected, not how many were applied: a receiver could not
tell a file of new stock from one whose rows were all stale or duplicates without asking the API.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-08 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0045"
down_revision: str | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0026's function, the counts apart.
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


def upgrade() -> None:
    op.execute(EVENT.format(counts=COUNTS))


def downgrade() -> None:
    op.execute(EVENT.format(counts=""))
