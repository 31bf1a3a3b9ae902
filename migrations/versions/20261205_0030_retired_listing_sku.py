"""The SKU a deleted listing had, kept when a new SKU of its product takes the listing over.

A POS that recreates an item under a new id makes the new SKU take over the store's deleted listing of the product
(mapping.py). The old SKU then named no listing: a late write to it (a retry queue, a delayed webhook), older than
its delete, created a second, sellable product instead of ending `stale`. Its clocks stay here, and a write to it
is compared with them as with a listing's.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 22:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE retired_listing_sku (
        store_id uuid NOT NULL,
        sku text NOT NULL,
        source_updated_at timestamptz,
        source_version bigint,
        retired_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_retired_listing_sku PRIMARY KEY (store_id, sku),
        CONSTRAINT fk_retired_listing_sku_store_id_store FOREIGN KEY (store_id)
            REFERENCES store (id) ON DELETE CASCADE)"""
    )


def downgrade() -> None:
    """For development only: drops the retired SKUs and their clocks. Upgrading again starts with none: a late
    write to a retired SKU creates a second, sellable product again. In production, restore a backup instead."""
    op.execute("DROP TABLE retired_listing_sku")
