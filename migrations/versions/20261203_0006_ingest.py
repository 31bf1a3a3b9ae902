"""Ingest: API keys, store currency, ingest connections and webhook dedup, import batches mapped by workers.

- api_key: hashed keys (sha256 hex), a store's or an admin's (store_id NULL), with scopes.
- store.currency: the store's default (no POS sends one with its items).
- store_product: the store's own title, the source's updated_at/version (newest wins), one listing per SKU.
- ingest_connection, ingest_delivery: webhook and POS connections (secrets SecretBox-encrypted), seen deliveries.
- import_batch / imported_product_raw: the statuses of the raw-first pipeline, a lease, per-status counts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SOURCES = "source IN ('lightspeed', 'vend', 'erply', 'shopify_pos', 'csv', 'webhook')"
NEW_SOURCES = "source IN ('api', 'csv', 'webhook', 'lightspeed-r', 'lightspeed-x', 'erply', 'shopify')"
OLD_BATCH_STATUS = "status IN ('pending', 'processing', 'completed', 'failed')"
NEW_BATCH_STATUS = "status IN ('receiving', 'pending', 'processing', 'completed', 'failed', 'aborted')"
OLD_ROW_STATUS = "status IN ('pending', 'matched', 'created', 'skipped', 'error')"
NEW_ROW_STATUS = "status IN ('pending', 'mapped', 'stale', 'duplicate', 'rejected')"
CONNECTION_SOURCES = "source IN ('webhook', 'lightspeed-r', 'lightspeed-x', 'erply', 'shopify')"


def _replace_check(table: str, name: str, condition: str) -> None:
    op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    op.create_check_constraint(name, table, condition)


def _create_api_key() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("key_prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=True),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("key_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_api_key_key_hash")),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"], name=op.f("fk_api_key_store_id_store"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_index(op.f("ix_api_key_store_id"), "api_key", ["store_id"], unique=False)


def _create_connections() -> None:
    op.create_table(
        "ingest_connection",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_location", sa.Text(), nullable=True),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("credentials_enc", sa.LargeBinary(), nullable=True),
        sa.Column(
            "config", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("cursor", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(CONNECTION_SOURCES, name=op.f("ck_ingest_connection_source")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_ingest_connection_store_id_store"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_connection")),
    )
    op.create_index(op.f("ix_ingest_connection_store_id"), "ingest_connection", ["store_id"], unique=False)


def _create_deliveries() -> None:
    op.create_table(
        "ingest_delivery",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("import_batch_id", sa.UUID(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["ingest_connection.id"],
            name=op.f("fk_ingest_delivery_connection_id_ingest_connection"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_ingest_delivery_import_batch_id_import_batch"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_delivery")),
        sa.UniqueConstraint("connection_id", "delivery_id", name="uq_ingest_delivery_connection_id_delivery_id"),
    )


def _alter_store_and_listings() -> None:
    op.create_index(
        "ix_product_master_gtin14",
        "product_master",
        [sa.text("lpad(gtin, 14, '0')")],
        postgresql_where=sa.text("gtin IS NOT NULL"),
    )
    op.add_column("store", sa.Column("currency", sa.CHAR(length=3), server_default="EUR", nullable=False))
    op.create_check_constraint("currency", "store", "currency ~ '^[A-Z]{3}$'")
    op.add_column("store_product", sa.Column("title", sa.Text(), nullable=True))
    op.add_column("store_product", sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("store_product", sa.Column("source_version", sa.BigInteger(), nullable=True))
    op.create_index(
        "uq_store_product_store_id_sku",
        "store_product",
        ["store_id", "sku"],
        unique=True,
        postgresql_where=sa.text("sku IS NOT NULL"),
    )


def _alter_batches() -> None:
    op.add_column("import_batch", sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False))
    op.add_column("import_batch", sa.Column("kind", sa.Text(), server_default="csv", nullable=False))
    op.add_column("import_batch", sa.Column("connection_id", sa.UUID(), nullable=True))
    op.add_column("import_batch", sa.Column("delivery_id", sa.Text(), nullable=True))
    op.add_column("import_batch", sa.Column("file_name", sa.Text(), nullable=True))
    for counter in ("mapped_rows", "stale_rows", "duplicate_rows", "attempts"):
        op.add_column("import_batch", sa.Column(counter, sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("import_batch", sa.Column("locked_by", sa.Text(), nullable=True))
    op.add_column("import_batch", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_import_batch_connection_id_ingest_connection"),
        "import_batch",
        "ingest_connection",
        ["connection_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_import_batch_connection_id"), "import_batch", ["connection_id"], unique=False)
    op.create_index(
        "ix_import_batch_claim",
        "import_batch",
        ["store_id", "seq"],
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.create_index(
        "ix_import_batch_finished_at",
        "import_batch",
        ["finished_at"],
        postgresql_where=sa.text("status IN ('completed', 'aborted')"),
    )
    op.execute("DELETE FROM import_batch")  # no writer existed before this revision: the old statuses go
    _replace_check("import_batch", "source", NEW_SOURCES)
    _replace_check("import_batch", "status", NEW_BATCH_STATUS)
    op.add_column("imported_product_raw", sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("imported_product_raw", sa.Column("matched_by", sa.Text(), nullable=True))
    _replace_check("imported_product_raw", "status", NEW_ROW_STATUS)
    op.create_index(
        "ix_imported_product_raw_pending",
        "imported_product_raw",
        ["import_batch_id", "row_number"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def upgrade() -> None:
    _create_api_key()
    _create_connections()
    _alter_store_and_listings()
    _alter_batches()
    _create_deliveries()


def downgrade() -> None:
    op.drop_table("ingest_delivery")
    op.execute("DELETE FROM import_batch")
    op.drop_index("ix_imported_product_raw_pending", table_name="imported_product_raw")
    _replace_check("imported_product_raw", "status", OLD_ROW_STATUS)
    op.drop_column("imported_product_raw", "matched_by")
    op.drop_column("imported_product_raw", "raw")
    _replace_check("import_batch", "status", OLD_BATCH_STATUS)
    _replace_check("import_batch", "source", OLD_SOURCES)
    op.drop_index("ix_import_batch_finished_at", table_name="import_batch")
    op.drop_index("ix_import_batch_claim", table_name="import_batch")
    op.drop_index(op.f("ix_import_batch_connection_id"), table_name="import_batch")
    op.drop_constraint(op.f("fk_import_batch_connection_id_ingest_connection"), "import_batch", type_="foreignkey")
    for column in ("locked_until", "locked_by", "attempts", "duplicate_rows", "stale_rows", "mapped_rows"):
        op.drop_column("import_batch", column)
    for column in ("file_name", "delivery_id", "connection_id", "kind", "seq"):
        op.drop_column("import_batch", column)
    op.drop_index("uq_store_product_store_id_sku", table_name="store_product")
    op.drop_index("ix_product_master_gtin14", table_name="product_master")
    for column in ("source_version", "source_updated_at", "title"):
        op.drop_column("store_product", column)
    op.drop_constraint(op.f("ck_store_currency"), "store", type_="check")
    op.drop_column("store", "currency")
    op.drop_index(op.f("ix_ingest_connection_store_id"), table_name="ingest_connection")
    op.drop_table("ingest_connection")
    op.drop_index(op.f("ix_api_key_store_id"), table_name="api_key")
    op.drop_table("api_key")
