"""The search GIN indexes (full text, trigram) write straight into their trees: fastupdate = off.

With fastupdate on (PostgreSQL's default), inserts land in an unsorted pending list that every search scans
linearly until a vacuum merges it. Each embedding write is a non-HOT update of product_master (ai_vector and
ai_embedded_at are indexed), so the worker refills both lists to gin_pending_list_limit (4 MB, 4,000 rows)
between vacuums. Measured on the 100k-product benchmark catalogue: the hybrid keyword statement spent ~75 %
of its time there (p50 ~20 -> ~5 ms once merged). Writing straight into the tree costs each update a little
more; the worker writes tens of rows a second, searches run hundreds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GIN_INDEXES = ("ix_product_master_search_tsv", "ix_product_master_name_trgm")


def upgrade() -> None:
    for name in GIN_INDEXES:
        op.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
        # Turning it off does not merge what is already pending; this does.
        op.execute(f"SELECT gin_clean_pending_list('{name}'::regclass)")


def downgrade() -> None:
    for name in GIN_INDEXES:
        op.execute(f"ALTER INDEX {name} RESET (fastupdate)")
