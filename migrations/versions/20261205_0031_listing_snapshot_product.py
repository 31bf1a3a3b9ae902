"""A listing event's `old` and `new` name the listing's product (`product_id`).

A listing moved to another product (a store re-coded its GTIN: mapping.py) emitted `listing.updated` with `old` and
`new` alike, the product's id being left out of both: a receiver could not tell what changed. `data.product` stays
the product after the change.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYLOAD = """
CREATE OR REPLACE FUNCTION webhook_listing_payload(listing jsonb, old_row jsonb, new_row jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'store_id', listing->>'store_id',
        'listing', jsonb_build_object('id', listing->>'id', 'sku', listing->>'sku'),
        'product', jsonb_build_object('id', listing->>'product_master_id', 'gtin', p.gtin, 'name', p.name),
        'old', {old},
        'new', {new},
        'occurred_at', statement_timestamp())
    FROM (SELECT 1) one LEFT JOIN product_master p ON p.id = (listing->>'product_master_id')::uuid
$$
"""
DROPPED = "ARRAY['id', 'store_id', 'product_master_id', 'created_at', 'updated_at']"


def _snapshot(row: str) -> str:
    return f"({row} - {DROPPED}) || jsonb_build_object('product_id', {row}->'product_master_id')"


def upgrade() -> None:
    op.execute(PAYLOAD.format(old=_snapshot("old_row"), new=_snapshot("new_row")))


def downgrade() -> None:
    op.execute(PAYLOAD.format(old=f"old_row - {DROPPED}", new=f"new_row - {DROPPED}"))
