"""Facet labels: an index of the products' change stamps, carrying what facets count.

The API holds every product's category, brand and active flag in memory (engine/facet_labels.py) and refreshes
them every second from the rows stamped since (`updated_at`, moved by a trigger on every update); each facet
request also reads its own products stamped since. This index answers both as an index-only range scan, where
they would read every product row.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03 09:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_product_master_updated_at",
        "product_master",
        ["updated_at"],
        postgresql_include=["id", "category_id", "brand", "is_active"],
    )


def downgrade() -> None:
    op.drop_index("ix_product_master_updated_at", table_name="product_master")
