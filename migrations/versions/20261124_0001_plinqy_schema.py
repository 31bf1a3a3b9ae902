"""The whole Plinqy schema: extensions, 16 tables, their indexes and triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 16:22:08.924730
"""

from collections.abc import Sequence
from pathlib import Path

import pgvector.sqlalchemy
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql

EXTENSIONS = ("uuid-ossp", "citext", "postgis", "vector", "pg_trgm")
TRIGGER_SQL = (Path(__file__).resolve().parent.parent / "triggers.sql").read_text()
# Frozen here rather than read from the live metadata, so this migration never changes after release.
TABLES_WITH_UPDATED_AT = (
    "app_user",
    "store",
    "category",
    "product_master",
    "store_product",
    "product_variant",
    "product_image",
    "import_batch",
    "ai_task",
    "store_webhook",
    "feature_flag",
)
SQL_FUNCTIONS = (
    "set_updated_at()",
    "enqueue_embedding_on_insert()",
    "enqueue_embedding_on_update()",
    "enqueue_embedding_on_category_change()",
    "store_product_after_insert()",
    "store_product_after_update()",
    "store_product_after_delete()",
    "category_path(bigint)",
    "ai_task_other_pending(uuid, bigint)",
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for ext in EXTENSIONS:
        op.execute(f'CREATE EXTENSION IF NOT EXISTS "{ext}"')
    op.create_table(
        "app_user",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("email", postgresql.CITEXT(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), server_default="customer", nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("position('@' in email) > 1", name=op.f("ck_app_user_email")),
        sa.CheckConstraint(
            "role IN ('admin', 'store_owner', 'store_staff', 'customer')", name=op.f("ck_app_user_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
    )
    op.create_table(
        "category",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_category_name")),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name=op.f("ck_category_not_own_parent")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["category.id"], name=op.f("fk_category_parent_id_category"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category")),
        sa.UniqueConstraint("parent_id", "name", name="uq_category_parent_id_name"),
    )
    op.create_index(op.f("ix_category_parent_id"), "category", ["parent_id"], unique=False)
    op.create_table(
        "feature_flag",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("key", postgresql.CITEXT(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("rollout_percent", sa.SmallInteger(), server_default=sa.text("100"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("rollout_percent BETWEEN 0 AND 100", name=op.f("ck_feature_flag_rollout_percent")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_flag")),
        sa.UniqueConstraint("key", name=op.f("uq_feature_flag_key")),
    )
    op.create_table(
        "history_store_product",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("store_product_id", sa.UUID(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("product_master_id", sa.UUID(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("old_row", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new_row", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("changed_by", sa.Text(), server_default=sa.text("current_user"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "operation IN ('INSERT', 'UPDATE', 'DELETE')", name=op.f("ck_history_store_product_operation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_store_product")),
    )
    op.create_index(
        op.f("ix_history_store_product_store_product_id"), "history_store_product", ["store_product_id"], unique=False
    )
    op.create_table(
        "inventory_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("store_product_id", sa.UUID(), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("product_master_id", sa.UUID(), nullable=False),
        sa.Column("old_quantity", sa.Integer(), nullable=True),
        sa.Column("new_quantity", sa.Integer(), nullable=True),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="update", nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_event")),
    )
    op.create_index(op.f("ix_inventory_event_store_product_id"), "inventory_event", ["store_product_id"], unique=False)
    op.create_table(
        "search_index_queue",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.UUID(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "entity_type IN ('store_product', 'product_master', 'store')",
            name=op.f("ck_search_index_queue_entity_type"),
        ),
        sa.CheckConstraint("operation IN ('INSERT', 'UPDATE', 'DELETE')", name=op.f("ck_search_index_queue_operation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_index_queue")),
    )
    op.create_index(
        "ix_search_index_queue_unprocessed",
        "search_index_queue",
        ["id"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.create_table(
        "system_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "level IN ('debug', 'info', 'warning', 'error', 'critical')", name=op.f("ck_system_log_level")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_log")),
    )
    op.create_index("ix_system_log_created_at", "system_log", ["created_at"], unique=False)
    op.create_table(
        "product_master",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("brand", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category_id", sa.BigInteger(), nullable=True),
        sa.Column("gtin", sa.Text(), nullable=True),
        sa.Column(
            "attributes", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("ai_vector", pgvector.sqlalchemy.vector.VECTOR(dim=384), nullable=True),
        sa.Column("ai_model", sa.Text(), nullable=True),
        sa.Column("ai_text_hash", sa.Text(), nullable=True),
        sa.Column("ai_embedded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "search_tsv",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || setweight(to_tsvector('simple'::regconfig, coalesce(brand, '') || ' ' || coalesce(gtin, '')), 'B') || setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A') || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("gtin IS NULL OR gtin ~ '^[0-9]{8,14}$'", name=op.f("ck_product_master_gtin")),
        sa.CheckConstraint("jsonb_typeof(attributes) = 'object'", name=op.f("ck_product_master_attributes")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_product_master_name")),
        sa.ForeignKeyConstraint(
            ["category_id"], ["category.id"], name=op.f("fk_product_master_category_id_category"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_master")),
        sa.UniqueConstraint("gtin", name=op.f("uq_product_master_gtin")),
    )
    op.create_index(
        "ix_product_master_ai_vector_hnsw",
        "product_master",
        ["ai_vector"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"ai_vector": "vector_cosine_ops"},
    )
    op.create_index(op.f("ix_product_master_category_id"), "product_master", ["category_id"], unique=False)
    op.create_index(
        "ix_product_master_name_trgm",
        "product_master",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_product_master_search_tsv", "product_master", ["search_tsv"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "store",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", postgresql.CITEXT(), nullable=True),
        sa.Column("store_type", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("country_code", sa.Text(), nullable=True),
        sa.Column(
            "location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("website", sa.Text(), nullable=True),
        sa.Column("opening_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("country_code IS NULL OR country_code ~ '^[A-Z]{2}$'", name=op.f("ck_store_country_code")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_store_name")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name=op.f("fk_store_owner_id_app_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store")),
        sa.UniqueConstraint("slug", name=op.f("uq_store_slug")),
    )
    op.create_index("ix_store_location", "store", ["location"], unique=False, postgresql_using="gist")
    op.create_index(op.f("ix_store_owner_id"), "store", ["owner_id"], unique=False)
    op.create_table(
        "ai_task",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("product_master_id", sa.UUID(), nullable=True),
        sa.Column("kind", sa.Text(), server_default="embed_product", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("priority", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status <> 'running' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)", name=op.f("ck_ai_task_lease")
        ),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name=op.f("ck_ai_task_status")),
        sa.CheckConstraint("attempts >= 0 AND max_attempts > 0", name=op.f("ck_ai_task_attempts")),
        sa.ForeignKeyConstraint(
            ["product_master_id"],
            ["product_master.id"],
            name=op.f("fk_ai_task_product_master_id_product_master"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_task")),
    )
    op.create_index(
        "ix_ai_task_claim",
        "ai_task",
        [sa.literal_column("priority DESC"), "run_after", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_ai_task_failed", "ai_task", ["id"], unique=False, postgresql_where=sa.text("status = 'failed'"))
    op.create_index(
        "ix_ai_task_lease", "ai_task", ["locked_until"], unique=False, postgresql_where=sa.text("status = 'running'")
    )
    op.create_index("ix_ai_task_product_master_id", "ai_task", ["product_master_id"], unique=False)
    op.create_index(
        "uq_ai_task_one_pending_per_product",
        "ai_task",
        ["product_master_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "import_batch",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("total_rows", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("processed_rows", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_rows", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "source IN ('lightspeed', 'vend', 'erply', 'shopify_pos', 'csv', 'webhook')",
            name=op.f("ck_import_batch_source"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')", name=op.f("ck_import_batch_status")
        ),
        sa.CheckConstraint(
            "total_rows >= 0 AND processed_rows >= 0 AND error_rows >= 0", name=op.f("ck_import_batch_row_counts")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_import_batch_created_by_app_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_import_batch_store_id_store"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batch")),
    )
    op.create_index(op.f("ix_import_batch_store_id"), "import_batch", ["store_id"], unique=False)
    op.create_table(
        "product_image",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("product_master_id", sa.UUID(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("url ~ '^(https?://|/)'", name=op.f("ck_product_image_url")),
        sa.ForeignKeyConstraint(
            ["product_master_id"],
            ["product_master.id"],
            name=op.f("fk_product_image_product_master_id_product_master"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_image")),
    )
    op.create_index(op.f("ix_product_image_product_master_id"), "product_image", ["product_master_id"], unique=False)
    op.create_table(
        "product_variant",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("product_master_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=True),
        sa.Column("gtin", sa.Text(), nullable=True),
        sa.Column(
            "attributes", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("gtin IS NULL OR gtin ~ '^[0-9]{8,14}$'", name=op.f("ck_product_variant_gtin")),
        sa.ForeignKeyConstraint(
            ["product_master_id"],
            ["product_master.id"],
            name=op.f("fk_product_variant_product_master_id_product_master"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_variant")),
        sa.UniqueConstraint("gtin", name=op.f("uq_product_variant_gtin")),
    )
    op.create_index(
        op.f("ix_product_variant_product_master_id"), "product_variant", ["product_master_id"], unique=False
    )
    op.create_table(
        "store_product",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("product_master_id", sa.UUID(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_store_product_currency")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_store_product_price")),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_store_product_quantity")),
        sa.ForeignKeyConstraint(
            ["product_master_id"],
            ["product_master.id"],
            name=op.f("fk_store_product_product_master_id_product_master"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_store_product_store_id_store"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_product")),
        sa.UniqueConstraint("store_id", "product_master_id", name="uq_store_product_store_id_product_master_id"),
    )
    op.create_index(
        "ix_store_product_in_stock",
        "store_product",
        ["product_master_id", "store_id"],
        unique=False,
        postgresql_include=["price", "quantity"],
        postgresql_where=sa.text("is_active AND quantity > 0"),
    )
    op.create_index(
        "ix_store_product_store_in_stock",
        "store_product",
        ["store_id", "product_master_id"],
        unique=False,
        postgresql_include=["price"],
        postgresql_where=sa.text("is_active AND quantity > 0"),
    )
    op.create_index(
        "ix_store_product_product_master_id_store_id", "store_product", ["product_master_id", "store_id"], unique=False
    )
    op.create_table(
        "store_webhook",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("store_id", sa.UUID(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("events", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("failure_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_delivery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("url ~ '^https?://'", name=op.f("ck_store_webhook_url")),
        sa.CheckConstraint("failure_count >= 0", name=op.f("ck_store_webhook_failure_count")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_store_webhook_store_id_store"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_webhook")),
    )
    op.create_index(op.f("ix_store_webhook_store_id"), "store_webhook", ["store_id"], unique=False)
    op.create_table(
        "imported_product_raw",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("import_batch_id", sa.UUID(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("matched_product_id", sa.UUID(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'matched', 'created', 'skipped', 'error')",
            name=op.f("ck_imported_product_raw_status"),
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name=op.f("fk_imported_product_raw_import_batch_id_import_batch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["matched_product_id"],
            ["product_master.id"],
            name=op.f("fk_imported_product_raw_matched_product_id_product_master"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_product_raw")),
        sa.UniqueConstraint("import_batch_id", "row_number", name="uq_imported_product_raw_batch_row"),
    )
    op.create_index(
        op.f("ix_imported_product_raw_import_batch_id"), "imported_product_raw", ["import_batch_id"], unique=False
    )
    op.create_index(
        op.f("ix_imported_product_raw_matched_product_id"), "imported_product_raw", ["matched_product_id"], unique=False
    )

    op.execute(TRIGGER_SQL)
    for table in TABLES_WITH_UPDATED_AT:
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    # Dropping the tables drops their triggers; the extensions stay (other databases objects may use them).
    op.drop_index(op.f("ix_imported_product_raw_matched_product_id"), table_name="imported_product_raw")
    op.drop_index(op.f("ix_imported_product_raw_import_batch_id"), table_name="imported_product_raw")
    op.drop_table("imported_product_raw")
    op.drop_index(op.f("ix_store_webhook_store_id"), table_name="store_webhook")
    op.drop_table("store_webhook")
    op.drop_index("ix_store_product_product_master_id_store_id", table_name="store_product")
    op.drop_index(
        "ix_store_product_in_stock",
        table_name="store_product",
        postgresql_include=["price", "quantity"],
        postgresql_where=sa.text("is_active AND quantity > 0"),
    )
    op.drop_table("store_product")
    op.drop_index(op.f("ix_product_variant_product_master_id"), table_name="product_variant")
    op.drop_table("product_variant")
    op.drop_index(op.f("ix_product_image_product_master_id"), table_name="product_image")
    op.drop_table("product_image")
    op.drop_index(op.f("ix_import_batch_store_id"), table_name="import_batch")
    op.drop_table("import_batch")
    op.drop_index(
        "uq_ai_task_one_pending_per_product", table_name="ai_task", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_index("ix_ai_task_product_master_id", table_name="ai_task")
    op.drop_index("ix_ai_task_lease", table_name="ai_task", postgresql_where=sa.text("status = 'running'"))
    op.drop_index("ix_ai_task_failed", table_name="ai_task", postgresql_where=sa.text("status = 'failed'"))
    op.drop_index("ix_ai_task_claim", table_name="ai_task", postgresql_where=sa.text("status = 'pending'"))
    op.drop_table("ai_task")
    op.drop_index(op.f("ix_store_owner_id"), table_name="store")
    op.drop_index("ix_store_location", table_name="store", postgresql_using="gist")
    op.drop_table("store")
    op.drop_index("ix_product_master_search_tsv", table_name="product_master", postgresql_using="gin")
    op.drop_index("ix_product_master_name_trgm", table_name="product_master", postgresql_using="gin")
    op.drop_index(op.f("ix_product_master_category_id"), table_name="product_master")
    op.drop_index(
        "ix_product_master_ai_vector_hnsw",
        table_name="product_master",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"ai_vector": "vector_cosine_ops"},
    )
    op.drop_table("product_master")
    op.drop_index("ix_system_log_created_at", table_name="system_log")
    op.drop_table("system_log")
    op.drop_index(
        "ix_search_index_queue_unprocessed",
        table_name="search_index_queue",
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.drop_table("search_index_queue")
    op.drop_index(op.f("ix_inventory_event_store_product_id"), table_name="inventory_event")
    op.drop_table("inventory_event")
    op.drop_index(op.f("ix_history_store_product_store_product_id"), table_name="history_store_product")
    op.drop_table("history_store_product")
    op.drop_table("feature_flag")
    op.drop_index(op.f("ix_category_parent_id"), table_name="category")
    op.drop_table("category")
    op.drop_table("app_user")
    for function in SQL_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
