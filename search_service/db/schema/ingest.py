"""The data path in: import batches and their raw rows, API keys, ingest connections, delivery dedup."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from search_service.db.schema.base import (
    BATCH_STATUSES,
    CONNECTION_SOURCES,
    INGEST_SOURCES,
    RAW_ROW_STATUSES,
    _bigint_pk,
    _in,
    _timestamps,
    _uuid_pk,
    metadata,
)

import_batch = Table(
    "import_batch",
    metadata,
    _uuid_pk(),
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), nullable=False),
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
    Column("unchanged_rows", Integer, nullable=False, server_default=text("0")),  # of mapped_rows: wrote nothing (0050)
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("mapping_failures", Integer, nullable=False, server_default=text("0")),  # mappings that raised (0028)
    Column(
        "rows_pruned_at", DateTime(timezone=True)
    ),  # when `imports prune` deleted its raw rows alone (0029; before 0036)
    Column("locked_by", Text),
    Column("locked_until", DateTime(timezone=True)),
    CheckConstraint(_in("source", INGEST_SOURCES), name="source"),
    CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
    CheckConstraint("total_rows >= 0 AND processed_rows >= 0 AND error_rows >= 0", name="row_counts"),
    Index("ix_import_batch_claim", "store_id", "seq", postgresql_where=text("status IN ('pending', 'processing')")),
    # `imports prune` reads finished batches by age (0036: failed ones too).
    Index(
        "ix_import_batch_finished_at",
        "finished_at",
        postgresql_where=text("status IN ('completed', 'aborted', 'failed')"),
    ),
    Index("ix_import_batch_receiving", "created_at", postgresql_where=text("status = 'receiving'")),  # 0023
    Index("ix_import_batch_store_seq", "store_id", "seq"),  # 0024: a store's imports, newest first
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
    ),  # no index of its own: uq_imported_product_raw_batch_row leads with it (migration 0010)
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
    Column("replaced_by_row", Integer),  # a duplicate's replacing row (migration 0043)
    CheckConstraint(_in("status", RAW_ROW_STATUSES), name="status"),
    UniqueConstraint("import_batch_id", "row_number", name="uq_imported_product_raw_batch_row"),
    Index(
        "ix_imported_product_raw_pending", "import_batch_id", "row_number", postgresql_where=text("status = 'pending'")
    ),
    # An import's rows not applied (`…/errors`, a page at a time by row number; the status checked in the index for
    # `import csv`'s first rows of each) and those mapped with notes (`…/notes`, the count `noted_rows`): 0048;
    # the stale rows listed too: 0049.
    Index(
        "ix_imported_product_raw_not_applied",
        "import_batch_id",
        "row_number",
        "status",
        postgresql_where=text("status IN ('rejected', 'duplicate', 'stale')"),
    ),
    Index(
        "ix_imported_product_raw_noted",
        "import_batch_id",
        "row_number",
        postgresql_where=text("status = 'mapped' AND error IS NOT NULL"),
    ),
    # For the foreign key's ON DELETE SET NULL; a stored row is unmatched (NULL) until mapped (migration 0010).
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


# Per-key rate limit (migration 0015): a token bucket per key shared by every API process, taken in the statement
# that authenticates the key. UNLOGGED: no WAL for a row rewritten on every write; a crash refills every bucket.
api_key_rate = Table(
    "api_key_rate",
    metadata,
    Column("key_id", UUID(as_uuid=True), ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True),
    Column("tokens", Float(precision=53), nullable=False),
    Column("allowed", Boolean, nullable=False),  # whether the last request took a token
    Column("stamp", DateTime(timezone=True), nullable=False),
    prefixes=["UNLOGGED"],
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


# Webhook dedup: a delivery id seen again is answered `duplicate`. `imports prune` deletes the records older than its
# cutoff (at least 2 days): a replay only needs catching within the senders' retry window and the signature's
# timestamp tolerance (5 minutes).
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
    Index("ix_ingest_delivery_received_at", "received_at"),  # 0036: the prune's scan
    # 0036: deleting a batch sets its deliveries' import_batch_id to NULL by this index, not a scan per batch.
    Index(
        "ix_ingest_delivery_import_batch_id", "import_batch_id", postgresql_where=text("import_batch_id IS NOT NULL")
    ),
)


# POS connectors (migration 0008): vendor ids that later messages name instead of a listing's SKU
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

# The SKU and clocks of a deleted listing a new SKU of its product took over (mapping.py; migration 0030): a late
# write to the old SKU is compared with them, as with a listing's.
retired_listing_sku = Table(
    "retired_listing_sku",
    metadata,
    Column("store_id", UUID(as_uuid=True), ForeignKey("store.id", ondelete="CASCADE"), primary_key=True),
    Column("sku", Text, primary_key=True),
    Column("source_updated_at", DateTime(timezone=True)),
    Column("source_version", BigInteger),
    Column("source_catalog_version", BigInteger),  # migration 0041
    # The product the SKU had (migration 0054): the SKU written again without a GTIN takes it back.
    Column("product_master_id", UUID(as_uuid=True), ForeignKey("product_master.id", ondelete="SET NULL")),
    Column("retired_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
