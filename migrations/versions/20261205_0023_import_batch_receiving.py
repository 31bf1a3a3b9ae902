"""Uploads left `receiving` are found by an index of their own.

A CSV upload's batch is committed `receiving` before its body arrives; an API process that stops (SIGKILL, a
crash) while receiving it left the batch `receiving` for ever. The import job now aborts those older than
PLINQY_INGEST_UPLOAD_TIMEOUT_S (ingest/sql/batches.sql, `abort_stale_uploads`); this partial index keeps that
look-up small however many batches the table holds (one per webhook delivery).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_import_batch_receiving", "import_batch", ["created_at"], postgresql_where=sa.text("status = 'receiving'")
    )


def downgrade() -> None:
    op.drop_index("ix_import_batch_receiving", table_name="import_batch")
