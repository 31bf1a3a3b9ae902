"""A listing write through the API (`PUT`/`PATCH`/`DELETE …/listings/{sku}`, the batch endpoint) emits no import
event.

Each such write is recorded as a batch of its own (kind `listing`, mapped inline and answered with its outcome),
and each batch reaching `completed` emitted `import.completed`: a till sending its sales one PATCH at a time doubled
the traffic of every subscriber of `*`, with events that repeat what the write's own answer said. Batches of the
other kinds (a CSV file, a signed delivery, a POS sync), which are mapped after their answer, still emit them.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 13:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT = """
CREATE OR REPLACE FUNCTION webhook_events_import() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {condition} THEN
        INSERT INTO webhook_event (store_id, seq, type, payload)
        VALUES (NEW.store_id, 0, 'import.' || NEW.status, jsonb_build_object(
            'store_id', NEW.store_id,
            'import', jsonb_build_object(
                'id', NEW.id, 'source', NEW.source, 'status', NEW.status, 'total_rows', NEW.total_rows,
                'processed_rows', NEW.processed_rows, 'error_rows', NEW.error_rows, 'error', NEW.error,
                'started_at', NEW.started_at, 'finished_at', NEW.finished_at),
            'occurred_at', statement_timestamp()));
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(EVENT.format(condition="NEW.kind <> 'listing' AND webhook_store_listens(NEW.store_id)"))


def downgrade() -> None:
    op.execute(EVENT.format(condition="webhook_store_listens(NEW.store_id)"))
