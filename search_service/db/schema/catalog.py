"""The catalogue: users, stores, categories, products, listings, their variants and images, search terms."""

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
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT, JSONB, TSVECTOR, UUID

from search_service.db.schema.base import (
    EMBEDDING_DIM,
    USER_ROLES,
    _bigint_pk,
    _in,
    _timestamps,
    _uuid_pk,
    metadata,
)

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
    # Where the store delivers (migration 0009): a radius around its location, or a polygon (either, both or none).
    Column("delivery_radius_m", Integer),
    Column("delivery_area", Geography("MULTIPOLYGON", srid=4326, spatial_index=False)),
    CheckConstraint("length(btrim(name)) > 0", name="name"),
    CheckConstraint("country_code IS NULL OR country_code ~ '^[A-Z]{2}$'", name="country_code"),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
    CheckConstraint("delivery_radius_m IS NULL OR delivery_radius_m BETWEEN 1 AND 1000000", name="delivery_radius_m"),
    Index("ix_store_location", "location", postgresql_using="gist"),
    Index("ix_store_delivery_area", "delivery_area", postgresql_using="gist"),
    Index("ix_store_delivery_radius_m", "delivery_radius_m"),
    # Map-viewport scopes compare longitudes and latitudes (migration 0009).
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
    # Keyword side of hybrid search: weighted name > brand/gtin > description; accents folded (migration 0035).
    Column(
        "search_tsv",
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('plinqy_simple'::regconfig, coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('plinqy_simple'::regconfig, coalesce(brand, '') || ' ' || coalesce(gtin, '')), 'B') "
            "|| "
            "setweight(to_tsvector('plinqy_english'::regconfig, coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('plinqy_english'::regconfig, coalesce(description, '')), 'C')",
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
    # A pending list that a statement trigger merges when each writing statement ends (migration 0010): searches
    # find it empty (0003: scanning a pending list slowed every search), writes merge their entries sorted.
    Index("ix_product_master_search_tsv", "search_tsv", postgresql_using="gin", postgresql_with={"fastupdate": "on"}),
    # Hybrid search's exact-name match: a btree probe instead of a case-insensitive scan (migration 0002).
    Index("ix_product_master_lower_name", text("lower(name)")),
    # Ingest matches GTINs in one normal form, GTIN-14 (migration 0006); older rows may hold 8-13 digits.
    Index("ix_product_master_gtin14", text("lpad(gtin, 14, '0')"), postgresql_where=text("gtin IS NOT NULL")),
    # Search-as-you-type: prefix range scans outside the C collation (migration 0009), of the caseless name (0055:
    # plinqy_caseless is lower() with `ı` as `i`, `ß` as `ss`).
    Index("ix_product_master_name_prefix", text("plinqy_caseless(name) text_pattern_ops")),
    # The brand filter (=) and the brand completions' prefix walk, accents folded (migrations 0038, 0039:
    # plinqy_fold is lower() then unaccent).
    Index("ix_product_master_brand_folded_prefix", text("plinqy_fold(brand) text_pattern_ops")),
    # Suggestions in a few stores read the label of every product they stock: index-only (migration 0011).
    Index(
        "ix_product_master_active_labels",
        "id",
        postgresql_include=["name", "brand", "category_id"],
        postgresql_where=text("is_active"),
    ),
    # The API's in-memory facet labels read the products stamped since their snapshot, on every refresh and every
    # facet request: an index-only range scan (migration 0013).
    Index("ix_product_master_updated_at", "updated_at", postgresql_include=["id", "category_id", "brand", "is_active"]),
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
    Column("source_catalog_version", BigInteger),  # migration 0041: the catalogue's version (X-Series)
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
    # an http(s) address, or a path on this site: not `//host/…` or `/\host`, which load from that host, nor with a
    # control character (a browser drops tab, CR and LF: `/<tab>/host` loads from host) (0053)
    CheckConstraint("url ~ '^(https?://|/(?![/\\\\]))[^\\x01-\\x1f\\x7f]*$'", name="url"),
    Index("uq_product_image_primary", "product_master_id", unique=True, postgresql_where=text("is_primary")),
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
        # on, merged when each writing statement ends (migration 0010, as ix_product_master_search_tsv)
        postgresql_with={"fastupdate": "on"},
    ),
    Index("ix_search_term_term_prefix", "term", postgresql_ops={"term": "text_pattern_ops"}),  # completions (0009)
)
