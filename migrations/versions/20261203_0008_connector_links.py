"""Connector links: vendor ids that later messages name instead of the listing's SKU.

Shopify's `products/delete` names only the product; its listings (one per variant, keyed by inventory item id)
are found through the links recorded when the product was read.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_connector_link",
        sa.Column("connection_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["ingest_connection.id"],
            name=op.f("fk_ingest_connector_link_connection_id_ingest_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "external_id", name=op.f("pk_ingest_connector_link")),
    )
    op.create_index(
        op.f("ix_ingest_connector_link_connection_id_parent_id"),
        "ingest_connector_link",
        ["connection_id", "parent_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ingest_connector_link_connection_id_parent_id"), table_name="ingest_connector_link")
    op.drop_table("ingest_connector_link")
