"""Search UX speed: a covering index of the active products' labels.

Suggestions in a narrow scope (a few stores) read the name, brand and category of every product those stores stock
(~1.1k a store): a primary-key probe and a heap fetch each (4 buffers). This partial index, keyed by id and
carrying those columns, answers the probes index-only (search_tsv, which holds the description, stays out: only
the few word-completion candidates read it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_product_master_active_labels",
        "product_master",
        ["id"],
        postgresql_include=["name", "brand", "category_id"],
        postgresql_where=sa.text("is_active"),
    )


def downgrade() -> None:
    op.drop_index("ix_product_master_active_labels", table_name="product_master")
