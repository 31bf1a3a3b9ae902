"""A listing's catalogue version: the source's product version, apart from its stock clock.

X-Series numbers every product and inventory change with one monotonic `version`; its catalogue rows were ordered
by `updated_at`, whose second is shared by two edits within it, so the older edit could win (an equal stamp
applies). Product rows now carry their version here (`catalog_version`); `source_version` stays the stock level's
clock, so a stock level read after a newer product change is not taken for an older one. NULL: the listing holds
no catalogue version, and `source_updated_at` orders its catalogue as before. Retired SKUs keep theirs with their
other clocks (migration 0030).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("store_product", sa.Column("source_catalog_version", sa.BigInteger()))
    op.add_column("retired_listing_sku", sa.Column("source_catalog_version", sa.BigInteger()))


def downgrade() -> None:
    """Drops the catalogue versions: catalogue rows are ordered by `updated_at` alone again."""
    op.drop_column("retired_listing_sku", "source_catalog_version")
    op.drop_column("store_product", "source_catalog_version")
