"""A store's imports are listed newest first on an index of (store_id, seq).

`GET /v1/stores/{id}/imports` pages through a store's batches by `seq`. A till's writes make one batch each, so a
store may hold many; the index keyed by store_id alone would sort all of them for every page. The new index leads
with store_id too, so it serves what the old one did (the store's cascade, the look-ups by store) and replaces it.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 10:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_import_batch_store_seq", "import_batch", ["store_id", "seq"])
    op.drop_index("ix_import_batch_store_id", table_name="import_batch")


def downgrade() -> None:
    op.create_index("ix_import_batch_store_id", "import_batch", ["store_id"])
    op.drop_index("ix_import_batch_store_seq", table_name="import_batch")
