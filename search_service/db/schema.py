"""SQLAlchemy metadata for the whole Plinqy schema: the one source of truth for alembic.

Triggers and their functions are plain SQL in the migrations (alembic cannot compare them).
"""

from __future__ import annotations

from geoalchemy2 import Geography
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT, JSONB, TSVECTOR, UUID

EMBEDDING_DIM = 384

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

USER_ROLES = ("admin", "store_owner", "store_staff", "customer")
POS_SOURCES = ("lightspeed", "vend", "erply", "shopify_pos", "csv", "webhook")
TASK_STATUSES = ("pending", "running", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _uuid_pk() -> Column[object]:
    return Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("uuid_generate_v4()"))


def _bigint_pk() -> Column[object]:
    return Column("id", BigInteger, Identity(always=False), primary_key=True)


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


app_user = Table(
    "app_user",
    metadata,
    _uuid_pk(),
    Column("email", CITEXT, nullable=False, unique=True),
    Column("full_name", Text),
    Column("role", Text, nullable=False, server_default="customer"),
    Column("password_hash", Text),
    Column("phone", Text),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("last_login_at", DateTime(timezone=True)),
    *_timestamps(),
    CheckConstraint(_in("role", USER_ROLES), name="role"),
    CheckConstraint("position('@' in email) > 1", name="email"),
)

store = Table(
    "store",
    metadata,
    _uuid_pk(),
    Column("owner_id", UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL"), index=True),
    Column("name", Text, nullable=False),
    Column("slug", CITEXT, unique=True),
    Column("store_type", Text),
    Column("description", Text),
    Column("address", Text),
    Column("city", Text),
    Column("postal_code", Text),
    Column("country_code", Text),
    Column("location", Geography("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("phone", Text),
    Column("website", Text),
    Column("opening_hours", JSONB),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    *_timestamps(),
    # Where the store delivers (migration 0008): a radius around its location, or a polygon (either, both or none).
    Column("delivery_radius_m", Integer),
    Column("delivery_area", Geography("MULTIPOLYGON", srid=4326, spatial_index=False)),
    CheckConstraint("length(btrim(name)) > 0", name="name"),
    CheckConstraint("country_code IS NULL OR country_code ~ '^[A-Z]{2}$'", name="country_code"),
    CheckConstraint("delivery_radius_m IS NULL OR delivery_radius_m BETWEEN 1 AND 1000000", name="delivery_radius_m"),
    Index("ix_store_location", "location", postgresql_using="gist"),
    Index("ix_store_delivery_area", "delivery_area", postgresql_using="gist"),
    Index("ix_store_delivery_radius_m", "delivery_radius_m"),
    # Map-viewport scopes compare longitudes and latitudes (migration 0008).
    Index("ix_store_location_geometry", text("(location::geometry)"), postgresql_using="gist"),
)

category = Table(
    "category",
    metadata,
    _bigint_pk(),
    # Deleting a category deletes its subtree; products keep existing (their category_id is set NULL).
    Column("parent_id", BigInteger, ForeignKey("category.id", ondelete="CASCADE"), index=True),
    Column("name", Text, nullable=False),
    Column("slug", Text),
    Column("position", Integer, nullable=False, server_default=text("0")),
    *_timestamps(),
    CheckConstraint("length(btrim(name)) > 0", name="name"),
    CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    UniqueConstraint("parent_id", "name", name="uq_category_parent_id_name"),
)

product_master = Table(
    "product_master",
    metadata,
    _uuid_pk(),
    Column("name", Text, nullable=False),
    Column("brand", Text),
    Column("description", Text),
    Column("category_id", BigInteger, ForeignKey("category.id", ondelete="SET NULL"), index=True),
    Column("gtin", Text, unique=True),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("ai_vector", Vector(EMBEDDING_DIM)),
    Column("ai_model", Text),
    Column("ai_text_hash", Text),
    Column("ai_embedded_at", DateTime(timezone=True)),
    # Keyword side of hybrid search: weighted name > brand/gtin > description.
    Column(
        "search_tsv",
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('simple'::regconfig, coalesce(brand, '') || ' ' || coalesce(gtin, '')), 'B') || "
            "setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')",
            persisted=True,
        ),
    ),
    *_timestamps(),
    CheckConstraint("length(btrim(name)) > 0", name="name"),
    CheckConstraint("gtin IS NULL OR gtin ~ '^[0-9]{8,14}$'", name="gtin"),
    CheckConstraint("jsonb_typeof(attributes) = 'object'", name="attributes"),
    # The API's in-memory vector copy asks "which vectors changed since my snapshot" on every search and
    # every refresh: an index-only range scan (migration 0002).
    Index("ix_product_master_ai_embedded_at", "ai_embedded_at", postgresql_include=["id"]),
    Index(
        "ix_product_master_ai_vector_hnsw",
        "ai_vector",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"ai_vector": "vector_cosine_ops"},
    ),
    # No pending list (migration 0003): every search would scan it, and embedding writes keep refilling it.
    Index("ix_product_master_search_tsv", "search_tsv", postgresql_using="gin", postgresql_with={"fastupdate": "off"}),
    # Hybrid search's exact-name match: a btree probe instead of a case-insensitive scan (migration 0002).
    Index("ix_product_master_lower_name", text("lower(name)")),
    # Search-as-you-type: LIKE 'prefix%' range scans outside the C collation (migration 0008).
    Index("ix_product_master_name_prefix", text("lower(name) text_pattern_ops")),
    Index("ix_product_master_brand_prefix", text("lower(brand) text_pattern_ops")),
)

store_product = Table(
    "store_product",
    metadata,
    _uuid_pk(),
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), nullable=False),
    Column(
        "product_master_id",
        UUID(as_uuid=True),
        ForeignKey("product_master.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sku", Text),
    Column("price", Numeric(12, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("quantity", Integer, nullable=False, server_default=text("0")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    *_timestamps(),
    CheckConstraint("price >= 0", name="price"),
    CheckConstraint("quantity >= 0", name="quantity"),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
    UniqueConstraint("store_id", "product_master_id", name="uq_store_product_store_id_product_master_id"),
    Index("ix_store_product_product_master_id_store_id", "product_master_id", "store_id"),
    # The exact plan gathers candidates store by store: an index-only scan of the sellable listings.
    Index(
        "ix_store_product_store_in_stock",
        "store_id",
        "product_master_id",
        postgresql_include=["price"],
        postgresql_where=text("is_active AND quantity > 0"),
    ),
    # Search probes only sellable listings; the covering partial index answers them without the heap.
    Index(
        "ix_store_product_in_stock",
        "product_master_id",
        "store_id",
        postgresql_include=["price", "quantity"],
        postgresql_where=text("is_active AND quantity > 0"),
    ),
)

product_variant = Table(
    "product_variant",
    metadata,
    _uuid_pk(),
    Column(
        "product_master_id",
        UUID(as_uuid=True),
        ForeignKey("product_master.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", Text, nullable=False),
    Column("sku", Text),
    Column("gtin", Text, unique=True),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    *_timestamps(),
    CheckConstraint("gtin IS NULL OR gtin ~ '^[0-9]{8,14}$'", name="gtin"),
)

product_image = Table(
    "product_image",
    metadata,
    _uuid_pk(),
    Column(
        "product_master_id",
        UUID(as_uuid=True),
        ForeignKey("product_master.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("url", Text, nullable=False),
    Column("alt_text", Text),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("is_primary", Boolean, nullable=False, server_default=text("false")),
    *_timestamps(),
    CheckConstraint("url ~ '^(https?://|/)'", name="url"),
)

import_batch = Table(
    "import_batch",
    metadata,
    _uuid_pk(),
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_by", UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")),
    Column("source", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("total_rows", Integer, nullable=False, server_default=text("0")),
    Column("processed_rows", Integer, nullable=False, server_default=text("0")),
    Column("error_rows", Integer, nullable=False, server_default=text("0")),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    *_timestamps(),
    CheckConstraint(_in("source", POS_SOURCES), name="source"),
    CheckConstraint(_in("status", ("pending", "processing", "completed", "failed")), name="status"),
    CheckConstraint("total_rows >= 0 AND processed_rows >= 0 AND error_rows >= 0", name="row_counts"),
)

imported_product_raw = Table(
    "imported_product_raw",
    metadata,
    _bigint_pk(),
    Column(
        "import_batch_id",
        UUID(as_uuid=True),
        ForeignKey("import_batch.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("row_number", Integer, nullable=False),
    Column("external_id", Text),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column(
        "matched_product_id",
        UUID(as_uuid=True),
        ForeignKey("product_master.id", ondelete="SET NULL"),
        index=True,
    ),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("status", ("pending", "matched", "created", "skipped", "error")), name="status"),
    UniqueConstraint("import_batch_id", "row_number", name="uq_imported_product_raw_batch_row"),
)

# Audit rows outlive the listing they describe, so they hold ids without foreign keys.
history_store_product = Table(
    "history_store_product",
    metadata,
    _bigint_pk(),
    Column("store_product_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("product_master_id", UUID(as_uuid=True), nullable=False),
    Column("operation", Text, nullable=False),
    Column("old_row", JSONB),
    Column("new_row", JSONB),
    Column("changed_by", Text, nullable=False, server_default=text("current_user")),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("operation", ("INSERT", "UPDATE", "DELETE")), name="operation"),
)

ai_task = Table(
    "ai_task",
    metadata,
    _bigint_pk(),
    # SET NULL, not CASCADE: a task whose product vanished completes as a recorded no-op.
    Column("product_master_id", UUID(as_uuid=True), ForeignKey("product_master.id", ondelete="SET NULL")),
    Column("kind", Text, nullable=False, server_default="embed_product"),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("priority", SmallInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("5")),
    Column("run_after", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("result", Text),
    *_timestamps(),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint(_in("status", TASK_STATUSES), name="status"),
    CheckConstraint("attempts >= 0 AND max_attempts > 0", name="attempts"),
    CheckConstraint("status <> 'running' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)", name="lease"),
    Index(
        "uq_ai_task_one_pending_per_product",
        "product_master_id",
        unique=True,
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_ai_task_claim",
        text("priority DESC"),
        "run_after",
        "id",
        postgresql_where=text("status = 'pending'"),
    ),
    Index("ix_ai_task_lease", "locked_until", postgresql_where=text("status = 'running'")),
    Index("ix_ai_task_product_master_id", "product_master_id"),
    Index("ix_ai_task_failed", "id", postgresql_where=text("status = 'failed'")),
)

search_index_queue = Table(
    "search_index_queue",
    metadata,
    _bigint_pk(),
    Column("entity_type", Text, nullable=False),
    Column("entity_id", UUID(as_uuid=True), nullable=False),
    Column("operation", Text, nullable=False),
    Column("enqueued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("processed_at", DateTime(timezone=True)),
    CheckConstraint(_in("entity_type", ("store_product", "product_master", "store")), name="entity_type"),
    CheckConstraint(_in("operation", ("INSERT", "UPDATE", "DELETE")), name="operation"),
    Index("ix_search_index_queue_unprocessed", "id", postgresql_where=text("processed_at IS NULL")),
)

inventory_event = Table(
    "inventory_event",
    metadata,
    _bigint_pk(),
    Column("store_product_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("product_master_id", UUID(as_uuid=True), nullable=False),
    Column("old_quantity", Integer),
    Column("new_quantity", Integer),
    Column("delta", Integer, nullable=False),
    Column("reason", Text, nullable=False, server_default="update"),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

store_webhook = Table(
    "store_webhook",
    metadata,
    _uuid_pk(),
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", Text),
    Column("events", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("failure_count", Integer, nullable=False, server_default=text("0")),
    Column("last_delivery_at", DateTime(timezone=True)),
    *_timestamps(),
    CheckConstraint("url ~ '^https?://'", name="url"),
    CheckConstraint("failure_count >= 0", name="failure_count"),
)

feature_flag = Table(
    "feature_flag",
    metadata,
    _bigint_pk(),
    Column("key", CITEXT, nullable=False, unique=True),
    Column("description", Text),
    Column("is_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("rollout_percent", SmallInteger, nullable=False, server_default=text("100")),
    Column("payload", JSONB),
    *_timestamps(),
    CheckConstraint("rollout_percent BETWEEN 0 AND 100", name="rollout_percent"),
)

system_log = Table(
    "system_log",
    metadata,
    _bigint_pk(),
    Column("level", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("context", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("level", ("debug", "info", "warning", "error", "critical")), name="level"),
    Index("ix_system_log_created_at", "created_at"),
)

# The words of product names and brands (migration 0004: kept by a trigger on product_master), against
# which hybrid search corrects the words of a query.
search_term = Table(
    "search_term",
    metadata,
    _bigint_pk(),
    Column("term", Text, nullable=False, index=True),  # not unique: a product write never waits on a new word
    Index(
        "ix_search_term_trgm",
        "term",
        postgresql_using="gin",
        postgresql_ops={"term": "gin_trgm_ops"},
        postgresql_with={"fastupdate": "off"},
    ),
    Index("ix_search_term_term_prefix", "term", postgresql_ops={"term": "text_pattern_ops"}),  # completions (0008)
)

ALL_TABLES = tuple(metadata.sorted_tables)
