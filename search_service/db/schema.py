"""SQLAlchemy metadata for the whole Plinqy schema: the one source of truth for alembic.

Triggers and their functions are plain SQL in the migrations (alembic cannot compare them).
"""

from __future__ import annotations

from geoalchemy2 import Geography
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    CHAR,
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
    LargeBinary,
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
# Where an import batch came from (migration 0006): the write API, CSV, signed webhooks, the POS connectors.
INGEST_SOURCES = ("api", "csv", "webhook", "lightspeed-r", "lightspeed-x", "erply", "shopify")
# What an ingest connection is (the sources that deliver on their own: webhooks and the POS connectors).
CONNECTION_SOURCES = ("webhook", "lightspeed-r", "lightspeed-x", "erply", "shopify")
# receiving: an upload is still arriving (aborted if it never completes); pending: stored whole, waits for the
# mapping; processing: a worker holds its lease; completed: every row ended mapped/stale/duplicate/rejected.
BATCH_STATUSES = ("receiving", "pending", "processing", "completed", "failed", "aborted")
RAW_ROW_STATUSES = ("pending", "mapped", "stale", "duplicate", "rejected")
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
    # The store's default currency: no POS sends one with its items (migration 0006).
    Column("currency", CHAR(3), nullable=False, server_default="EUR"),
    CheckConstraint("length(btrim(name)) > 0", name="name"),
    CheckConstraint("country_code IS NULL OR country_code ~ '^[A-Z]{2}$'", name="country_code"),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
    Index("ix_store_location", "location", postgresql_using="gist"),
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
    # A pending list that a statement trigger merges when each writing statement ends (migration 0009): searches
    # find it empty (0003: scanning a pending list slowed every search), writes merge their entries sorted.
    Index("ix_product_master_search_tsv", "search_tsv", postgresql_using="gin", postgresql_with={"fastupdate": "on"}),
    # Hybrid search's exact-name match: a btree probe instead of a case-insensitive scan (migration 0002).
    Index("ix_product_master_lower_name", text("lower(name)")),
    # Ingest matches GTINs in one normal form, GTIN-14 (migration 0006); older rows may hold 8-13 digits.
    Index("ix_product_master_gtin14", text("lpad(gtin, 14, '0')"), postgresql_where=text("gtin IS NOT NULL")),
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
    # Ingest (migration 0006): the store's own title, and the source's clock for "newest wins".
    Column("title", Text),
    Column("source_updated_at", DateTime(timezone=True)),
    Column("source_version", BigInteger),
    CheckConstraint("price >= 0", name="price"),
    CheckConstraint("quantity >= 0", name="quantity"),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
    UniqueConstraint("store_id", "product_master_id", name="uq_store_product_store_id_product_master_id"),
    Index("ix_store_product_product_master_id_store_id", "product_master_id", "store_id"),
    # Writes are keyed by the store's own SKU (listings without one, e.g. the demo's, are not addressable).
    Index("uq_store_product_store_id_sku", "store_id", "sku", unique=True, postgresql_where=text("sku IS NOT NULL")),
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
    Column("error_rows", Integer, nullable=False, server_default=text("0")),  # = rejected rows
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    *_timestamps(),
    # Ingest (migration 0006). seq orders a store's batches: they are mapped one after another, oldest first.
    Column("seq", BigInteger, Identity(always=False), nullable=False),
    Column("kind", Text, nullable=False, server_default="csv"),
    Column("connection_id", UUID(as_uuid=True), ForeignKey("ingest_connection.id", ondelete="SET NULL"), index=True),
    Column("delivery_id", Text),
    Column("file_name", Text),
    Column("mapped_rows", Integer, nullable=False, server_default=text("0")),
    Column("stale_rows", Integer, nullable=False, server_default=text("0")),
    Column("duplicate_rows", Integer, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    CheckConstraint(_in("source", INGEST_SOURCES), name="source"),
    CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
    CheckConstraint("total_rows >= 0 AND processed_rows >= 0 AND error_rows >= 0", name="row_counts"),
    Index("ix_import_batch_claim", "store_id", "seq", postgresql_where=text("status IN ('pending', 'processing')")),
    Index("ix_import_batch_finished_at", "finished_at", postgresql_where=text("status IN ('completed', 'aborted')")),
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
    ),  # no index of its own: uq_imported_product_raw_batch_row leads with it (migration 0009)
    Column("row_number", Integer, nullable=False),
    Column("external_id", Text),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column(
        "matched_product_id",
        UUID(as_uuid=True),
        ForeignKey("product_master.id", ondelete="SET NULL"),
    ),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Ingest (migration 0006): the source's original cells (a CSV row), and how the row was matched.
    Column("raw", JSONB),
    Column("matched_by", Text),
    CheckConstraint(_in("status", RAW_ROW_STATUSES), name="status"),
    UniqueConstraint("import_batch_id", "row_number", name="uq_imported_product_raw_batch_row"),
    Index(
        "ix_imported_product_raw_pending", "import_batch_id", "row_number", postgresql_where=text("status = 'pending'")
    ),
    # For the foreign key's ON DELETE SET NULL; a stored row is unmatched (NULL) until mapped (migration 0009).
    Index(
        "ix_imported_product_raw_matched_product_id",
        "matched_product_id",
        postgresql_where=text("matched_product_id IS NOT NULL"),
    ),
)

api_key = Table(
    "api_key",
    metadata,
    _uuid_pk(),
    Column("key_prefix", Text, nullable=False),  # the first characters, for people to tell keys apart
    Column("key_hash", Text, nullable=False, unique=True),  # sha256 hex of the whole key
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), index=True),  # NULL: admin
    Column("scopes", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("name", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    CheckConstraint("key_hash ~ '^[0-9a-f]{64}$'", name="key_hash"),
)

ingest_connection = Table(
    "ingest_connection",
    metadata,
    _uuid_pk(),
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("external_location", Text),  # the POS's own id of the store's location
    Column("base_url", Text),
    Column("secret_enc", LargeBinary),  # SecretBox: the webhook signing secret(s)
    Column("credentials_enc", LargeBinary),  # SecretBox: JSON of the vendor's credentials
    Column("config", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("cursor", JSONB),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("last_sync_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("source", CONNECTION_SOURCES), name="source"),
)

# Webhook dedup: a delivery id seen once is answered `duplicate` ever after (pruned with its batch's retention).
ingest_delivery = Table(
    "ingest_delivery",
    metadata,
    _bigint_pk(),
    Column(
        "connection_id",
        UUID(as_uuid=True),
        ForeignKey("ingest_connection.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("delivery_id", Text, nullable=False),
    Column("import_batch_id", UUID(as_uuid=True), ForeignKey("import_batch.id", ondelete="SET NULL")),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("connection_id", "delivery_id", name="uq_ingest_delivery_connection_id_delivery_id"),
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
    # Migration 0007 (events): why a subscription was switched off, and since when its deliveries have failed
    # without a success in between (24 hours of that disables it). `secret` holds the SecretBox token.
    Column("disabled_reason", Text),
    Column("failing_since", DateTime(timezone=True)),
    CheckConstraint("url ~ '^https?://'", name="url"),
    CheckConstraint("failure_count >= 0", name="failure_count"),
)

WEBHOOK_DELIVERY_STATUSES = ("pending", "retrying", "delivered", "failed")

# The next event number of each store (migration 0007). No foreign key: a store's deletion cascades into its
# listings, whose listing.deleted events still take a number.
webhook_store_seq = Table(
    "webhook_store_seq",
    metadata,
    Column("store_id", UUID(as_uuid=True), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, server_default=text("0")),
)

# The outbox: written by triggers in the transaction of the change itself (migration 0007).
webhook_event = Table(
    "webhook_event",
    metadata,
    _bigint_pk(),
    Column("store_id", UUID(as_uuid=True), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("store_id", "seq", name="uq_webhook_event_store_id_seq"),
    Index("ix_webhook_event_created_at", "created_at"),
)

# One row per event and subscription; the dispatchers' queue (SKIP LOCKED claims, leases, fenced results).
webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    _bigint_pk(),
    Column("event_id", BigInteger, ForeignKey("webhook_event.id", ondelete="CASCADE"), nullable=False, index=True),
    Column(
        "webhook_id", UUID(as_uuid=True), ForeignKey("store_webhook.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("message_id", Text, nullable=False),  # the webhook-id header: the same on every attempt
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
    CheckConstraint("attempts >= 0", name="attempts"),
    Index(
        "ix_webhook_delivery_due",
        "next_attempt_at",
        "id",
        postgresql_where=text("status IN ('pending', 'retrying')"),
    ),
    Index("ix_webhook_delivery_failed", "id", postgresql_where=text("status = 'failed'")),
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
        # on, merged when each writing statement ends (migration 0009, as ix_product_master_search_tsv)
        postgresql_with={"fastupdate": "on"},
    ),
)

ALL_TABLES = tuple(metadata.sorted_tables)

# POS connectors (migration 0007): vendor ids that later messages name instead of a listing's SKU
# (a Shopify product's variants, for products/delete).
ingest_connector_link = Table(
    "ingest_connector_link",
    metadata,
    Column(
        "connection_id",
        UUID(as_uuid=True),
        ForeignKey("ingest_connection.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("external_id", Text, primary_key=True),
    Column("parent_id", Text),
    Column("sku", Text, nullable=False),
    Index("ix_ingest_connector_link_connection_id_parent_id", "connection_id", "parent_id"),
)
